//! Emits `client.rs`: a typed HTTP client with one method per operation.

use super::emit_api::{arguments, response_enum};
use super::emit_models::doc_lines;
use super::ir::{Api, Location};
use std::fmt::Write;

const RUNTIME: &str = r#"
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use std::sync::Arc;

/// Everything but the RFC 3986 unreserved characters is encoded, so `#` and `:` travel safely.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Percent-encodes one path segment or query value.
pub fn encode(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// One request and its answer, as seen by an [`Observer`].
pub struct Exchange<'a> {
    pub operation: &'static str,
    pub method: &'static str,
    pub path: &'a str,
    pub status: u16,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// Called with every exchange, before the response is decoded (contract checks hook in here).
pub type Observer = Arc<dyn Fn(&Exchange<'_>) + Send + Sync>;

/// Why a call failed before producing a documented response.
#[derive(Debug)]
pub enum ClientError {
    /// The request could not be sent or the response not read.
    Transport(String),
    /// The server answered something the spec does not document.
    Contract(DecodeError),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(e) => write!(f, "transport error: {e}"),
            Self::Contract(e) => write!(f, "contract violation: {e}"),
        }
    }
}

impl std::error::Error for ClientError {}

/// A typed client for every operation in `api-spec/`.
#[derive(Clone)]
pub struct Client {
    base_url: String,
    access_token: Option<String>,
    http: HyperClient<HttpConnector, Full<Bytes>>,
    observer: Option<Observer>,
}

impl Client {
    /// A client for the server at `base_url`, e.g. `http://127.0.0.1:8008`; each operation adds its basePath.
    pub fn new(base_url: impl Into<String>) -> Self {
        Client {
            base_url: base_url.into().trim_end_matches('/').to_string(),
            access_token: None,
            http: HyperClient::builder(TokioExecutor::new()).build_http(),
            observer: None,
        }
    }

    /// The same client, sending `token` as `Authorization: Bearer`.
    pub fn with_access_token(&self, token: impl Into<String>) -> Self {
        Client { access_token: Some(token.into()), ..self.clone() }
    }

    /// The same client, reporting every exchange to `observer`.
    pub fn with_observer(&self, observer: Observer) -> Self {
        Client { observer: Some(observer), ..self.clone() }
    }

    /// The access token this client sends, if any.
    pub fn access_token(&self) -> Option<&str> {
        self.access_token.as_deref()
    }

    async fn send<R>(
        &self,
        operation: &'static str,
        method: &'static str,
        path: String,
        body: Option<Vec<u8>>,
        decode: fn(u16, &[u8]) -> Result<R, DecodeError>,
    ) -> Result<R, ClientError> {
        let mut req = http::Request::builder().method(method).uri(format!("{}{}", self.base_url, path));
        if let Some(token) = &self.access_token {
            req = req.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let resp = self.http.request(req).await.map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?
            .to_bytes();
        if let Some(observer) = &self.observer {
            observer(&Exchange { operation, method, path: &path, status, content_type: content_type.as_deref(), body: &bytes });
        }
        decode(status, &bytes).map_err(ClientError::Contract)
    }
"#;

pub fn emit(api: &Api) -> String {
    let mut out = String::new();
    out.push_str("#[allow(unused_imports)]\nuse super::models;\nuse super::api::*;\n");
    out.push_str(RUNTIME);
    for op in &api.operations {
        out.push('\n');
        doc_lines(&mut out, op.summary.as_deref());
        let _ = writeln!(out, "///\n/// `{} {}{}`", op.method, op.base_path, op.path);
        let args: String = arguments(op, true).iter().map(|(n, t)| format!(", {n}: {t}")).collect();
        let _ = writeln!(
            out,
            "pub async fn {}(&self{args}) -> Result<{}, ClientError> {{",
            op.name,
            response_enum(op)
        );
        let mut path_expr = format!("{}{}", op.base_path, op.path);
        let mut fmt_args = Vec::new();
        for p in op.params.iter().filter(|p| p.location == Location::Path) {
            path_expr = path_expr.replace(&format!("{{{}}}", p.name), "{}");
            fmt_args.push(format!("encode({})", p.rust_name));
        }
        let _ = writeln!(
            out,
            "#[allow(unused_mut)]\nlet mut path = format!({:?}{});",
            path_expr,
            fmt_args.iter().map(|a| format!(", {a}")).collect::<String>()
        );
        let query: Vec<_> = op.params.iter().filter(|p| p.location == Location::Query).collect();
        if !query.is_empty() {
            out.push_str("let mut query: Vec<String> = Vec::new();\n");
            for p in query {
                let value = if p.required {
                    format!("Some({})", p.rust_name)
                } else {
                    p.rust_name.clone()
                };
                let _ = writeln!(
                    out,
                    "if let Some(v) = {value} {{ query.push(format!(\"{}={{}}\", encode(&v.to_string()))); }}",
                    p.name
                );
            }
            out.push_str("if !query.is_empty() { path.push('?'); path.push_str(&query.join(\"&\")); }\n");
        }
        let body = match &op.body {
            None => "None".to_string(),
            Some(b) if b.required => "Some(serde_json::to_vec(body).map_err(|e| ClientError::Transport(e.to_string()))?)".into(),
            Some(_) => "match body { Some(b) => Some(serde_json::to_vec(b).map_err(|e| ClientError::Transport(e.to_string()))?), None => None }".into(),
        };
        let _ = writeln!(
            out,
            "self.send({:?}, {:?}, path, {body}, {}::from_response).await\n}}",
            op.name,
            op.method,
            response_enum(op)
        );
    }
    out.push_str("}\n");
    out
}
