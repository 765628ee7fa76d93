//! The contract checker the harness runs on every response, tested on its own,
//! the rule that the spec documents every status the HTTP edge can send, and
//! the rule that it states the identifier grammar the server holds to.

mod common;

use common::contract::Contract;
use matrix_membership::generated::routes::{Operation, ROUTES};
use matrix_membership::generated::SWAGGER_JSON;
use matrix_membership::ids;
use serde_json::Value;

const JSON: Option<&str> = Some("application/json");
const JOIN: &str = "post_rooms_room_id_join";

#[test]
fn a_documented_join_answer_passes_the_checker() {
    let c = Contract::get();
    assert_eq!(c.check(JOIN, 200, JSON, br#"{"room_id": "!a:localhost"}"#), Ok(()));
    assert_eq!(
        c.check(JOIN, 403, JSON, br#"{"errcode": "M_FORBIDDEN", "error": "no"}"#),
        Ok(())
    );
}

#[test]
fn the_checker_rejects_a_join_answer_without_room_id() {
    let err = Contract::get().check(JOIN, 200, JSON, b"{}").unwrap_err();
    assert!(err.contains("room_id"), "{err}");
    assert!(err.contains("200"), "{err}");
}

#[test]
fn the_checker_rejects_an_error_body_that_is_not_a_matrix_error() {
    let err = Contract::get()
        .check(JOIN, 403, JSON, br#"{"error": "no errcode"}"#)
        .unwrap_err();
    assert!(err.contains("errcode"), "{err}");
}

#[test]
fn the_checker_rejects_an_undocumented_status() {
    let err = Contract::get()
        .check(JOIN, 418, JSON, br#"{"errcode": "M_TEAPOT"}"#)
        .unwrap_err();
    assert!(err.contains("418") && err.contains(JOIN), "{err}");
    let err = Contract::get()
        .check("get_versions", 500, JSON, br#"{"errcode": "M_UNKNOWN"}"#)
        .unwrap_err();
    assert!(err.contains("500") && err.contains("get_versions"), "{err}");
}

#[test]
fn the_checker_rejects_a_wrong_content_type_and_a_body_that_is_not_json() {
    let c = Contract::get();
    let body = br#"{"room_id": "!a:localhost"}"#;
    assert!(c.check(JOIN, 200, Some("text/plain"), body).is_err());
    assert!(c.check(JOIN, 200, None, body).is_err());
    assert_eq!(
        c.check(JOIN, 200, Some("application/json; charset=utf-8"), body),
        Ok(())
    );
    assert!(c.check(JOIN, 200, JSON, b"room_id").is_err());
}

#[test]
fn the_checker_rejects_an_operation_it_does_not_know() {
    assert!(Contract::get().check("no_such_operation", 200, JSON, b"{}").is_err());
}

#[test]
fn answers_that_reach_no_operation_must_be_matrix_errors() {
    let c = Contract::get();
    assert_eq!(
        c.check_unrouted(405, JSON, br#"{"errcode": "M_UNRECOGNIZED", "error": "x"}"#),
        Ok(())
    );
    assert!(c.check_unrouted(404, JSON, b"{}").is_err());
    assert!(c.check_unrouted(200, JSON, b"{}").is_err());
}

#[test]
fn every_routed_operation_has_a_contract_including_those_outside_swagger_json() {
    let c = Contract::get();
    for op in Operation::ALL {
        assert!(c.knows(op.name()), "{} has no documented responses", op.name());
    }
    assert!(c.statuses("get_versions").contains(&200));
}

/// The edge answers some statuses before an operation's handler runs
/// (src/http/server.rs): 413 for any body over the limit; for operations that
/// take a token 401 for a missing or unknown one and 400 for two different
/// ones; 400 `M_INVALID_PARAM` for a path parameter that does not decode.
/// Each must be in the operation's spec.
#[test]
fn every_operation_documents_the_statuses_the_edge_can_send_for_it() {
    let c = Contract::get();
    let mut missing = Vec::new();
    for op in Operation::ALL {
        let mut needed = vec![413];
        if op.requires_auth() {
            needed.extend([400, 401]);
        }
        if ROUTES.iter().any(|r| r.operation == *op && r.template.contains('{')) {
            needed.push(400);
        }
        let documented = c.statuses(op.name());
        for status in needed {
            if !documented.contains(&status) && !missing.contains(&(op.name(), status)) {
                missing.push((op.name(), status));
            }
        }
    }
    assert!(missing.is_empty(), "undocumented edge statuses: {missing:?}");
}

/// Clients made outside the harness would skip the checks: every test file
/// gets its clients from `tests/common` (`TestServer::client`, `checked_client`).
#[test]
fn no_test_file_builds_an_unchecked_client() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        // This file names the needles; it builds no client.
        if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("contract.rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for needle in ["Client::new(", "HyperClient", "build_http"] {
                if text.contains(needle) {
                    offenders.push(format!("{} uses {needle}", path.display()));
                }
            }
        }
    }
    assert!(offenders.is_empty(), "{offenders:?}");
}

/// The identifier fields and parameters of the spec and the grammar they
/// carry (`src/ids.rs`): by property name, by the name of a string array
/// whose items are identifiers, and by path parameter name.
const ID_PROPERTIES: &[(&str, &str)] = &[
    ("user_id", ids::USER_ID_PATTERN),
    ("sender", ids::USER_ID_PATTERN),
    ("inviter", ids::USER_ID_PATTERN),
    ("room_id", ids::ROOM_ID_PATTERN),
    ("room_alias", ids::ROOM_ALIAS_PATTERN),
    ("event_id", ids::EVENT_ID_PATTERN),
    ("home_server", ids::SERVER_NAME_PATTERN),
];
const ID_ARRAYS: &[(&str, &str)] = &[
    ("invite", ids::USER_ID_PATTERN),
    ("changed", ids::USER_ID_PATTERN),
    ("left", ids::USER_ID_PATTERN),
    ("joined_rooms", ids::ROOM_ID_PATTERN),
    ("servers", ids::SERVER_NAME_PATTERN),
];
const ID_PARAMETERS: &[(&str, &str)] = &[
    ("roomId", ids::ROOM_ID_PATTERN),
    ("roomAlias", ids::ROOM_ALIAS_PATTERN),
    ("userId", ids::USER_ID_PATTERN),
];

/// Every schema under `v` with the JSON pointer to it, collected into `out`.
fn properties<'a>(v: &'a Value, at: String, out: &mut Vec<(String, String, &'a Value)>) {
    match v {
        Value::Object(o) => {
            if let Some(props) = o.get("properties").and_then(Value::as_object) {
                for (name, schema) in props {
                    out.push((format!("{at}/properties/{name}"), name.clone(), schema));
                }
            }
            for (k, child) in o {
                properties(child, format!("{at}/{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                properties(child, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn states_grammar(schema: &Value, pattern: &str) -> Result<(), String> {
    if schema["type"] != "string" || schema["pattern"] != pattern || schema["maxLength"] != ids::MAX_ID_BYTES {
        return Err(format!(
            "should be a string with pattern {pattern:?} and maxLength 255, is {schema}"
        ));
    }
    Ok(())
}

#[test]
fn every_identifier_in_the_spec_states_the_grammar_of_src_ids_rs() {
    let spec: Value = serde_json::from_str(SWAGGER_JSON).unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    let mut props = Vec::new();
    properties(&spec, String::new(), &mut props);
    for (at, name, schema) in &props {
        let own = ID_PROPERTIES.iter().find(|(n, _)| n == name);
        // `invite` is also an event and a map elsewhere: only arrays are lists of ids.
        let items = ID_ARRAYS.iter().find(|(n, _)| n == name && schema["type"] == "array");
        let result = match (own, items) {
            (Some((_, p)), _) => states_grammar(schema, p),
            (_, Some((_, p))) => states_grammar(&schema["items"], p).map_err(|e| format!("items {e}")),
            _ => continue,
        };
        checked += 1;
        if let Err(e) = result {
            problems.push(format!("{at}: {e}"));
        }
    }
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let Some((name, pattern)) = ID_PARAMETERS.iter().find(|(n, _)| p["name"] == *n) else {
                    continue;
                };
                // The join takes a room id or an alias under the seed's name roomId.
                let takes_alias = path.starts_with("/join/") || path.ends_with("/join");
                let pattern = if takes_alias && *name == "roomId" {
                    ids::ROOM_ID_OR_ALIAS_PATTERN
                } else {
                    pattern
                };
                checked += 1;
                if let Err(e) = states_grammar(p, pattern) {
                    problems.push(format!("{method} {path} parameter {name}: {e}"));
                }
            }
        }
    }
    assert!(checked >= 40, "only {checked} identifiers found");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_pattern_in_the_spec_is_an_identifier_grammar_or_one_of_four_named_ones() {
    // A hand-copied pattern that drifted from src/ids.rs would be caught here
    // even on a field the lists above do not name.
    let grammars = [
        ids::USER_ID_PATTERN,
        ids::ROOM_ID_PATTERN,
        ids::ROOM_ALIAS_PATTERN,
        ids::ROOM_ID_OR_ALIAS_PATTERN,
        ids::EVENT_ID_PATTERN,
        ids::SERVER_NAME_PATTERN,
        // Not identifiers, but parts of them or the server's own tokens:
        // a registration localpart (lower-cased by the server), an alias
        // localpart, a stream token `s<position>`, and text that will be a
        // store key (an event type, state key, device ID), which may hold
        // anything but U+0000: PostgreSQL `text` cannot.
        "^[A-Za-z0-9._=/-]+$",
        "^[!-9;-~]+$",
        "^s[0-9]{1,19}$",
        "^[^\\u0000]*$",
    ];
    fn patterns<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
        match v {
            Value::Object(o) => {
                if let Some(p) = o.get("pattern").and_then(Value::as_str) {
                    out.push((at.clone(), p));
                }
                for (k, child) in o {
                    patterns(child, format!("{at}/{k}"), out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    patterns(child, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let spec: Value = serde_json::from_str(SWAGGER_JSON).unwrap();
    let mut found = Vec::new();
    patterns(&spec, String::new(), &mut found);
    let strays: Vec<_> = found.iter().filter(|(_, p)| !grammars.contains(p)).collect();
    assert!(!found.is_empty());
    assert!(
        strays.is_empty(),
        "patterns that are no grammar of src/ids.rs: {strays:?}"
    );
}
