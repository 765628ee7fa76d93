//! In-process contract checks: every response an integration test sees is
//! checked against the spec for its operation and status.
//!
//! The schemas come from the merged `swagger.json` the crate compiles
//! (`SWAGGER_JSON`). Operations outside its basePath (`GET /_matrix/client/versions`)
//! are not in that document, so for them the generator's own merge is run over
//! `api-spec/` once more, one document per basePath. Each schema is compiled as
//! JSON Schema draft 4 with the document's `definitions` beside it, so
//! `#/definitions/...` resolves.
//!
//! A response passes when its status is documented for the operation, its
//! `Content-Type` is `application/json`, and its body is JSON that validates
//! against the documented schema (any JSON when the status has no schema).

use matrix_membership::generated::SWAGGER_JSON;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

#[path = "../../src/codegen/mod.rs"]
#[allow(dead_code, unused_imports)]
mod codegen;

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// One documented response: its schema, compiled, if it has one.
struct Documented {
    validator: Option<jsonschema::Validator>,
    schema: Value,
}

/// The documented responses of every operation, by operation name.
pub struct Contract {
    operations: BTreeMap<String, BTreeMap<u16, Documented>>,
    /// The Matrix error object, for answers that belong to no operation (404, 405).
    error: jsonschema::Validator,
}

fn compile(defs: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({"definitions": defs, "allOf": [schema]});
    jsonschema::draft4::new(&root)
        .unwrap_or_else(|e| panic!("the spec has a schema that does not compile: {e}\n{schema}"))
}

impl Contract {
    fn add_document(&mut self, doc: &Value) {
        let defs = doc.get("definitions").cloned().unwrap_or_else(|| json!({}));
        let paths = doc["paths"].as_object().expect("paths");
        for item in paths.values() {
            for method in METHODS {
                let Some(op) = item.get(*method) else { continue };
                let name = op["operationId"].as_str().expect("operationId").to_string();
                let mut responses = BTreeMap::new();
                for (code, resp) in op["responses"].as_object().expect("responses") {
                    let status: u16 = code.parse().unwrap_or_else(|_| panic!("{name}: status {code}"));
                    let schema = resp.get("schema").cloned().unwrap_or(Value::Null);
                    let validator = (!schema.is_null()).then(|| compile(&defs, &schema));
                    responses.insert(status, Documented { validator, schema });
                }
                self.operations.insert(name, responses);
            }
        }
    }

    fn load() -> Contract {
        let merged: Value = serde_json::from_str(SWAGGER_JSON).expect("SWAGGER_JSON is JSON");
        let error_schema = json!({"$ref": "#/definitions/Error"});
        let mut contract = Contract {
            operations: BTreeMap::new(),
            error: compile(&merged["definitions"], &error_schema),
        };
        contract.add_document(&merged);
        // Operations under another basePath: merge their documents the way build.rs does.
        let spec = Path::new(env!("CARGO_MANIFEST_DIR")).join("api-spec");
        let set = codegen::spec::load(&spec).unwrap_or_else(|e| panic!("cannot load api-spec/: {e}"));
        let docs: Vec<_> = set
            .documents
            .iter()
            .map(|d| (d.path.clone(), d.value.clone()))
            .collect();
        let api = codegen::ir::build(set).unwrap_or_else(|e| panic!("cannot read api-spec/: {e}"));
        let main = merged["basePath"].as_str().unwrap_or_default().to_string();
        let mut others: BTreeMap<String, Vec<codegen::ir::Operation>> = BTreeMap::new();
        for op in api.operations {
            if op.base_path != main {
                others.entry(op.base_path.clone()).or_default().push(op);
            }
        }
        for (_, operations) in others {
            let part = codegen::ir::Api {
                operations,
                models: Default::default(),
                inputs: Vec::new(),
            };
            let doc = codegen::emit_swagger::emit(&part, &docs).unwrap_or_else(|e| panic!("{e}"));
            contract.add_document(&serde_json::from_str(&doc).expect("emitted JSON"));
        }
        contract
    }

    /// The contract of the spec in `api-spec/`, loaded once per test binary.
    pub fn get() -> &'static Contract {
        static CONTRACT: OnceLock<Contract> = OnceLock::new();
        CONTRACT.get_or_init(Contract::load)
    }

    /// Whether `operation` is in the spec at all.
    pub fn knows(&self, operation: &str) -> bool {
        self.operations.contains_key(operation)
    }

    /// The statuses documented for `operation`.
    pub fn statuses(&self, operation: &str) -> Vec<u16> {
        self.operations
            .get(operation)
            .map(|r| r.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Checks one response of `operation`; the error says what is wrong.
    pub fn check(&self, operation: &str, status: u16, content_type: Option<&str>, body: &[u8]) -> Result<(), String> {
        let responses = self
            .operations
            .get(operation)
            .ok_or_else(|| format!("operation {operation} is in no document of api-spec/"))?;
        let documented = responses.get(&status).ok_or_else(|| {
            format!(
                "status {status} is not documented for {operation} (documented: {:?})",
                responses.keys().collect::<Vec<_>>()
            )
        })?;
        let instance = json_body(content_type, body)?;
        if let Some(validator) = &documented.validator {
            let errors: Vec<String> = validator
                .iter_errors(&instance)
                .map(|e| match e.instance_path.to_string() {
                    at if at.is_empty() => e.to_string(),
                    at => format!("{e} (at {at})"),
                })
                .collect();
            if !errors.is_empty() {
                return Err(format!(
                    "the body does not match the schema documented for {status}: {}\n  schema: {}",
                    errors.join("; "),
                    documented.schema
                ));
            }
        }
        Ok(())
    }

    /// Checks an answer that belongs to no operation (unknown path, wrong method,
    /// empty path parameter): it must still be a Matrix JSON error.
    pub fn check_unrouted(&self, status: u16, content_type: Option<&str>, body: &[u8]) -> Result<(), String> {
        if status < 400 {
            return Err(format!("status {status} for a request that matches no operation"));
        }
        let instance = json_body(content_type, body)?;
        if !self.error.is_valid(&instance) {
            return Err("the body is not a Matrix error object".to_string());
        }
        Ok(())
    }
}

fn json_body(content_type: Option<&str>, body: &[u8]) -> Result<Value, String> {
    let essence = content_type.map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
    if essence.as_deref() != Some("application/json") {
        return Err(format!(
            "Content-Type is {content_type:?}, the spec produces application/json"
        ));
    }
    serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))
}

/// The panic message for a violation.
pub fn violation(operation: &str, method: &str, path: &str, status: u16, what: &str, body: &[u8]) -> String {
    format!(
        "contract violation: {operation} ({method} {path}) answered {status}: {what}\n  body: {}",
        String::from_utf8_lossy(body)
    )
}
