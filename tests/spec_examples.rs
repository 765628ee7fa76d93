//! Every example in the spec is JSON and valid against its schema.
//!
//! Checked: response `examples` (the seed writes `application/json` values as
//! JSON *strings*; they are parsed), `example`s on any schema (body
//! parameters, responses, definitions and their properties), and `x-example`s
//! of path and query parameters. Schemas are validated as JSON Schema draft 4
//! with the document's `definitions` as root, so `#/definitions/...` resolves.
//!
//! Two sources: the merged swagger.json the crate compiles (what is served),
//! and each `api-spec/` document generated on its own, because the merged
//! document only holds the operations under the main basePath.
//!
//! To make sure nothing is skipped, every `example`/`x-example`/`examples`
//! entry anywhere in a document must have been checked.

#[path = "../src/codegen/mod.rs"]
#[allow(dead_code)]
mod codegen;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// The seed alone has 11 examples in the merged document (its alias repeats
/// the join operation); more spec can only add to that.
const MIN_EXAMPLES: usize = 11;

/// Appends one JSON-pointer token.
fn ptr(base: &str, token: &str) -> String {
    format!("{base}/{}", token.replace('~', "~0").replace('/', "~1"))
}

#[derive(Default)]
struct Checker {
    checked: BTreeSet<String>,
    failures: Vec<String>,
}

impl Checker {
    /// Validates `example` against `schema`; `what` says where it is for humans.
    fn check(&mut self, defs: &Value, schema: &Value, example: &Value, pointer: &str, what: &str) {
        self.checked.insert(pointer.to_string());
        let instance = match example_value(defs, schema, example) {
            Ok(v) => v,
            Err(e) => {
                self.failures
                    .push(format!("{what}: the example is not JSON: {e}\n  example: {example}"));
                return;
            }
        };
        let root = json!({"definitions": defs, "allOf": [schema]});
        let validator = match jsonschema::draft4::new(&root) {
            Ok(v) => v,
            Err(e) => {
                self.failures.push(format!(
                    "{what}: the schema is not valid JSON Schema: {e}\n  schema: {schema}"
                ));
                return;
            }
        };
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .map(|e| format!("{e} (at /{})", e.instance_path.to_string().trim_start_matches('/')))
            .collect();
        if !errors.is_empty() {
            self.failures.push(format!(
                "{what}: the example does not match its schema:\n  - {}\n  example: {instance}\n  schema: {schema}",
                errors.join("\n  - ")
            ));
        }
    }

    /// Checks the `example` of `schema` and of every schema nested in it.
    fn walk_schema(&mut self, defs: &Value, schema: &Value, pointer: &str, what: &str) {
        let Some(obj) = schema.as_object() else {
            return;
        };
        if let Some(example) = obj.get("example") {
            self.check(defs, schema, example, &ptr(pointer, "example"), what);
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (name, prop) in props {
                let p = ptr(&ptr(pointer, "properties"), name);
                self.walk_schema(defs, prop, &p, &format!("{what}, property {name}"));
            }
        }
        for key in ["items", "additionalProperties"] {
            if let Some(inner) = obj.get(key).filter(|v| v.is_object()) {
                self.walk_schema(defs, inner, &ptr(pointer, key), &format!("{what}, {key}"));
            }
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            for (i, inner) in obj.get(key).and_then(Value::as_array).into_iter().flatten().enumerate() {
                let p = ptr(&ptr(pointer, key), &i.to_string());
                self.walk_schema(defs, inner, &p, &format!("{what}, {key}[{i}]"));
            }
        }
    }

    fn walk_parameter(&mut self, defs: &Value, param: &Value, pointer: &str, what: &str) {
        let name = param["name"].as_str().unwrap_or("?");
        let what = format!("{what}, parameter {name}");
        if param["in"] == "body" {
            self.walk_schema(defs, &param["schema"], &ptr(pointer, "schema"), &what);
            return;
        }
        if let Some(example) = param.get("x-example") {
            // A non-body parameter is its own (primitive) schema.
            let mut schema = serde_json::Map::new();
            for key in [
                "type",
                "format",
                "enum",
                "items",
                "minimum",
                "maximum",
                "exclusiveMinimum",
                "exclusiveMaximum",
                "minLength",
                "maxLength",
                "pattern",
                "minItems",
                "maxItems",
                "uniqueItems",
                "multipleOf",
            ] {
                if let Some(v) = param.get(key) {
                    schema.insert(key.to_string(), v.clone());
                }
            }
            self.check(defs, &Value::Object(schema), example, &ptr(pointer, "x-example"), &what);
        }
    }

    /// Walks a whole Swagger document.
    fn walk_document(&mut self, doc: &Value, source: &str) {
        let defs = doc.get("definitions").cloned().unwrap_or_else(|| json!({}));
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            let item_ptr = ptr("/paths", path);
            let shared = item.get("parameters").and_then(Value::as_array).into_iter().flatten();
            for (i, p) in shared.enumerate() {
                let pp = ptr(&ptr(&item_ptr, "parameters"), &i.to_string());
                self.walk_parameter(&defs, p, &pp, &format!("{source}: {path}"));
            }
            for (method, op) in item.as_object().into_iter().flatten() {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                let what = format!("{source}: {} {path}", method.to_uppercase());
                let op_ptr = ptr(&item_ptr, method);
                for (i, p) in op["parameters"].as_array().into_iter().flatten().enumerate() {
                    let pp = ptr(&ptr(&op_ptr, "parameters"), &i.to_string());
                    self.walk_parameter(&defs, p, &pp, &what);
                }
                for (status, resp) in op["responses"].as_object().into_iter().flatten() {
                    let what = format!("{what} response {status}");
                    let resp_ptr = ptr(&ptr(&op_ptr, "responses"), status);
                    // No schema: the generated code reads an open JSON object.
                    let schema = resp.get("schema").cloned().unwrap_or_else(|| json!({"type": "object"}));
                    self.walk_schema(&defs, &schema, &ptr(&resp_ptr, "schema"), &what);
                    for (media, example) in resp["examples"].as_object().into_iter().flatten() {
                        let p = ptr(&ptr(&resp_ptr, "examples"), media);
                        if media != "application/json" {
                            self.checked.insert(p);
                            self.failures
                                .push(format!("{what}: an example for {media}, which is not served"));
                            continue;
                        }
                        self.check(&defs, &schema, example, &p, &format!("{what} example"));
                    }
                }
            }
        }
        for (name, schema) in defs.as_object().into_iter().flatten() {
            let p = ptr("/definitions", name);
            self.walk_schema(&defs, schema, &p, &format!("{source}: definition {name}"));
        }
    }
}

/// The example as a JSON value: strings are parsed unless the schema is a string.
fn example_value(defs: &Value, schema: &Value, example: &Value) -> Result<Value, String> {
    let Value::String(text) = example else {
        return Ok(example.clone());
    };
    let mut target = schema;
    if let Some(name) = schema["$ref"].as_str().and_then(|r| r.strip_prefix("#/definitions/")) {
        target = &defs[name];
    }
    if target["type"] == "string" {
        return Ok(example.clone());
    }
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Every place a document holds an example, whatever the structure around it.
fn example_locations(v: &Value, pointer: &str, names_map: bool, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                let p = ptr(pointer, k);
                // Keys of `properties`/`definitions` are names, not keywords.
                if !names_map {
                    match k.as_str() {
                        "example" | "x-example" => {
                            out.insert(p.clone());
                        }
                        "examples" => {
                            for media in child.as_object().into_iter().flat_map(|m| m.keys()) {
                                out.insert(ptr(&p, media));
                            }
                            continue;
                        }
                        _ => {}
                    }
                }
                if !names_map && matches!(k.as_str(), "example" | "x-example") {
                    continue;
                }
                let child_is_names = !names_map && matches!(k.as_str(), "properties" | "definitions");
                example_locations(child, &p, child_is_names, out);
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                example_locations(child, &ptr(pointer, &i.to_string()), false, out);
            }
        }
        _ => {}
    }
}

/// Checks one document; returns how many examples were checked.
fn check_document(doc: &Value, source: &str) -> usize {
    let mut checker = Checker::default();
    checker.walk_document(doc, source);
    let mut everywhere = BTreeSet::new();
    example_locations(doc, "", false, &mut everywhere);
    let unchecked: Vec<&String> = everywhere.difference(&checker.checked).collect();
    assert!(
        unchecked.is_empty(),
        "{source}: examples in places this test does not know how to check: {unchecked:?}"
    );
    assert!(
        checker.failures.is_empty(),
        "{} bad example(s):\n{}",
        checker.failures.len(),
        checker.failures.join("\n\n")
    );
    checker.checked.len()
}

#[test]
fn every_example_in_the_served_swagger_document_is_json_valid_against_its_schema() {
    let doc: Value = serde_json::from_str(matrix_membership::generated::SWAGGER_JSON).unwrap();
    let checked = check_document(&doc, "swagger.json");
    assert!(
        checked >= MIN_EXAMPLES,
        "only {checked} examples were checked; the seed spec alone has {MIN_EXAMPLES}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The merged document of one `api-spec/` document alone (so that its basePath
/// is the main one), generated from a copy in which every other document
/// keeps its definitions (for `$ref`s) but loses its paths and overlays.
fn document_alone(spec: &Path, name: &str) -> Value {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(spec, dir.path());
    let stem = name.trim_end_matches(".yaml").trim_end_matches(".yml");
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() || !(file.ends_with(".yaml") || file.ends_with(".yml")) || file == name {
            continue;
        }
        if let Some((target, _)) = file.split_once(".overlay.") {
            if target != stem {
                std::fs::remove_file(&path).unwrap();
            }
            continue;
        }
        let mut other = codegen::spec::read_yaml(&path).unwrap();
        other["paths"] = json!({});
        std::fs::write(&path, serde_yaml_ng::to_string(&other).unwrap()).unwrap();
    }
    let generated = codegen::generate(dir.path()).unwrap_or_else(|e| panic!("{name} alone: {e}"));
    let (_, swagger) = generated.files.iter().find(|(n, _)| n == "swagger.json").unwrap();
    serde_json::from_str(swagger).unwrap()
}

#[test]
fn every_example_in_every_api_spec_document_is_json_valid_against_its_schema() {
    let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("api-spec");
    let set = codegen::spec::load(&spec).unwrap_or_else(|e| panic!("cannot load api-spec/: {e}"));
    let mut checked = 0;
    for doc in &set.documents {
        checked += check_document(&document_alone(&spec, &doc.name), &doc.name);
    }
    assert!(
        checked >= MIN_EXAMPLES,
        "only {checked} examples were checked in api-spec/"
    );
}

#[test]
fn a_bad_example_is_reported_with_its_operation_and_status() {
    let doc = json!({
        "swagger": "2.0",
        "paths": {"/rooms/{roomId}/join": {"post": {
            "parameters": [{"in": "path", "name": "roomId", "type": "string", "required": true, "x-example": 5}],
            "responses": {
                "200": {"schema": {"$ref": "#/definitions/Error"},
                        "examples": {"application/json": "{\"error\": \"no errcode\"}"}},
                "403": {"schema": {"type": "object"}, "examples": {"application/json": "{not json"}}
            }
        }}},
        "definitions": {"Error": {"type": "object", "required": ["errcode"],
                                  "properties": {"errcode": {"type": "string"}},
                                  "example": {"errcode": 7}}}
    });
    let mut checker = Checker::default();
    checker.walk_document(&doc, "test");
    let all = checker.failures.join("\n");
    assert_eq!(checker.failures.len(), 4, "{all}");
    assert!(
        all.contains("test: POST /rooms/{roomId}/join response 200 example: the example does not match"),
        "{all}"
    );
    assert!(
        all.contains("test: POST /rooms/{roomId}/join response 403 example: the example is not JSON"),
        "{all}"
    );
    assert!(
        all.contains("test: POST /rooms/{roomId}/join, parameter roomId"),
        "{all}"
    );
    assert!(all.contains("test: definition Error"), "{all}");
    let mut everywhere = BTreeSet::new();
    example_locations(&doc, "", false, &mut everywhere);
    assert_eq!(everywhere, checker.checked);
}

#[test]
fn an_example_in_a_place_the_walk_does_not_know_is_noticed() {
    let doc = json!({"swagger": "2.0", "paths": {}, "x-samples": {"example": {"a": 1}},
                     "definitions": {"example": {"type": "object", "properties": {"example": {"type": "string"}}}}});
    let mut checker = Checker::default();
    checker.walk_document(&doc, "test");
    let mut everywhere = BTreeSet::new();
    example_locations(&doc, "", false, &mut everywhere);
    // A definition or property *named* example is not an example.
    assert_eq!(everywhere.into_iter().collect::<Vec<_>>(), ["/x-samples/example"]);
    assert!(checker.checked.is_empty());
}
