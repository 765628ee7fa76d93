//! Emits `routes.rs`: the route table (path → operation) and the dispatcher
//! that turns a matched request into a typed `Api` call.

use super::emit_api::{model_type, response_enum};
use super::ir::{Api, Location, Operation, Param};
use super::schema::{Model, Shape};
use std::fmt::Write;

const RUNTIME: &str = r#"
/// A request the route table matched, before its parameters are typed.
pub struct RawRequest<'a> {
    /// Percent-decoded path parameters by their spec name.
    pub path_params: &'a [(String, String)],
    /// Percent-decoded query parameters.
    pub query: &'a [(String, String)],
    /// The request body as received (possibly empty).
    pub body: &'a [u8],
}

/// Why a request could not be turned into typed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// The body is not JSON at all.
    NotJson(String),
    /// The body is JSON of the wrong shape.
    BadJson(String),
    /// A required parameter or field is absent.
    MissingParam(String),
    /// A parameter or field is present but violates its constraints.
    InvalidParam(String),
    /// A parameter or field violates a constraint for which the spec names
    /// its own errcode (`x-errcode`), e.g. `M_INVALID_USERNAME`.
    Refused { errcode: &'static str, message: String },
}

/// Why dispatching failed.
#[derive(Debug)]
pub enum DispatchError {
    Request(RequestError),
    Api(swagger::ApiError),
    /// The response could not be serialized.
    Serialize(serde_json::Error),
}

impl From<RequestError> for DispatchError {
    fn from(e: RequestError) -> Self {
        Self::Request(e)
    }
}

/// A typed response turned back into status and JSON.
pub struct RawResponse {
    pub status: u16,
    pub body: serde_json::Value,
}

fn path_param(req: &RawRequest<'_>, name: &str) -> Result<String, RequestError> {
    req.path_params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .ok_or_else(|| RequestError::MissingParam(format!("path parameter {name} is missing")))
}

fn query_param<T: std::str::FromStr>(req: &RawRequest<'_>, name: &str) -> Result<Option<T>, RequestError> {
    match req.query.iter().find(|(n, _)| n == name) {
        None => Ok(None),
        Some((_, v)) => v.parse().map(Some).map_err(|_| {
            RequestError::InvalidParam(format!("query parameter {name} has an invalid value {v:?}"))
        }),
    }
}

fn required<T>(value: Option<T>, what: &str) -> Result<T, RequestError> {
    value.ok_or_else(|| RequestError::MissingParam(format!("{what} is required")))
}

/// The error for a violated constraint: `M_INVALID_PARAM` unless the spec names another errcode.
fn violation(errcode: Option<&'static str>, message: String) -> RequestError {
    match errcode {
        Some(errcode) => RequestError::Refused { errcode, message },
        None => RequestError::InvalidParam(message),
    }
}

/// Checks a string parameter against the constraints the spec states for it.
fn check_string(what: &str, value: &str, rule: &models::StringRule) -> Result<(), RequestError> {
    rule.check(value).map_err(|why| violation(rule.errcode, format!("{what} {why}")))
}

/// Checks a numeric parameter against the range the spec states for it.
fn check_number(what: &str, value: f64, rule: &models::NumberRule) -> Result<(), RequestError> {
    rule.check(value).map_err(|why| violation(rule.errcode, format!("{what} {why}")))
}

/// The JSON type a schema states for a value, checked before serde decodes
/// it: a derived struct also accepts a JSON array (`["@bob:localhost"]` would
/// decode as `{"user_id": "@bob:localhost"}`), and `Option` accepts `null`,
/// where the spec allows neither.
#[derive(Debug)]
pub enum Shape {
    /// The schema states no type: anything goes, `null` included.
    Any,
    String,
    Integer,
    Number,
    Boolean,
    Array { items: &'static Shape },
    /// An object whose every value has one shape.
    Map { values: &'static Shape },
    /// An object with these known properties; others are left to serde (ignored unless denied).
    Object { properties: &'static [Property] },
}

/// A known property of an object shape.
#[derive(Debug)]
pub struct Property {
    pub name: &'static str,
    pub shape: &'static Shape,
}

impl Shape {
    fn expected(&self) -> &'static str {
        match self {
            Shape::Any => "any JSON value",
            Shape::String => "a string",
            Shape::Integer => "an integer of at most 64 bits",
            Shape::Number => "a number",
            Shape::Boolean => "a boolean",
            Shape::Array { .. } => "an array",
            Shape::Map { .. } | Shape::Object { .. } => "a JSON object",
        }
    }

    /// Where `value` first differs from the shape, as "at must be ..."; `at` names the value.
    fn check(&self, value: &serde_json::Value, at: &mut String) -> Result<(), String> {
        use serde_json::Value as V;
        let fits = match (self, value) {
            (Shape::Any, _) => true,
            (Shape::String, V::String(_)) | (Shape::Boolean, V::Bool(_)) | (Shape::Number, V::Number(_)) => true,
            (Shape::Integer, V::Number(n)) => n.is_i64(),
            (Shape::Array { items }, V::Array(values)) => {
                for (i, v) in values.iter().enumerate() {
                    let len = at.len();
                    at.push_str(&format!("[{i}]"));
                    items.check(v, at)?;
                    at.truncate(len);
                }
                true
            }
            (Shape::Map { values }, V::Object(map)) => {
                for (k, v) in map {
                    let len = at.len();
                    at.push_str(&format!("[{k:?}]"));
                    values.check(v, at)?;
                    at.truncate(len);
                }
                true
            }
            (Shape::Object { properties }, V::Object(map)) => {
                for p in properties.iter() {
                    if let Some(v) = map.get(p.name) {
                        let len = at.len();
                        if !at.is_empty() {
                            at.push('.');
                        }
                        at.push_str(p.name);
                        p.shape.check(v, at)?;
                        at.truncate(len);
                    }
                }
                true
            }
            _ => false,
        };
        if fits {
            return Ok(());
        }
        let null = if value.is_null() { ", not null" } else { "" };
        let name = if at.is_empty() { "the body" } else { at.as_str() };
        Err(format!("{name} must be {}{null}", self.expected()))
    }
}

/// Parses a JSON body and checks it has the shape the spec states; an empty body is `None`.
fn json_body<T: serde::de::DeserializeOwned>(body: &[u8], shape: &Shape) -> Result<Option<T>, RequestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| RequestError::NotJson(format!("the request body is not valid JSON: {e}")))?;
    let wants_object = matches!(shape, Shape::Object { .. } | Shape::Map { .. });
    if wants_object && !value.is_object() {
        return Err(RequestError::BadJson("Content must be a JSON object.".into()));
    }
    let mut at = String::new();
    shape
        .check(&value, &mut at)
        .map_err(|e| RequestError::BadJson(format!("the request body has the wrong shape: {e}")))?;
    let parsed: T = serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        if msg.starts_with("missing field") {
            RequestError::MissingParam(format!("the request body is incomplete: {msg}"))
        } else {
            RequestError::BadJson(format!("the request body has the wrong shape: {msg}"))
        }
    })?;
    Ok(Some(parsed))
}

/// Checks the constraints a body's schema states (`validator` derives).
fn validated<T: validator::Validate>(body: Option<T>) -> Result<Option<T>, RequestError> {
    if let Some(b) = &body {
        b.validate().map_err(|e| {
            let mut problems = Vec::new();
            describe(&e, "", &mut problems);
            problems.sort();
            // The first problem whose constraint names an errcode decides it.
            let errcode = problems.iter().find_map(|(_, code)| ERRCODES.iter().find(|c| *c == code).copied());
            let text: Vec<&str> = problems.iter().map(|(p, _)| p.as_str()).collect();
            violation(errcode, format!("the request body is invalid: {}", text.join("; ")))
        })?;
    }
    Ok(body)
}

/// Flattens validation errors into "field must ..." sentences.
fn describe(errors: &validator::ValidationErrors, at: &str, out: &mut Vec<(String, String)>) {
    use validator::ValidationErrorsKind as K;
    for (field, kind) in errors.errors() {
        // validator names the errors of a list's own items "_tmp_validator".
        let here = match (at.is_empty(), field.as_ref()) {
            (_, "_tmp_validator") => at.to_string(),
            (true, f) => f.to_string(),
            (false, f) => format!("{at}.{f}"),
        };
        match kind {
            K::Field(list) => {
                for e in list {
                    let why = e.message.as_deref().map(str::to_string).unwrap_or_else(|| format!("is invalid ({})", e.code));
                    out.push((format!("{here} {why}"), e.code.to_string()));
                }
            }
            K::Struct(inner) => describe(inner, &here, out),
            K::List(items) => {
                for (i, inner) in items {
                    describe(inner, &format!("{here}[{i}]"), out);
                }
            }
        }
    }
}

fn respond(status: u16, json: Result<serde_json::Value, serde_json::Error>) -> Result<RawResponse, DispatchError> {
    json.map(|body| RawResponse { status, body }).map_err(DispatchError::Serialize)
}
"#;

pub fn emit(api: &Api) -> String {
    let mut out = String::new();
    out.push_str("use super::api::Api;\n#[allow(unused_imports)]\nuse super::models;\n\n");
    out.push_str("/// Every operation in `api-spec/`.\n#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum Operation {\n");
    for op in &api.operations {
        let _ = writeln!(out, "/// `{} {}{}`\n{},", op.method, op.base_path, op.path, op.pascal);
    }
    out.push_str("}\n\n");
    emit_operation_impl(&mut out, api);
    emit_route_table(&mut out, api);
    out.push_str(RUNTIME);
    emit_errcodes(&mut out, api);
    emit_rules(&mut out, api);
    emit_shapes(&mut out, api);
    emit_dispatch(&mut out, api);
    out
}

enum RuleKind {
    String,
    Number,
}

/// Which rule, if any, checks a parameter's value.
fn rule_kind(p: &Param) -> Option<RuleKind> {
    if p.ty == "String" && p.constraints.checks_strings() {
        Some(RuleKind::String)
    } else if (p.ty == "i64" || p.ty == "f64") && p.constraints.checks_numbers() {
        Some(RuleKind::Number)
    } else {
        None
    }
}

/// `GET_ROOM_EVENTS_LIMIT`: the operation and the parameter.
fn rule_name(op: &Operation, p: &Param) -> String {
    format!("{}_{}", op.name, p.rust_name.trim_start_matches("r#")).to_uppercase()
}

/// One static rule per constrained parameter, so that the dispatcher reads
/// as a list of checks and the constraints as a table.
fn emit_rules(out: &mut String, api: &Api) {
    out.push_str("\n/// What the spec states about each constrained parameter, by operation and parameter.\nmod rules {\n#[allow(unused_imports)]\nuse super::models::{NumberRule, StringRule};\n");
    for op in &api.operations {
        for p in &op.params {
            let (ty, value) = match rule_kind(p) {
                Some(RuleKind::String) => ("StringRule", p.constraints.string_rule("")),
                Some(RuleKind::Number) => ("NumberRule", p.constraints.number_rule("")),
                None => continue,
            };
            let value = value.replace("Some(&PATTERN_", "Some(&super::models::PATTERN_");
            let _ = writeln!(out, "pub static {}: {ty} = {value};", rule_name(op, p));
        }
    }
    out.push_str("}\n");
}

/// Every errcode a model's constraint names (`x-errcode`), to tell them
/// from validator's own codes.
fn emit_errcodes(out: &mut String, api: &Api) {
    let mut codes = std::collections::BTreeSet::new();
    for model in api.models.items.values() {
        if let Model::Struct { fields, .. } = model {
            for f in fields {
                codes.extend(f.errcode.clone());
            }
        }
    }
    let list: Vec<String> = codes.iter().map(|c| format!("{c:?}")).collect();
    let _ = writeln!(
        out,
        "\n/// The errcodes the spec gives body constraints (`x-errcode`).\nconst ERRCODES: &[&str] = &[{}];",
        list.join(", ")
    );
}

/// A `&'static Shape` expression; models refer to their static in `shapes`
/// (`within` is the path to that module from where the expression stands).
fn shape_expr(shape: &Shape, within: &str) -> String {
    match shape {
        Shape::Any => "Shape::Any".into(),
        Shape::String => "Shape::String".into(),
        Shape::Integer => "Shape::Integer".into(),
        Shape::Number => "Shape::Number".into(),
        Shape::Boolean => "Shape::Boolean".into(),
        Shape::Array(items) => format!("Shape::Array {{ items: &{} }}", shape_expr(items, within)),
        Shape::Map(values) => format!("Shape::Map {{ values: &{} }}", shape_expr(values, within)),
        Shape::Object => "Shape::Object { properties: &[] }".into(),
        Shape::Model(name) => format!("{within}{name}"),
    }
}

/// One static shape per struct model, named like the model (statics, so that recursive models can refer to each other).
fn emit_shapes(out: &mut String, api: &Api) {
    out.push_str("\n/// The JSON shape of every struct model, as its schema states it.\n#[allow(non_upper_case_globals)]\npub mod shapes {\n#[allow(unused_imports)]\nuse super::{Property, Shape};\n");
    for (name, model) in &api.models.items {
        let Model::Struct { fields, .. } = model else { continue };
        let props: Vec<String> = fields
            .iter()
            .map(|f| {
                format!(
                    "Property {{ name: {:?}, shape: &{} }}",
                    f.json_name,
                    shape_expr(&f.shape, "")
                )
            })
            .collect();
        let _ = writeln!(
            out,
            "pub static {name}: Shape = Shape::Object {{ properties: &[{}] }};",
            props.join(", ")
        );
    }
    out.push_str("}\n");
}

fn emit_operation_impl(out: &mut String, api: &Api) {
    out.push_str("impl Operation {\n/// Every operation, in spec order.\npub const ALL: &'static [Operation] = &[\n");
    for op in &api.operations {
        let _ = writeln!(out, "Self::{},", op.pascal);
    }
    out.push_str("];\n\n");
    let table = |out: &mut String, doc: &str, sig: &str, f: &dyn Fn(&Operation) -> String| {
        let _ = writeln!(out, "/// {doc}\npub fn {sig} {{\nmatch self {{");
        for op in &api.operations {
            let _ = writeln!(out, "Self::{} => {},", op.pascal, f(op));
        }
        out.push_str("}\n}\n\n");
    };
    table(
        out,
        "The `Api` method name, which is also the spec's operationId.",
        "name(self) -> &'static str",
        &|o| format!("{:?}", o.name),
    );
    table(out, "The HTTP method.", "method(self) -> &'static str", &|o| {
        format!("{:?}", o.method)
    });
    table(
        out,
        "The document's basePath.",
        "base_path(self) -> &'static str",
        &|o| format!("{:?}", o.base_path),
    );
    table(
        out,
        "The canonical path template, relative to the basePath.",
        "path(self) -> &'static str",
        &|o| format!("{:?}", o.path),
    );
    table(
        out,
        "Whether the spec asks for an access token.",
        "requires_auth(self) -> bool",
        &|o| o.requires_auth.to_string(),
    );
    table(
        out,
        "Every documented status.",
        "statuses(self) -> &'static [u16]",
        &|o| format!("super::api::{}::STATUSES", response_enum(o)),
    );
    out.push_str("}\n\n");
}

fn emit_route_table(out: &mut String, api: &Api) {
    out.push_str(
        "/// One row of the route table.\n#[derive(Debug, Clone, Copy, PartialEq, Eq)]\npub struct Route {\n\
         pub method: &'static str,\npub base_path: &'static str,\npub template: &'static str,\npub operation: Operation,\n}\n\n",
    );
    out.push_str("/// The route table: every path, every `x-alias`, and the spec's literal key where it differs from the trimmed path.\npub const ROUTES: &[Route] = &[\n");
    for op in &api.operations {
        let mut templates = vec![op.path.clone()];
        templates.extend(op.aliases.iter().cloned());
        if op.spec_key != op.path {
            templates.push(op.spec_key.clone());
        }
        for t in templates {
            let _ = writeln!(
                out,
                "Route {{ method: {:?}, base_path: {:?}, template: {:?}, operation: Operation::{} }},",
                op.method, op.base_path, t, op.pascal
            );
        }
    }
    out.push_str("];\n\n");
}

fn emit_dispatch(out: &mut String, api: &Api) {
    out.push_str(
        "\n/// Types the request's parameters for `operation`, calls the matching `Api` method and\n\
         /// turns its response enum back into status and JSON.\n\
         pub async fn dispatch<A, C>(api: &A, operation: Operation, request: RawRequest<'_>, context: &C) -> Result<RawResponse, DispatchError>\n\
         where\n    A: Api<C> + Sync + ?Sized,\n    C: Send + Sync,\n{\nmatch operation {\n",
    );
    for op in &api.operations {
        let _ = writeln!(out, "Operation::{} => {{", op.pascal);
        let mut call_args = Vec::new();
        for p in &op.params {
            let what = match p.location {
                Location::Path => format!("path parameter {}", p.name),
                Location::Query => format!("query parameter {}", p.name),
            };
            let getter = match p.location {
                Location::Path => format!("path_param(&request, {:?})?", p.name),
                Location::Query if p.required => {
                    format!("required(query_param::<{}>(&request, {:?})?, {what:?})?", p.ty, p.name)
                }
                Location::Query => format!("query_param::<{}>(&request, {:?})?", p.ty, p.name),
            };
            let _ = writeln!(out, "let {} = {getter};", p.rust_name);
            let check = match rule_kind(p) {
                Some(RuleKind::String) => Some(format!("check_string({what:?}, v, &rules::{})?;", rule_name(op, p))),
                Some(RuleKind::Number) => Some(format!(
                    "check_number({what:?}, *v as f64, &rules::{})?;",
                    rule_name(op, p)
                )),
                None => None,
            };
            if let Some(check) = check {
                let bind = if p.location == Location::Path || p.required {
                    format!("{{ let v = &{}; {check} }}", p.rust_name)
                } else {
                    format!("if let Some(v) = &{} {{ {check} }}", p.rust_name)
                };
                out.push_str(&bind);
                out.push('\n');
            }
            call_args.push(p.rust_name.clone());
        }
        if let Some(b) = &op.body {
            let mut parse = format!(
                "json_body::<{}>(request.body, &{})?",
                model_type(&b.ty),
                shape_expr(&b.shape, "shapes::")
            );
            if b.validate {
                parse = format!("validated({parse})?");
            }
            let getter = if b.required {
                format!("required({parse}, \"a JSON request body\")?")
            } else {
                parse
            };
            let _ = writeln!(out, "let body = {getter};");
            call_args.push("body".into());
        }
        let _ = writeln!(
            out,
            "let response = api.{}({}context).await.map_err(DispatchError::Api)?;\nrespond(response.status(), response.to_json())\n}}",
            op.name,
            call_args.iter().map(|a| format!("{a}, ")).collect::<String>()
        );
    }
    out.push_str("}\n}\n");
}
