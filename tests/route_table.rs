//! The generated route table and the spec's operations match in both
//! directions, for whatever documents `api-spec/` holds.
//!
//! The spec side is read straight from `api-spec/*.yaml` (each `X.overlay.yaml`
//! merged into `X.yaml` by the generator's own rule, `codegen::spec::load`);
//! the code side is `matrix_membership::generated::routes`.

#[path = "../src/codegen/mod.rs"]
#[allow(dead_code)]
mod codegen;

use matrix_membership::generated::routes::{Operation, Route, ROUTES};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// One operation as the spec writes it.
#[derive(Debug)]
struct SpecOperation {
    doc: String,
    method: String,
    base_path: String,
    /// The path key exactly as written (the seed's invite key ends in a space).
    key: String,
    aliases: Vec<String>,
}

impl SpecOperation {
    fn label(&self) -> String {
        format!("{}: {} {} + {:?}", self.doc, self.method, self.base_path, self.key)
    }

    fn path(&self) -> &str {
        self.key.trim()
    }

    /// Every template a request may use for this operation.
    fn templates(&self) -> Vec<&str> {
        let mut t = vec![self.path()];
        t.extend(self.aliases.iter().map(|a| a.trim()));
        t
    }
}

fn spec_operations() -> Vec<SpecOperation> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("api-spec");
    let set = codegen::spec::load(&dir).unwrap_or_else(|e| panic!("cannot load api-spec/: {e}"));
    assert!(!set.documents.is_empty(), "api-spec/ holds no Swagger document");
    let mut ops = Vec::new();
    for doc in &set.documents {
        let base_path = doc.value["basePath"]
            .as_str()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string();
        let paths = doc.value["paths"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: no paths", doc.name));
        for (key, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                if !METHODS.contains(&method.as_str()) {
                    continue; // path-level parameters, x- extensions
                }
                let aliases = op["x-alias"]["aliases"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                    .unwrap_or_default();
                ops.push(SpecOperation {
                    doc: doc.name.clone(),
                    method: method.to_uppercase(),
                    base_path: base_path.clone(),
                    key: key.clone(),
                    aliases,
                });
            }
        }
    }
    assert!(!ops.is_empty(), "api-spec/ documents no operation");
    ops
}

fn rows_for<'a>(method: &str, base_path: &str, template: &str) -> Vec<&'a Route> {
    ROUTES
        .iter()
        .filter(|r| r.method == method && r.base_path == base_path && r.template == template)
        .collect()
}

/// The Operation each spec operation is served by, checking every template has exactly one row.
fn operation_of(op: &SpecOperation) -> Operation {
    let mut found = BTreeSet::new();
    for t in op.templates() {
        let rows = rows_for(&op.method, &op.base_path, t);
        assert_eq!(
            rows.len(),
            1,
            "{}: expected exactly one route row for {} {}{t}, found {rows:?}",
            op.label(),
            op.method,
            op.base_path
        );
        found.insert(rows[0].operation);
    }
    assert_eq!(
        found.len(),
        1,
        "{}: its path and aliases route to different operations: {found:?}",
        op.label()
    );
    found.into_iter().next().unwrap()
}

#[test]
fn every_spec_path_and_alias_has_a_route_to_one_operation() {
    for op in spec_operations() {
        let operation = operation_of(&op);
        assert_eq!(operation.method(), op.method, "{}", op.label());
        assert_eq!(operation.base_path(), op.base_path, "{}", op.label());
        assert_eq!(
            operation.path(),
            op.path(),
            "{}: the canonical path is the trimmed key",
            op.label()
        );
    }
}

#[test]
fn every_route_row_is_a_spec_path_an_alias_or_the_untrimmed_key() {
    let ops = spec_operations();
    for row in ROUTES {
        let matches: Vec<&SpecOperation> = ops
            .iter()
            .filter(|op| op.method == row.method && op.base_path == row.base_path)
            .filter(|op| op.templates().contains(&row.template) || op.key == row.template)
            .collect();
        assert!(
            !matches.is_empty(),
            "route row {row:?} corresponds to nothing in api-spec/"
        );
        for op in matches {
            assert_eq!(
                operation_of(op),
                row.operation,
                "route row {row:?} serves another operation than {}",
                op.label()
            );
        }
    }
}

#[test]
fn no_two_route_rows_claim_the_same_method_and_path() {
    let mut seen = BTreeMap::new();
    for row in ROUTES {
        if let Some(prev) = seen.insert((row.method, row.base_path, row.template), row.operation) {
            panic!(
                "{} {}{:?} is routed twice: to {prev:?} and {:?}",
                row.method, row.base_path, row.template, row.operation
            );
        }
    }
}

#[test]
fn operation_all_has_exactly_one_entry_per_spec_operation() {
    let ops = spec_operations();
    let served: BTreeSet<Operation> = ops.iter().map(operation_of).collect();
    assert_eq!(served.len(), ops.len(), "two spec operations share one Operation");
    let all: BTreeSet<Operation> = Operation::ALL.iter().copied().collect();
    assert_eq!(
        all.len(),
        Operation::ALL.len(),
        "Operation::ALL lists an operation twice: {:?}",
        Operation::ALL
    );
    assert_eq!(all, served, "Operation::ALL and the spec's operations differ");
    let routed: BTreeSet<Operation> = ROUTES.iter().map(|r| r.operation).collect();
    assert_eq!(routed, all, "some Operation has no route row");
}

#[test]
fn operation_names_are_unique_and_statuses_are_the_documented_responses() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("api-spec");
    let set = codegen::spec::load(&dir).unwrap();
    let names: BTreeSet<&str> = Operation::ALL.iter().map(|o| o.name()).collect();
    assert_eq!(names.len(), Operation::ALL.len(), "two operations share a name");
    for op in spec_operations() {
        let operation = operation_of(&op);
        let doc = set.documents.iter().find(|d| d.name == op.doc).unwrap();
        let responses = &doc.value["paths"][&op.key][op.method.to_lowercase()]["responses"];
        let mut documented: Vec<u16> = responses
            .as_object()
            .unwrap_or_else(|| panic!("{}: no responses", op.label()))
            .keys()
            .map(|k| {
                k.parse()
                    .unwrap_or_else(|_| panic!("{}: status {k:?} is not numeric", op.label()))
            })
            .collect();
        documented.sort();
        let mut generated = operation.statuses().to_vec();
        generated.sort();
        assert_eq!(generated, documented, "{}: documented statuses", op.label());
    }
}
