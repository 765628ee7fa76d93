//! Emits `routes.rs`: the route table (path → operation) and the dispatcher
//! that turns a matched request into a typed `Api` call.

use super::emit_api::{model_type, response_enum};
use super::ir::{Api, Location, Operation};
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

/// Parses and validates a JSON body; an empty body is `None`.
fn json_body<T: serde::de::DeserializeOwned + validator::Validate>(body: &[u8]) -> Result<Option<T>, RequestError> {
    let parsed: Option<T> = json_value_body(body)?;
    if let Some(p) = &parsed {
        p.validate()
            .map_err(|e| RequestError::InvalidParam(format!("the request body is invalid: {e}")))?;
    }
    Ok(parsed)
}

/// Parses a JSON body whose type has no constraints; an empty body is `None`.
fn json_value_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<Option<T>, RequestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| RequestError::NotJson(format!("the request body is not valid JSON: {e}")))?;
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
    emit_dispatch(&mut out, api);
    out
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
            let getter = match p.location {
                Location::Path => format!("path_param(&request, {:?})?", p.name),
                Location::Query if p.required => format!(
                    "required(query_param::<{}>(&request, {:?})?, \"query parameter {}\")?",
                    p.ty, p.name, p.name
                ),
                Location::Query => format!("query_param::<{}>(&request, {:?})?", p.ty, p.name),
            };
            let _ = writeln!(out, "let {} = {getter};", p.rust_name);
            call_args.push(p.rust_name.clone());
        }
        if let Some(b) = &op.body {
            let parser = if b.validate { "json_body" } else { "json_value_body" };
            let parse = format!("{parser}::<{}>(request.body)?", model_type(&b.ty));
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
