//! Property tests of the parsers every byte from the network goes through:
//! identifiers (`src/ids.rs`), path matching and percent-decoding
//! (`src/http/router.rs`), query strings (`src/http/server.rs::parse_query`)
//! and the generated body parsers (`generated::routes::dispatch`).
//!
//! Each holds for any input: no panic, and what parses prints back as the
//! input. The identifier parsers must also agree with the regular expressions
//! the spec states (`ids::*_PATTERN`). 256 cases per parser property and 64
//! per dispatcher property by default; `PROPTEST_CASES` asks for others.

use matrix_membership::config::settings_from_args;
use matrix_membership::generated::client::encode;
use matrix_membership::generated::routes::{dispatch, DispatchError, Operation, RawRequest, RequestError, ROUTES};
use matrix_membership::generated::SWAGGER_JSON;
use matrix_membership::http::context::RequestContext;
use matrix_membership::http::router::{RouteMatch, Router};
use matrix_membership::http::server::parse_query;
use matrix_membership::ids::{self, EventId, RoomAliasId, RoomId, RoomOrAlias, UserId};
use matrix_membership::service::Service;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

/// `cases` unless `PROPTEST_CASES` says otherwise.
fn runner_config_with(cases: u32) -> RunnerConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(cases);
    RunnerConfig {
        cases,
        // A regression file would land in tests/; the seed printed on failure replays it.
        failure_persistence: None,
        ..RunnerConfig::default()
    }
}

/// Pure parsers take microseconds a case: 256 of them.
fn runner_config() -> RunnerConfig {
    runner_config_with(256)
}

/// A dispatch goes through the service and the store: 64.
fn dispatch_config() -> RunnerConfig {
    runner_config_with(64)
}

// ---------------------------------------------------------------------------
// Identifiers
// ---------------------------------------------------------------------------

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap()
}

static USER: LazyLock<Regex> = LazyLock::new(|| re(ids::USER_ID_PATTERN));
static ROOM: LazyLock<Regex> = LazyLock::new(|| re(ids::ROOM_ID_PATTERN));
static ALIAS: LazyLock<Regex> = LazyLock::new(|| re(ids::ROOM_ALIAS_PATTERN));
static ROOM_OR_ALIAS: LazyLock<Regex> = LazyLock::new(|| re(ids::ROOM_ID_OR_ALIAS_PATTERN));
static EVENT: LazyLock<Regex> = LazyLock::new(|| re(ids::EVENT_ID_PATTERN));
static SERVER: LazyLock<Regex> = LazyLock::new(|| re(ids::SERVER_NAME_PATTERN));

/// A valid identifier of some kind, then one character inserted or replaced
/// somewhere (or nothing changed): the near misses where a parser and a
/// pattern would disagree.
fn near_valid_id() -> impl Strategy<Value = String> {
    let sigil = prop_oneof![Just('@'), Just('!'), Just('#'), Just('$')];
    let host = prop_oneof![3 => "[0-9A-Za-z.-]{1,6}", 1 => "\\[[0-9a-fA-F:.]{1,4}\\]"];
    let port = prop_oneof![Just(String::new()), ":[0-9]{1,5}"];
    let valid = (sigil, "[!-9;-~]{1,5}", host, port).prop_map(|(s, l, h, p)| format!("{s}{l}:{h}{p}"));
    let odd = prop_oneof![
        3 => prop::sample::select(vec![' ', '\0', '\x7f', '\u{e9}', '\u{a0}', ':', '[', ']', '@', '\n', 'x', '9']),
        1 => any::<char>(),
    ];
    (valid, 0usize..3, any::<prop::sample::Index>(), odd).prop_map(|(id, how, at, c)| {
        let chars: Vec<char> = id.chars().collect();
        let i = at.index(chars.len() + 1);
        let mut out = chars.clone();
        match how {
            0 => out.insert(i, c),
            1 if i < chars.len() => out[i] = c,
            _ => {}
        }
        out.into_iter().collect()
    })
}

/// Strings near the grammar, where the parsers and patterns could disagree:
/// near misses of valid ids, any sigil with localparts and server names
/// built from good and bad pieces, lengths around the 255-byte limit, and
/// anything at all.
fn id_like() -> impl Strategy<Value = String> {
    let sigil = prop_oneof![Just("@"), Just("!"), Just("#"), Just("$"), Just(""), Just("x")];
    let local = prop_oneof![
        2 => "[a-z0-9._=/-]{1,4}",
        // One character the grammar refuses (or, for `:`, splits at), among good ones.
        2 => "[a-z]{0,2}(\u{e9}|\u{a0}|\u{7f}|\u{0}| |\n|\t|:)[!-~]{0,2}",
        1 => "[ -~]{0,4}",
    ];
    let host = prop_oneof![
        3 => "[0-9A-Za-z.-]{1,6}",
        1 => "\\[[0-9a-fA-F:.]{1,4}\\]",
        1 => "\\[[0-9a-g:.]{0,3}\\]?[a-z:\\]]{0,2}",
        1 => "[ -~]{0,4}",
        1 => Just(String::new()),
    ];
    let port = prop_oneof![3 => "", 1 => ":[0-9]{1,5}", 1 => ":[0-9]{6,7}", 1 => ":", 1 => ":[0-9a-z]{1,3}"];
    let structured = (sigil, local, host, port).prop_map(|(s, l, h, p)| format!("{s}{l}:{h}{p}"));
    let long = (0usize..4, 240usize..250).prop_map(|(kind, n)| {
        let sigil = ["@", "!", "#", "$"][kind];
        format!("{sigil}{}:localhost", "a".repeat(n))
    });
    prop_oneof![4 => near_valid_id(), 3 => structured, 1 => long, 1 => any::<String>()]
}

fn within_limit(s: &str) -> bool {
    s.len() <= ids::MAX_ID_BYTES
}

#[test]
fn identifier_parsers_accept_exactly_what_the_spec_patterns_match() {
    let mut runner = TestRunner::new(runner_config());
    runner
        .run(&id_like(), |s| {
            let limit = within_limit(&s);
            prop_assert_eq!(UserId::parse(&s).is_ok(), USER.is_match(&s) && limit, "user id {:?}", s);
            prop_assert_eq!(RoomId::parse(&s).is_ok(), ROOM.is_match(&s) && limit, "room id {:?}", s);
            prop_assert_eq!(
                RoomAliasId::parse(&s).is_ok(),
                ALIAS.is_match(&s) && limit,
                "alias {:?}",
                s
            );
            prop_assert_eq!(
                RoomOrAlias::parse(&s).is_ok(),
                ROOM_OR_ALIAS.is_match(&s) && limit,
                "room or alias {:?}",
                s
            );
            prop_assert_eq!(
                EventId::parse(&s).is_ok(),
                EVENT.is_match(&s) && limit,
                "event id {:?}",
                s
            );
            let server = s.trim_start_matches(['@', '!', '#', '$', 'x']);
            let server = server.split_once(':').map_or(server, |(_, rest)| rest);
            prop_assert_eq!(
                ids::validate_server_name(server).is_ok(),
                SERVER.is_match(server) && within_limit(server),
                "server name {:?}",
                server
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_parsed_identifier_prints_back_as_its_input_and_its_parts_rebuild_it() {
    let mut runner = TestRunner::new(runner_config());
    runner
        .run(&id_like(), |s| {
            if let Ok(u) = UserId::parse(&s) {
                prop_assert_eq!(u.to_string(), s.clone());
                prop_assert_eq!(format!("@{}:{}", u.localpart(), u.server_name()), s.clone());
            }
            if let Ok(r) = RoomId::parse(&s) {
                prop_assert_eq!(r.as_str(), s.as_str());
                let tail = format!(":{}", r.server_name());
                prop_assert!(s.ends_with(&tail), "{:?}", s);
            }
            if let Ok(a) = RoomAliasId::parse(&s) {
                prop_assert_eq!(a.to_string(), s.clone());
                let tail = format!(":{}", a.server_name());
                prop_assert!(s.ends_with(&tail), "{:?}", s);
            }
            if let Ok(e) = EventId::parse(&s) {
                prop_assert_eq!(e.to_string(), s.clone());
            }
            match RoomOrAlias::parse(&s) {
                Ok(RoomOrAlias::Room(r)) => prop_assert_eq!(r.to_string(), s.clone()),
                Ok(RoomOrAlias::Alias(a)) => prop_assert_eq!(a.to_string(), s.clone()),
                Err(_) => {}
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_strategy_reaches_valid_and_invalid_identifiers_of_every_kind() {
    // Without this, the properties above could hold vacuously.
    let mut runner = TestRunner::new(runner_config());
    let strategy = id_like();
    let (mut valid, mut invalid) = ([0usize; 4], [0usize; 4]);
    for _ in 0..2000 {
        let s = strategy.new_tree(&mut runner).unwrap().current();
        let results = [
            UserId::parse(&s).is_ok(),
            RoomId::parse(&s).is_ok(),
            RoomAliasId::parse(&s).is_ok(),
            EventId::parse(&s).is_ok(),
        ];
        for (i, ok) in results.into_iter().enumerate() {
            if ok {
                valid[i] += 1;
            } else if s.starts_with(["@", "!", "#", "$"][i]) {
                invalid[i] += 1;
            }
        }
    }
    assert!(valid.iter().all(|n| *n > 20), "too few valid ids: {valid:?}");
    assert!(
        invalid.iter().all(|n| *n > 20),
        "too few invalid ids with the sigil: {invalid:?}"
    );
}

// ---------------------------------------------------------------------------
// Paths
// ---------------------------------------------------------------------------

/// Paths under the client prefixes, with segments of any text and stray `%`s.
fn path_like() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        Just("/_matrix/client/api/v1"),
        Just("/_matrix/client/v3"),
        Just("/_matrix/client"),
        Just(""),
    ];
    let segment = prop_oneof!["[a-zA-Z_]{0,12}", "(%[0-9A-Fa-f]{0,2}|[!-~]){0,8}", any::<String>()];
    (prefix, proptest::collection::vec(segment, 0..6), any::<bool>()).prop_map(|(p, segs, slash)| {
        let mut path = format!("{p}/{}", segs.join("/"));
        if slash {
            path.push('/');
        }
        path
    })
}

#[test]
fn routing_any_path_never_panics_and_never_hands_out_an_empty_parameter() {
    let router = Router::default();
    let method = prop_oneof![Just("GET"), Just("POST"), Just("PUT"), Just("DELETE")];
    let mut runner = TestRunner::new(runner_config());
    runner
        .run(&(method, path_like()), |(method, path)| {
            if let RouteMatch::Found { params, .. } = router.route(method, &path) {
                prop_assert!(params.iter().all(|(_, v)| !v.is_empty()), "{:?}", params);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_path_built_from_any_parameter_values_routes_back_to_its_operation_and_values() {
    let router = Router::default();
    let route = (0..ROUTES.len()).prop_flat_map(|i| {
        let names = ROUTES[i].template.split('/').filter(|s| s.starts_with('{')).count();
        let value =
            prop_oneof![any::<String>(), "[!-~ ]{1,8}", "%[0-9A-F]{2}"].prop_filter("non-empty", |v| !v.is_empty());
        (Just(i), proptest::collection::vec(value, names))
    });
    let mut runner = TestRunner::new(runner_config());
    runner
        .run(&route, |(i, values)| {
            let r = &ROUTES[i];
            let mut values_left = values.iter();
            let mut expected = Vec::new();
            let segments: Vec<String> = r
                .template
                .trim_start_matches('/')
                .split('/')
                .map(|part| match part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) => {
                        let v = values_left.next().unwrap();
                        expected.push((name.to_string(), v.clone()));
                        encode(v)
                    }
                    None => encode(part),
                })
                .collect();
            let path = format!("{}/{}", r.base_path, segments.join("/"));
            prop_assert_eq!(
                router.route(r.method, &path),
                RouteMatch::Found {
                    operation: r.operation,
                    params: expected
                },
                "{}",
                path
            );
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// Query strings
// ---------------------------------------------------------------------------

#[test]
fn parsing_any_query_string_never_panics_and_keeps_every_pair() {
    let query = prop_oneof![any::<String>(), "([a-z=&+]|%[0-9A-Fa-f]{0,2}|%FF|[^ ]){0,20}"];
    let mut runner = TestRunner::new(runner_config());
    runner
        .run(&query, |q| {
            let pairs = parse_query(Some(&q));
            prop_assert_eq!(pairs.len(), q.split('&').filter(|p| !p.is_empty()).count());
            Ok(())
        })
        .unwrap();
}

#[test]
fn encoded_query_pairs_parse_back_to_themselves() {
    let pairs = proptest::collection::vec((any::<String>(), any::<String>()), 0..5);
    let mut runner = TestRunner::new(runner_config());
    runner
        .run(&pairs, |pairs| {
            let query: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
                .collect();
            prop_assert_eq!(parse_query(Some(&query.join("&"))), pairs);
            Ok(())
        })
        .unwrap();
}

// ---------------------------------------------------------------------------
// Generated body parsers
// ---------------------------------------------------------------------------

/// A JSON value of any shape, with keys drawn from the spec's own property names
/// so that objects reach the typed fields.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("user_id".to_string()),
        Just("reason".to_string()),
        Just("room_id".to_string()),
        Just("invite".to_string()),
        Just("initial_state".to_string()),
        Just("preset".to_string()),
        Just("auth".to_string()),
        Just("identifier".to_string()),
        Just("type".to_string()),
        Just("username".to_string()),
        Just("displayname".to_string()),
        Just("content".to_string()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        Just(Value::from("@bob:localhost")),
        Just(Value::from("private_chat")),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(key.clone(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => json_value().prop_map(|v| v.to_string().into_bytes()),
        1 => any::<Vec<u8>>(),
        1 => "[ \t\n{}\\[\\],:\"a-z0-9]{0,16}".prop_map(String::into_bytes),
    ]
}

/// The operations whose body schema is an object, by name, from the merged spec.
fn object_body_operations() -> Vec<String> {
    let spec: Value = serde_json::from_str(SWAGGER_JSON).unwrap();
    let mut out = Vec::new();
    for item in spec["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let body = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|p| p["in"] == "body");
            let Some(body) = body else { continue };
            let schema = match body["schema"]["$ref"].as_str() {
                Some(r) => &spec["definitions"][r.trim_start_matches("#/definitions/")],
                None => &body["schema"],
            };
            if schema["type"] == "object" {
                out.push(op["operationId"].as_str().unwrap().to_string());
            }
        }
    }
    out
}

/// A service of its own, driven without HTTP: the dispatcher is the unit under test.
struct Dispatcher {
    runtime: tokio::runtime::Runtime,
    service: Service,
    _data: tempfile::TempDir,
}

impl Dispatcher {
    fn new() -> Self {
        let data = tempfile::tempdir().unwrap();
        let config = settings_from_args([
            "matrix-membership",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--no-rate-limits",
        ])
        .unwrap();
        Dispatcher {
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
            service: Service::open(&config).unwrap(),
            _data: data,
        }
    }

    /// Dispatches anonymously: handlers that need a token answer 401, but the
    /// body and parameters are parsed first, whatever the operation.
    fn dispatch(
        &self,
        op: Operation,
        params: &[(String, String)],
        query: &[(String, String)],
        body: &[u8],
    ) -> Result<u16, DispatchError> {
        let context = RequestContext::new(Default::default(), None);
        let request = RawRequest {
            path_params: params,
            query,
            body,
        };
        self.runtime
            .block_on(dispatch(&self.service, op, request, &context))
            .map(|r| r.status)
    }
}

/// Values that pass every path parameter's pattern, so that the body is reached.
fn valid_path_params(op: Operation) -> Vec<(String, String)> {
    op.path()
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| {
            let value = match name {
                "roomId" | "roomIdOrAlias" => "!room:localhost",
                "roomAlias" => "#alias:localhost",
                "userId" => "@alice:localhost",
                _ => "x",
            };
            (name.to_string(), value.to_string())
        })
        .collect()
}

#[test]
fn the_generated_dispatcher_turns_any_input_into_a_documented_answer_or_a_request_error() {
    let d = Dispatcher::new();
    let op = (0..Operation::ALL.len()).prop_map(|i| Operation::ALL[i]);
    let text = prop_oneof![any::<String>(), "[!-~]{0,12}", Just("!room:localhost".to_string())];
    let pairs = proptest::collection::vec((prop_oneof!["[a-z_]{1,12}", any::<String>()], text.clone()), 0..3);
    let input = (op, pairs.clone(), pairs, body_bytes());
    let mut runner = TestRunner::new(dispatch_config());
    runner
        .run(&input, |(op, mut params, query, body)| {
            // Half the cases get parameters that pass, so that more reach the body.
            if body.len() % 2 == 0 {
                params = valid_path_params(op);
            }
            match d.dispatch(op, &params, &query, &body) {
                Ok(status) => {
                    prop_assert!(
                        op.statuses().contains(&status),
                        "{}: undocumented {}",
                        op.name(),
                        status
                    );
                    prop_assert!(status < 500, "{}: {}", op.name(), status);
                }
                Err(DispatchError::Request(_)) => {}
                Err(other) => prop_assert!(false, "{}: {:?}", op.name(), other),
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn a_body_that_is_not_json_or_not_an_object_is_refused_as_such_by_every_object_body() {
    let d = Dispatcher::new();
    let names = object_body_operations();
    assert!(names.len() >= 15, "{names:?}");
    let ops: Vec<Operation> = Operation::ALL
        .iter()
        .copied()
        .filter(|o| names.iter().any(|n| n == o.name()))
        .collect();
    let input = (0..ops.len(), body_bytes());
    let mut runner = TestRunner::new(dispatch_config());
    runner
        .run(&input, |(i, body)| {
            let op = ops[i];
            let parsed = serde_json::from_slice::<Value>(&body);
            let result = d.dispatch(op, &valid_path_params(op), &[], &body);
            if body.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            match parsed {
                Err(_) => prop_assert!(
                    matches!(result, Err(DispatchError::Request(RequestError::NotJson(_)))),
                    "{}: {:?}",
                    op.name(),
                    result
                ),
                Ok(v) if !v.is_object() => prop_assert!(
                    matches!(&result, Err(DispatchError::Request(RequestError::BadJson(m))) if m == "Content must be a JSON object."),
                    "{}: {:?}",
                    op.name(),
                    result
                ),
                Ok(_) => prop_assert!(
                    !matches!(result, Err(DispatchError::Api(_)) | Err(DispatchError::Serialize(_))),
                    "{}: {:?}",
                    op.name(),
                    result
                ),
            }
            Ok(())
        })
        .unwrap();
}
