//! Bodies are held to the JSON types the spec states, for every operation.
//!
//! serde's derived `Deserialize` for a struct also accepts a JSON array (so
//! `["@bob:localhost"]` on `/invite` used to invite bob) and `Option` also
//! accepts `null`; the generated dispatcher checks the shape first. These
//! walks are driven by `Operation::ALL` and the merged spec
//! (`generated::SWAGGER_JSON`), not by a list, so a new operation is covered
//! as soon as it is in `api-spec/`.

mod common;

use common::{RawResponse, TestServer, User};
use matrix_membership::generated::api::{GetJoinedRoomsResponse, GetMembersResponse, GetRoomAliasResponse};
use matrix_membership::generated::client::encode;
use matrix_membership::generated::models::CreateRoomRequestPreset;
use matrix_membership::generated::routes::Operation;
use matrix_membership::generated::SWAGGER_JSON;
use serde_json::{json, Value};
use std::path::Path;

/// An alias nothing points at; a server that took a non-object body for
/// `PUT /directory/room/{roomAlias}` would create it.
const ALIAS: &str = "#strict:localhost";

/// One operation whose body schema is an object, as the merged spec states it.
struct ObjectBody {
    operation: Operation,
    /// The operation object in the merged spec.
    spec: Value,
    /// The body schema with its top-level `$ref` resolved.
    schema: Value,
}

fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.strip_prefix("#/definitions/").expect("swagger.json refs are local");
            &spec["definitions"][name]
        }
        None => schema,
    }
}

/// Whether any `api-spec/` document (overlays too) gives the operation named
/// `name` a body parameter, for operations the merged document cannot hold.
fn has_body_in_api_spec(name: &str) -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("api-spec");
    let mut found = false;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let doc: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for item in doc["paths"].as_object().into_iter().flat_map(|p| p.values()) {
            for op in item.as_object().into_iter().flat_map(|o| o.values()) {
                if op["operationId"] == name {
                    let params = op["parameters"].as_array().into_iter().flatten();
                    found |= params.clone().any(|p| p["in"] == "body");
                }
            }
        }
    }
    found
}

/// Every operation with an object body. Operations outside the merged
/// document's basePath are not in it; they must take no body.
fn object_bodies(spec: &Value) -> Vec<ObjectBody> {
    let mut found = Vec::new();
    for op in Operation::ALL {
        let in_spec = spec["paths"]
            .as_object()
            .expect("paths")
            .values()
            .filter_map(|item| item.get(op.method().to_lowercase()))
            .find(|o| o["operationId"] == op.name());
        let Some(in_spec) = in_spec else {
            assert_ne!(
                op.base_path(),
                spec["basePath"],
                "{} is under the merged basePath but not in swagger.json",
                op.name()
            );
            assert!(
                !has_body_in_api_spec(op.name()),
                "{} has a body but is not in swagger.json: extend this walk to its document",
                op.name()
            );
            continue;
        };
        let body = in_spec["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["in"] == "body");
        if let Some(body) = body {
            let schema = resolve(spec, &body["schema"]).clone();
            if schema["type"] == "object" {
                found.push(ObjectBody {
                    operation: *op,
                    spec: in_spec.clone(),
                    schema,
                });
            }
        }
    }
    found
}

/// What the walk sends and watches: a room alice created and bob is not in.
struct World {
    alice: User,
    bob: User,
    token: String,
    room: String,
}

async fn world(s: &TestServer) -> World {
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let room = alice.create_room(CreateRoomRequestPreset::PublicChat).await;
    let token = alice.client.access_token().unwrap().to_string();
    World {
        alice,
        bob,
        token,
        room,
    }
}

/// The request path of `op` with every path parameter filled in: identifiers
/// that make the request effective (alice's room, alice herself, a free alias),
/// the spec's `x-example` for the rest.
fn path_of(w: &World, body: &ObjectBody) -> String {
    let params = body.spec["parameters"].as_array().unwrap();
    let mut path = body.operation.path().to_string();
    for p in params.iter().filter(|p| p["in"] == "path") {
        let name = p["name"].as_str().unwrap();
        let value = match name {
            "roomId" => w.room.clone(),
            "userId" => w.alice.id.clone(),
            "roomAlias" => ALIAS.to_string(),
            _ => p["x-example"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: give path parameter {name} an x-example", body.operation.name()))
                .to_string(),
        };
        path = path.replace(&format!("{{{name}}}"), &encode(&value));
    }
    let query: Vec<String> = params
        .iter()
        .filter(|p| p["in"] == "query" && p["required"] == true)
        .map(|p| {
            let example = &p["x-example"];
            let value = example
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| example.to_string());
            format!("{}={}", p["name"].as_str().unwrap(), encode(&value))
        })
        .collect();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    format!("{}{path}{query}", body.operation.base_path())
}

async fn send(s: &TestServer, w: &World, body: &ObjectBody, json: &Value) -> RawResponse {
    let auth = format!("Bearer {}", w.token);
    let mut headers = vec![("content-type", "application/json")];
    if body.operation.requires_auth() {
        headers.push(("authorization", auth.as_str()));
    }
    s.raw(
        body.operation.method(),
        &path_of(w, body),
        &headers,
        json.to_string().as_bytes(),
    )
    .await
}

/// What a walk may not have changed: no event written, no alias created,
/// bob not in or invited to alice's room, alice in no new room.
struct Snapshot {
    pos: u64,
    rooms: Vec<String>,
    bob_membership: Vec<String>,
}

async fn snapshot(s: &TestServer, w: &World) -> Snapshot {
    let rooms = match w.alice.client.get_joined_rooms().await.unwrap() {
        GetJoinedRoomsResponse::Ok(ok) => ok.joined_rooms,
        other => panic!("{other:?}"),
    };
    let bob_membership = match w.alice.client.get_members(&w.room, None, None, None).await.unwrap() {
        GetMembersResponse::Ok(ok) => ok
            .chunk
            .iter()
            .filter(|e| e.state_key.as_deref() == Some(w.bob.id.as_str()))
            .map(|e| e.content["membership"].to_string())
            .collect(),
        other => panic!("{other:?}"),
    };
    Snapshot {
        pos: s.service_pos(),
        rooms,
        bob_membership,
    }
}

async fn assert_nothing_changed(s: &TestServer, w: &World, before: &Snapshot) {
    let after = snapshot(s, w).await;
    assert_eq!(after.pos, before.pos, "an event was written");
    assert_eq!(after.rooms, before.rooms, "alice's rooms changed");
    assert_eq!(after.bob_membership, before.bob_membership, "bob's membership changed");
    assert!(
        matches!(
            w.alice.client.get_room_alias(ALIAS).await.unwrap(),
            GetRoomAliasResponse::NotFound(_)
        ),
        "{ALIAS} was created"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_object_body_refuses_json_that_is_not_an_object_and_nothing_changes() {
    let s = common::start().await;
    let w = world(&s).await;
    let spec: Value = serde_json::from_str(SWAGGER_JSON).unwrap();
    let bodies = object_bodies(&spec);
    // The seed's two, membership changes, room creation, state, accounts, ...
    assert!(
        bodies.len() >= 15,
        "only {} operations with an object body",
        bodies.len()
    );
    let before = snapshot(&s, &w).await;
    // Arrays a derived struct would take field by field: empty (every field
    // optional), or one identifier (invite bob, kick bob, alias the room).
    let probes = [
        json!([]),
        json!([w.bob.id]),
        json!([w.room]),
        json!("x"),
        json!(5),
        json!(null),
    ];
    let mut failures = Vec::new();
    for body in &bodies {
        for probe in &probes {
            let r = send(&s, &w, body, probe).await;
            let error = r.json["error"].as_str().unwrap_or("");
            if r.status != 400 || r.errcode() != "M_BAD_JSON" || error != "Content must be a JSON object." {
                failures.push(format!(
                    "{} with {probe}: {} {}",
                    body.operation.name(),
                    r.status,
                    String::from_utf8_lossy(&r.bytes)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "accepted a body that is not an object:\n{}",
        failures.join("\n")
    );
    assert_nothing_changed(&s, &w, &before).await;
}

/// A value of every JSON type that `ty` does not admit, `null` included
/// (no typed property takes it). An integer is also a number.
fn wrong_values(ty: &str) -> Vec<Value> {
    let one_of_each = [
        ("string", json!("x")),
        ("number", json!(1.5)),
        ("integer", json!(7)),
        ("boolean", json!(true)),
        ("array", json!(["x"])),
        ("object", json!({"0": "x"})),
        ("null", json!(null)),
    ];
    one_of_each
        .into_iter()
        .filter(|(t, _)| *t != ty && !(ty == "number" && *t == "integer"))
        .map(|(_, v)| v)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_typed_property_of_an_object_body_refuses_a_value_of_another_type_or_null() {
    let s = common::start().await;
    let w = world(&s).await;
    let spec: Value = serde_json::from_str(SWAGGER_JSON).unwrap();
    let before = snapshot(&s, &w).await;
    let mut probed = 0;
    let mut failures = Vec::new();
    for body in object_bodies(&spec) {
        for (name, prop) in body.schema["properties"].as_object().into_iter().flatten() {
            let prop = resolve(&spec, prop);
            let Some(ty) = prop["type"].as_str() else { continue };
            for wrong in wrong_values(ty) {
                // Alone in the body: the shape is checked before required fields are.
                let r = send(&s, &w, &body, &json!({ name: wrong })).await;
                probed += 1;
                let error = r.json["error"].as_str().unwrap_or("");
                if r.status != 400 || r.errcode() != "M_BAD_JSON" || !error.contains(&format!("{name} must be")) {
                    failures.push(format!(
                        "{}: {name} = {wrong}: {} {}",
                        body.operation.name(),
                        r.status,
                        String::from_utf8_lossy(&r.bytes)
                    ));
                }
            }
        }
    }
    assert!(probed >= 100, "only {probed} probes");
    assert!(
        failures.is_empty(),
        "accepted a property of the wrong type:\n{}",
        failures.join("\n")
    );
    assert_nothing_changed(&s, &w, &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_objects_and_array_items_are_held_to_their_types_too() {
    let s = common::start().await;
    let w = world(&s).await;
    let auth = format!("Bearer {}", w.token);
    let h = [("authorization", auth.as_str()), ("content-type", "application/json")];
    let v1 = "/_matrix/client/api/v1";
    let cases = [
        (
            "/createRoom",
            json!({"initial_state": [["m.room.topic", "", {"topic": "x"}]]}),
            "initial_state[0] must be a JSON object",
        ),
        (
            "/createRoom",
            json!({"initial_state": [{"type": "m.room.topic", "content": []}]}),
            "initial_state[0].content must be a JSON object",
        ),
        (
            "/createRoom",
            json!({"invite": [w.bob.id, 5]}),
            "invite[1] must be a string",
        ),
        (
            "/createRoom",
            json!({"invite": null}),
            "invite must be an array, not null",
        ),
        (
            "/register",
            json!({"username": "carol", "auth": ["m.login.dummy"]}),
            "auth must be a JSON object",
        ),
        (
            "/login",
            json!({"type": "m.login.password", "identifier": ["m.id.user", "alice"], "password": "alice-password"}),
            "identifier must be a JSON object",
        ),
    ];
    let before = snapshot(&s, &w).await;
    for (path, body, message) in cases {
        let r = s
            .raw("POST", &format!("{v1}{path}"), &h, body.to_string().as_bytes())
            .await;
        r.assert_error(400, "M_BAD_JSON");
        assert!(
            r.json["error"].as_str().unwrap().contains(message),
            "{path} {body}: {}",
            String::from_utf8_lossy(&r.bytes)
        );
    }
    assert_nothing_changed(&s, &w, &before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_body_for_an_optional_body_is_still_no_body() {
    let s = common::start().await;
    let w = world(&s).await;
    let auth = format!("Bearer {}", w.bob.client.access_token().unwrap());
    let join = format!("/_matrix/client/api/v1/rooms/{}/join", encode(&w.room));
    let r = s.raw("POST", &join, &[("authorization", auth.as_str())], b"  ").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let r = s.raw("POST", &join, &[("authorization", auth.as_str())], b"null").await;
    r.assert_error(400, "M_BAD_JSON");
}
