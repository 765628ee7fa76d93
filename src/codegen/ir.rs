//! The generator's model of a spec: operations with typed parameters and responses.

use super::constraints::{self, Constraints};
use super::naming::{operation_name, pascal, snake, status_variant};
use super::schema::{Models, Shape};
use super::spec::{Document, SpecSet};
use serde_json::Value;
use std::path::PathBuf;

/// Where a non-body parameter comes from.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
}

/// A path or query parameter.
pub struct Param {
    pub name: String,
    pub rust_name: String,
    pub location: Location,
    pub ty: String,
    pub required: bool,
    pub doc: Option<String>,
    /// What the spec states about its values, checked by the dispatcher.
    pub constraints: Constraints,
}

/// The JSON body parameter.
pub struct Body {
    pub rust_name: String,
    pub ty: String,
    pub required: bool,
    /// Whether the type is a generated struct, which derives `Validate`.
    pub validate: bool,
    /// The JSON type the schema states, checked before decoding.
    pub shape: Shape,
}

/// One documented response.
pub struct Response {
    pub status: u16,
    pub variant: String,
    pub description: String,
    pub ty: String,
}

/// One operation of one document.
pub struct Operation {
    /// The document it comes from, e.g. `membership.yaml`.
    pub doc_name: String,
    pub name: String,
    pub pascal: String,
    pub method: String,
    pub base_path: String,
    /// The path key exactly as the spec writes it (the seed's invite key ends in a space).
    pub spec_key: String,
    /// The path key trimmed: what we serve and document.
    pub path: String,
    pub aliases: Vec<String>,
    pub summary: Option<String>,
    pub description: Option<String>,
    pub requires_auth: bool,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<Response>,
    /// The operation object after overlay merging, for the merged document.
    pub raw: Value,
}

/// Everything the emitters need.
pub struct Api {
    pub operations: Vec<Operation>,
    pub models: Models,
    pub inputs: Vec<PathBuf>,
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];
const OPERATION_KEYS: &[&str] = &[
    "summary",
    "description",
    "security",
    "parameters",
    "responses",
    "operationId",
    "tags",
    "consumes",
    "produces",
];

/// The keywords a non-body parameter may carry besides its constraints.
const PARAMETER_KEYS: &[&str] = &["in", "name", "type", "required", "description", "default"];

/// The keywords a body parameter may carry.
const BODY_KEYS: &[&str] = &["in", "name", "required", "description", "schema"];

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// Builds the operation list of every document, failing on what the generator cannot express.
pub fn build(set: SpecSet) -> Result<Api, String> {
    let mut api = Api {
        operations: Vec::new(),
        models: Models::default(),
        inputs: set.inputs,
    };
    for doc in &set.documents {
        build_document(doc, &mut api).map_err(|e| format!("{}: {e}", doc.name))?;
    }
    let mut names: Vec<&str> = api.operations.iter().map(|o| o.name.as_str()).collect();
    names.sort();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "two operations are both named {}; give one an operationId",
            w[0]
        ));
    }
    Ok(api)
}

fn check_json_only(v: &Value, key: &str, what: &str) -> Result<(), String> {
    if let Some(list) = v.get(key).and_then(Value::as_array) {
        if list.iter().any(|m| m.as_str() != Some("application/json")) {
            return Err(format!("{what}: {key} other than application/json is not supported"));
        }
    }
    Ok(())
}

fn build_document(doc: &Document, api: &mut Api) -> Result<(), String> {
    let v = &doc.value;
    let base_path = str_of(v, "basePath").unwrap_or("").trim_end_matches('/').to_string();
    check_json_only(v, "consumes", "document")?;
    check_json_only(v, "produces", "document")?;
    let global_security = v.get("security");
    let schemes = v.get("securityDefinitions").and_then(Value::as_object);
    let paths = v.get("paths").and_then(Value::as_object).ok_or("no paths")?;
    for (key, item) in paths {
        let item = item
            .as_object()
            .ok_or_else(|| format!("path {key:?} is not an object"))?;
        for (method, op) in item {
            if method == "parameters" || method.starts_with("x-") {
                continue;
            }
            if !METHODS.contains(&method.as_str()) {
                return Err(format!("path {key:?}: {method:?} is not an HTTP method"));
            }
            let shared = item.get("parameters");
            let built = build_operation(doc, &base_path, key, method, op, shared, global_security, schemes, api)
                .map_err(|e| format!("{} {key:?}: {e}", method.to_uppercase()))?;
            api.operations.push(built);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn build_operation(
    doc: &Document,
    base_path: &str,
    key: &str,
    method: &str,
    op: &Value,
    shared_params: Option<&Value>,
    global_security: Option<&Value>,
    schemes: Option<&serde_json::Map<String, Value>>,
    api: &mut Api,
) -> Result<Operation, String> {
    let obj = op.as_object().ok_or("operation is not an object")?;
    for k in obj.keys() {
        if !OPERATION_KEYS.contains(&k.as_str()) && !k.starts_with("x-") {
            return Err(format!("operation keyword {k:?} is not supported by the generator"));
        }
    }
    check_json_only(op, "consumes", "operation")?;
    check_json_only(op, "produces", "operation")?;
    let path = key.trim().to_string();
    let name = operation_name(str_of(op, "operationId"), method, &path);
    let pascal_name = pascal(&name);
    let security = op.get("security").or(global_security);
    let requires_auth = requires_auth(security, schemes)?;

    let mut params = Vec::new();
    let mut body = None;
    let all = effective_parameters(shared_params, op.get("parameters"))?;
    for p in &all {
        if p.get("$ref").is_some() {
            return Err("parameter $ref is not supported by the generator".into());
        }
        let pname = str_of(p, "name").ok_or("parameter without a name")?;
        let required = p.get("required").and_then(Value::as_bool).unwrap_or(false);
        let location = str_of(p, "in");
        let allowed: &[&str] = if location == Some("body") {
            BODY_KEYS
        } else {
            PARAMETER_KEYS
        };
        for k in p.as_object().into_iter().flat_map(|o| o.keys()) {
            let known = allowed.contains(&k.as_str())
                || (location != Some("body") && constraints::KEYWORDS.contains(&k.as_str()));
            if !known && !k.starts_with("x-") {
                return Err(format!(
                    "parameter {pname:?}: keyword {k:?} is not supported by the generator"
                ));
            }
        }
        match location {
            Some("body") => {
                let schema = p.get("schema").ok_or("body parameter without schema")?;
                let hint = format!("{pascal_name}Body");
                let t = api.models.type_of(schema, &doc.path, &hint, &mut api.inputs)?;
                body = Some(Body {
                    rust_name: "body".into(),
                    ty: t.ty,
                    required,
                    validate: t.is_struct,
                    shape: t.shape,
                });
            }
            Some(loc @ ("path" | "query")) => {
                let location = if loc == "path" { Location::Path } else { Location::Query };
                if location == Location::Path && !required {
                    return Err(format!("path parameter {pname:?} must be required"));
                }
                let json_type = str_of(p, "type");
                let ty = match json_type {
                    Some("string") => "String",
                    Some("integer") => "i64",
                    Some("number") => "f64",
                    Some("boolean") => "bool",
                    other => return Err(format!("parameter {pname:?}: type {other:?} is not supported")),
                };
                let constraints = constraints::read(p, json_type, false, &format!("parameter {pname:?}"))?;
                api.models.patterns.extend(constraints.pattern.clone());
                params.push(Param {
                    name: pname.to_string(),
                    rust_name: snake(pname),
                    location,
                    ty: ty.into(),
                    required,
                    doc: str_of(p, "description").map(str::to_string),
                    constraints,
                });
            }
            other => return Err(format!("parameter {pname:?}: location {other:?} is not supported")),
        }
    }
    check_path_params(&path, &params)?;
    // The merged document lists path-level parameters on each operation.
    let mut raw = op.clone();
    if !all.is_empty() {
        raw["parameters"] = Value::Array(all);
    }

    let mut responses = Vec::new();
    let resp_obj = op
        .get("responses")
        .and_then(Value::as_object)
        .ok_or("operation without responses")?;
    for (code, resp) in resp_obj {
        let status: u16 = code
            .parse()
            .map_err(|_| format!("response {code:?}: only numeric status codes are supported"))?;
        let variant =
            status_variant(status).ok_or_else(|| format!("status {status} has no variant name in the generator"))?;
        if status == 204 {
            return Err("response 204 is not supported: Matrix answers an empty JSON object with 200".into());
        }
        if resp.get("headers").is_some() {
            return Err(format!("response {status}: headers are not supported by the generator"));
        }
        let hint = format!("{pascal_name}{variant}");
        let ty = match resp.get("schema") {
            Some(schema) => api.models.type_of(schema, &doc.path, &hint, &mut api.inputs)?.ty,
            None if status >= 400 => {
                api.models
                    .type_of(
                        &serde_json::json!({"$ref": "definitions/error.yaml"}),
                        &doc.path,
                        &hint,
                        &mut api.inputs,
                    )?
                    .ty
            }
            None => "JsonObject".into(),
        };
        responses.push(Response {
            status,
            variant: variant.into(),
            description: str_of(resp, "description").unwrap_or("").to_string(),
            ty,
        });
    }
    responses.sort_by_key(|r| r.status);

    let aliases: Vec<String> = op
        .get("x-alias")
        .and_then(|a| a.get("aliases"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(|s| s.trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    for alias in &aliases {
        check_path_params(alias, &params).map_err(|e| format!("x-alias {alias:?}: {e}"))?;
    }
    Ok(Operation {
        doc_name: doc.name.clone(),
        name,
        pascal: pascal_name,
        method: method.to_uppercase(),
        base_path: base_path.to_string(),
        spec_key: key.to_string(),
        path,
        aliases,
        summary: str_of(op, "summary").map(str::to_string),
        description: str_of(op, "description").map(str::to_string),
        requires_auth,
        params,
        body,
        responses,
        raw,
    })
}

/// The operation's parameters: the path item's, each replaced by an
/// operation parameter of the same `in` and `name` (Swagger 2.0's rule),
/// then the operation's own. A list naming one parameter twice is refused.
fn effective_parameters(shared: Option<&Value>, own: Option<&Value>) -> Result<Vec<Value>, String> {
    let key = |p: &Value| {
        (
            str_of(p, "in").map(str::to_string),
            str_of(p, "name").map(str::to_string),
        )
    };
    let list = |v: Option<&Value>| -> Result<Vec<Value>, String> {
        let items: Vec<Value> = v.and_then(Value::as_array).cloned().unwrap_or_default();
        for (i, p) in items.iter().enumerate() {
            if items[..i].iter().any(|q| key(q) == key(p)) {
                return Err(format!(
                    "parameter {:?} in {:?} is listed twice",
                    str_of(p, "name").unwrap_or(""),
                    str_of(p, "in").unwrap_or("")
                ));
            }
        }
        Ok(items)
    };
    let own = list(own)?;
    let mut all: Vec<Value> = list(shared)?
        .into_iter()
        .filter(|s| !own.iter().any(|o| key(o) == key(s)))
        .collect();
    all.extend(own);
    Ok(all)
}

/// Whether every alternative of the security requirement asks for a
/// credential (an empty alternative `{}` makes the token optional), after
/// checking each scheme it names is defined.
fn requires_auth(security: Option<&Value>, schemes: Option<&serde_json::Map<String, Value>>) -> Result<bool, String> {
    let Some(reqs) = security else { return Ok(false) };
    let reqs = reqs.as_array().ok_or("security must be a list of requirements")?;
    for req in reqs {
        let req = req.as_object().ok_or("a security requirement must be an object")?;
        for name in req.keys() {
            if !schemes.is_some_and(|s| s.contains_key(name)) {
                return Err(format!("security scheme {name:?} is not in securityDefinitions"));
            }
        }
    }
    Ok(!reqs.is_empty() && reqs.iter().all(|r| r.as_object().is_some_and(|o| !o.is_empty())))
}

/// Every `{name}` in the path is a declared path parameter and vice versa.
fn check_path_params(path: &str, params: &[Param]) -> Result<(), String> {
    let in_path: Vec<&str> = path
        .split('/')
        .filter(|s| s.starts_with('{') && s.ends_with('}'))
        .map(|s| &s[1..s.len() - 1])
        .collect();
    for name in &in_path {
        if !params.iter().any(|p| p.location == Location::Path && p.name == *name) {
            return Err(format!("path segment {{{name}}} has no path parameter"));
        }
    }
    for p in params.iter().filter(|p| p.location == Location::Path) {
        if !in_path.contains(&p.name.as_str()) {
            return Err(format!("path parameter {:?} does not appear in the path", p.name));
        }
    }
    Ok(())
}
