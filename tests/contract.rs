//! The contract checker the harness runs on every response, tested on its own,
//! and the rule that the spec documents every status the HTTP edge can send.

mod common;

use common::contract::Contract;
use matrix_membership::generated::routes::{Operation, ROUTES};

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
