//! The hyper 1 service: every request goes route → token → body → `Api`,
//! and every failure on the way is a Matrix JSON error.

use super::accept::{Accepted, Acceptor};
use super::auth::{authenticate, credential, TokenResolver};
use super::connection::Watched;
use super::context::RequestContext;
use super::cors;
use super::error::MatrixError;
use super::request_id;
use super::router::{RouteMatch, Router};
use crate::caller::ClientAddr;
use crate::generated::api::Api;
use crate::generated::routes::{dispatch, DispatchError, RawRequest, RequestError};
use crate::metrics::http::RequestKind;
use crate::metrics::Metrics;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use percent_encoding::percent_decode_str;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use swagger::auth::{Authorization, Scopes};
use swagger::XSpanIdString;
use tokio::net::TcpListener;

pub use super::limits::EdgeConfig;

/// The HTTP edge in front of an `Api` implementation.
pub struct Edge<A> {
    api: Arc<A>,
    router: Router,
    config: EdgeConfig,
    metrics: Arc<Metrics>,
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let mut resp = Response::new(Full::new(Bytes::from(bytes)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error_response(err: &MatrixError) -> Response<Full<Bytes>> {
    json_response(err.status, &err.body())
}

/// Splits and percent-decodes a query string (`+` is a space, as in forms).
pub fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

fn request_error(e: RequestError) -> MatrixError {
    let bad = StatusCode::BAD_REQUEST;
    match e {
        RequestError::NotJson(m) => MatrixError::new(bad, "M_NOT_JSON", m),
        RequestError::BadJson(m) => MatrixError::new(bad, "M_BAD_JSON", m),
        RequestError::MissingParam(m) => MatrixError::new(bad, "M_MISSING_PARAM", m),
        RequestError::InvalidParam(m) => MatrixError::new(bad, "M_INVALID_PARAM", m),
        RequestError::Refused { errcode, message } => MatrixError::new(bad, errcode, message),
    }
}

impl<A> Edge<A>
where
    A: Api<RequestContext> + TokenResolver + Send + Sync + 'static,
{
    /// An edge for `api`, counting requests and connections in `metrics`.
    pub fn new(api: Arc<A>, config: EdgeConfig, metrics: Arc<Metrics>) -> Self {
        Edge {
            api,
            router: Router::default(),
            config,
            metrics,
        }
    }

    /// Answers one request; never fails, never panics on client input.
    pub async fn handle(&self, req: Request<Incoming>, client: Option<ClientAddr>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let request_id = request_id::of(&req);
        let method = req.method().clone();
        // The path only: the query may carry `access_token`, which no log may hold.
        let path = req.uri().path().to_string();
        let mut kind = RequestKind::Unmatched;
        let mut resp = match self.answer(req, client, &request_id, &mut kind).await {
            Ok(resp) => resp,
            Err(err) => error_response(&err),
        };
        cors::add_headers(resp.headers_mut());
        request_id::echo(&mut resp, &request_id);
        if resp.status() == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body may still come: this connection cannot carry another request.
            resp.headers_mut()
                .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        }
        let took = started.elapsed();
        self.metrics.http.request(kind, resp.status(), took);
        tracing::info!(
            request_id = %request_id,
            method = %method,
            path = %path,
            operation = kind.log_name(),
            status = resp.status().as_u16(),
            latency_us = took.as_micros() as u64,
            "request"
        );
        resp
    }

    /// The answer to `req`; `operation` is set once the route is known.
    async fn answer(
        &self,
        req: Request<Incoming>,
        client: Option<ClientAddr>,
        request_id: &str,
        kind: &mut RequestKind,
    ) -> Result<Response<Full<Bytes>>, MatrixError> {
        // Browsers preflight every cross-origin call; any path answers it.
        if req.method() == Method::OPTIONS {
            *kind = RequestKind::Preflight;
            return Ok(json_response(StatusCode::OK, &serde_json::json!({})));
        }
        let path = req.uri().path().to_string();
        let (operation, path_params) = match self.router.route(req.method().as_str(), &path) {
            RouteMatch::Found { operation, params } => (operation, params),
            RouteMatch::MethodNotAllowed { allow } => {
                let err = MatrixError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "M_UNRECOGNIZED",
                    format!(
                        "{} is not allowed on {path}; allowed: {}",
                        req.method(),
                        allow.join(", ")
                    ),
                );
                let mut resp = error_response(&err);
                if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                    resp.headers_mut().insert(http::header::ALLOW, v);
                }
                return Ok(resp);
            }
            RouteMatch::EmptyParam { name } => {
                return Err(MatrixError::new(
                    StatusCode::BAD_REQUEST,
                    "M_INVALID_PARAM",
                    format!("path parameter {name} must not be empty"),
                ))
            }
            RouteMatch::BadEncoding => {
                return Err(MatrixError::new(
                    StatusCode::BAD_REQUEST,
                    "M_INVALID_PARAM",
                    "the path is not valid percent-encoded UTF-8, or holds U+0000",
                ))
            }
            RouteMatch::NotFound => return Err(MatrixError::unrecognized(&path)),
        };
        *kind = RequestKind::Operation(operation);
        let query = parse_query(req.uri().query());
        let mut context = RequestContext::new(XSpanIdString(request_id.to_string()), client);
        // Only operations that take a token read one: a stray or malformed
        // credential on an open endpoint (`/versions`, `/login`) is not an error.
        if operation.requires_auth() {
            context.auth_data = credential(req.headers(), &query)?;
            let user = authenticate(self.api.as_ref(), context.auth_data.as_ref()).await?;
            context.authorization = Some(Authorization {
                subject: user,
                scopes: Scopes::All,
                issuer: None,
            });
        }
        let body = self.read_body(req).await?;
        let raw = RawRequest {
            path_params: &path_params,
            query: &query,
            body: &body,
        };
        match dispatch(self.api.as_ref(), operation, raw, &context).await {
            Ok(r) => {
                let status = StatusCode::from_u16(r.status).map_err(MatrixError::internal)?;
                let mut resp = json_response(status, &r.body);
                if status == StatusCode::TOO_MANY_REQUESTS {
                    add_retry_after(&mut resp, &r.body);
                }
                Ok(resp)
            }
            Err(DispatchError::Request(e)) => Err(request_error(e)),
            Err(DispatchError::Api(e)) => {
                tracing::error!(request_id, operation = operation.name(), error = %e, "api error");
                Err(MatrixError::internal(e))
            }
            Err(DispatchError::Serialize(e)) => Err(MatrixError::internal(e)),
        }
    }

    async fn read_body(&self, req: Request<Incoming>) -> Result<Bytes, MatrixError> {
        let too_large = || {
            MatrixError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "M_TOO_LARGE",
                format!(
                    "the request body is larger than the limit of {} bytes",
                    self.config.body_limit
                ),
            )
        };
        let declared = req
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.config.body_limit as u64) {
            return Err(too_large());
        }
        let body = Limited::new(req.into_body(), self.config.body_limit).collect();
        let Ok(read) = tokio::time::timeout(self.config.body_timeout, body).await else {
            return Err(MatrixError::new(
                StatusCode::REQUEST_TIMEOUT,
                "M_UNKNOWN",
                format!("the request body did not arrive within {:?}", self.config.body_timeout),
            ));
        };
        match read {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(too_large()),
            Err(e) => Err(MatrixError::new(
                StatusCode::BAD_REQUEST,
                "M_BAD_JSON",
                format!("the request body could not be read: {e}"),
            )),
        }
    }
}

/// `Retry-After` in whole seconds, rounded up, from the body's `retry_after_ms`.
fn add_retry_after(resp: &mut Response<Full<Bytes>>, body: &serde_json::Value) {
    if let Some(ms) = body.get("retry_after_ms").and_then(serde_json::Value::as_u64) {
        if let Ok(v) = HeaderValue::from_str(&ms.div_ceil(1000).max(1).to_string()) {
            resp.headers_mut().insert(http::header::RETRY_AFTER, v);
        }
    }
}

/// hyper's parser, bounded by the head limits. Its own header timeout is
/// off: `connection::Watched` keeps a better one (see there).
fn http1_builder(config: &EdgeConfig) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .header_read_timeout(None)
        .max_header_size(config.max_header_bytes)
        .max_headers(config.max_headers)
        // The read buffer needs to hold one head; hyper refuses less than 8 KiB.
        .max_buf_size(config.max_header_bytes.max(8192));
    builder
}

/// Serves `edge` on `listener` until `shutdown` resolves, then lets in-flight
/// requests finish (for at most `grace`).
pub async fn serve<A>(listener: TcpListener, edge: Arc<Edge<A>>, shutdown: impl Future<Output = ()>, grace: Duration)
where
    A: Api<RequestContext> + TokenResolver + Send + Sync + 'static,
{
    let graceful = GracefulShutdown::new();
    let builder = http1_builder(&edge.config);
    let mut acceptor = Acceptor::new(listener, edge.config.max_connections);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = acceptor.next() => {
                let Accepted { stream, peer, slot } = accepted;
                let open = edge.metrics.http.connection_opened();
                let _ = stream.set_nodelay(true);
                let (stream, tracker) = Watched::new(stream, &edge.config);
                let edge = edge.clone();
                let client = Some(ClientAddr(peer.ip()));
                let service = hyper::service::service_fn(move |req| {
                    let edge = edge.clone();
                    let tracker = tracker.clone();
                    let in_flight = tracker.begin();
                    async move {
                        let resp = edge.handle(req, client).await;
                        drop(in_flight);
                        Ok::<_, std::convert::Infallible>(resp.map(|body| tracker.track(body)))
                    }
                });
                let conn = builder.serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                    // The next connection may be accepted once this one is gone.
                    drop(slot);
                    drop(open);
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(acceptor);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("in-flight requests did not finish within {grace:?}");
    }
}
