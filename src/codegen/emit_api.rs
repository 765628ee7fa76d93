//! Emits `api.rs`: the `Api<C>` trait and one response enum per operation.

use super::emit_models::doc_lines;
use super::ir::{Api, Location, Operation};
use std::fmt::Write;

/// The Rust type of a model reference inside `api.rs` / `client.rs`:
/// every model name gets the `models::` path, std and serde types do not.
pub fn model_type(ty: &str) -> String {
    const NOT_MODELS: &[&str] = &[
        "String",
        "i64",
        "f64",
        "bool",
        "Vec",
        "Box",
        "Option",
        "std",
        "collections",
        "BTreeMap",
        "serde_json",
        "Value",
    ];
    let mut out = String::new();
    let mut ident = String::new();
    let flush = |ident: &mut String, out: &mut String| {
        if !ident.is_empty() {
            let prefixed = !NOT_MODELS.contains(&ident.as_str()) && !out.ends_with("::");
            if prefixed {
                out.push_str("models::");
            }
            out.push_str(ident);
            ident.clear();
        }
    };
    for c in ty.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            ident.push(c);
        } else {
            flush(&mut ident, &mut out);
            out.push(c);
        }
    }
    flush(&mut ident, &mut out);
    out
}

/// The argument list (without `&self` and context) of an operation.
pub fn arguments(op: &Operation, borrowed: bool) -> Vec<(String, String)> {
    let mut args = Vec::new();
    for p in op.params.iter().filter(|p| p.location == Location::Path) {
        args.push((
            p.rust_name.clone(),
            if borrowed { "&str".into() } else { "String".into() },
        ));
    }
    for p in op.params.iter().filter(|p| p.location == Location::Query) {
        let ty = if borrowed && p.ty == "String" {
            "&str".to_string()
        } else {
            p.ty.clone()
        };
        args.push((
            p.rust_name.clone(),
            if p.required { ty } else { format!("Option<{ty}>") },
        ));
    }
    if let Some(b) = &op.body {
        let ty = model_type(&b.ty);
        let ty = if borrowed { format!("&{ty}") } else { ty };
        args.push((
            b.rust_name.clone(),
            if b.required { ty } else { format!("Option<{ty}>") },
        ));
    }
    args
}

pub fn response_enum(op: &Operation) -> String {
    format!("{}Response", op.pascal)
}

fn operation_doc(out: &mut String, op: &Operation) {
    doc_lines(out, op.summary.as_deref());
    let _ = writeln!(out, "///\n/// `{} {}{}`", op.method, op.base_path, op.path);
    if let Some(desc) = &op.description {
        // Spec text is reStructuredText, not Rust: fence it so rustdoc neither
        // renders nor doc-tests its indented lines.
        out.push_str("///\n/// ```text\n");
        doc_lines(out, Some(desc));
        out.push_str("/// ```\n");
    }
    let documented: Vec<_> = op.params.iter().filter(|p| p.doc.is_some()).collect();
    if !documented.is_empty() {
        out.push_str("///\n/// Parameters:\n");
        for p in documented {
            let _ = writeln!(
                out,
                "/// - `{}`: {}",
                p.rust_name,
                p.doc.as_deref().unwrap_or("").replace('\n', " ")
            );
        }
    }
}

pub fn emit(api: &Api) -> String {
    let mut out = String::new();
    out.push_str("use super::models;\n\n");
    out.push_str(
        "/// A response that does not match what the spec documents for its operation.\n\
         #[derive(Debug, Clone, PartialEq)]\n\
         pub enum DecodeError {\n\
         /// The status is not among the operation's documented responses.\n\
         UndocumentedStatus { operation: &'static str, status: u16, body: String },\n\
         /// The body does not have the documented shape for that status.\n\
         Body { operation: &'static str, status: u16, error: String, body: String },\n\
         }\n\n\
         impl std::fmt::Display for DecodeError {\n\
         fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {\n\
         match self {\n\
         Self::UndocumentedStatus { operation, status, body } => write!(f, \"{operation}: status {status} is not documented in the spec (body: {body})\"),\n\
         Self::Body { operation, status, error, body } => write!(f, \"{operation}: the {status} body does not match the spec: {error} (body: {body})\"),\n\
         }\n}\n}\n\n\
         impl std::error::Error for DecodeError {}\n\n",
    );
    out.push_str(
        "/// The server side of every operation in `api-spec/`: one async method per operation.\n\
         #[async_trait::async_trait]\npub trait Api<C: Send + Sync> {\n",
    );
    for op in &api.operations {
        operation_doc(&mut out, op);
        let args: Vec<String> = arguments(op, false).iter().map(|(n, t)| format!("{n}: {t}")).collect();
        let _ = writeln!(
            out,
            "async fn {}(&self, {} context: &C) -> Result<{}, swagger::ApiError>;\n",
            op.name,
            args.iter().map(|a| format!("{a},")).collect::<String>(),
            response_enum(op)
        );
    }
    out.push_str("}\n\n");
    for op in &api.operations {
        emit_response_enum(&mut out, op);
    }
    out
}

fn emit_response_enum(out: &mut String, op: &Operation) {
    let name = response_enum(op);
    let _ = writeln!(out, "/// The documented responses of `{}`.", op.name);
    out.push_str("#[derive(Debug, Clone, PartialEq)]\n#[must_use]\n");
    let _ = writeln!(out, "pub enum {name} {{");
    for r in &op.responses {
        doc_lines(
            out,
            Some(&format!("{}: {}", r.status, r.description.lines().next().unwrap_or(""))),
        );
        let _ = writeln!(out, "{}({}),", r.variant, model_type(&r.ty));
    }
    out.push_str("}\n\n");
    let statuses: Vec<String> = op.responses.iter().map(|r| r.status.to_string()).collect();
    let _ = writeln!(out, "impl {name} {{");
    let _ = writeln!(
        out,
        "/// Every status the spec documents for this operation.\npub const STATUSES: &'static [u16] = &[{}];\n",
        statuses.join(", ")
    );
    out.push_str("/// The HTTP status of this response.\npub fn status(&self) -> u16 {\nmatch self {\n");
    for r in &op.responses {
        let _ = writeln!(out, "Self::{}(_) => {},", r.variant, r.status);
    }
    out.push_str("}\n}\n\n/// The JSON body of this response.\npub fn to_json(&self) -> Result<serde_json::Value, serde_json::Error> {\nmatch self {\n");
    for r in &op.responses {
        let _ = writeln!(out, "Self::{}(body) => serde_json::to_value(body),", r.variant);
    }
    out.push_str("}\n}\n\n");
    out.push_str("/// The variant for `status` when the spec documents it with the Matrix error body.\npub fn from_error(status: u16, error: models::Error) -> Option<Self> {\n#[allow(clippy::match_single_binding)]\nmatch status {\n");
    for r in op.responses.iter().filter(|r| r.ty == "Error") {
        let _ = writeln!(out, "{} => Some(Self::{}(error)),", r.status, r.variant);
    }
    out.push_str("_ => { let _ = error; None }\n}\n}\n\n");
    out.push_str("/// Reads a response, checking that its status is documented and its body has the documented shape.\npub fn from_response(status: u16, body: &[u8]) -> Result<Self, DecodeError> {\n");
    let _ = writeln!(out, "let operation = {:?};", op.name);
    out.push_str("let text = || String::from_utf8_lossy(body).into_owned();\nlet bad = |e: serde_json::Error| DecodeError::Body { operation, status, error: e.to_string(), body: text() };\nmatch status {\n");
    for r in &op.responses {
        let _ = writeln!(
            out,
            "{} => serde_json::from_slice(body).map(Self::{}).map_err(bad),",
            r.status, r.variant
        );
    }
    out.push_str("_ => Err(DecodeError::UndocumentedStatus { operation, status, body: text() }),\n}\n}\n}\n\n");
}
