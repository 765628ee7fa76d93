//! The metrics listener (`--metrics-bind`): `GET /_matrix/metrics` in the
//! Prometheus text format, and nothing else. It is separate from the client
//! listener so an operator can keep it off the public network.

use super::Metrics;
use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Where the metrics are served.
pub const PATH: &str = "/_matrix/metrics";

/// The content type of the text exposition format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Scrapers are few: more connections than this wait in the backlog.
const MAX_CONNECTIONS: usize = 16;

fn matrix_error(status: StatusCode, errcode: &str, message: String) -> Response<Full<Bytes>> {
    let body = serde_json::json!({"errcode": errcode, "error": message});
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

/// The answer to one request on the metrics listener.
pub fn answer<B>(metrics: &Metrics, req: &Request<B>) -> Response<Full<Bytes>> {
    let path = req.uri().path();
    if path != PATH {
        return matrix_error(
            StatusCode::NOT_FOUND,
            "M_UNRECOGNIZED",
            format!("{path} is not served here; metrics are at {PATH}"),
        );
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut resp = matrix_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "M_UNRECOGNIZED",
            format!("{} is not allowed on {PATH}; allowed: GET", req.method()),
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET"));
        return resp;
    }
    let mut resp = Response::new(Full::new(Bytes::from(metrics.render())));
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    resp
}

/// Serves `metrics` on `listener` until `shutdown` resolves.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, shutdown: impl Future<Output = ()>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a metrics connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let metrics = metrics.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let resp = answer(&metrics, &req);
            async move { Ok::<_, std::convert::Infallible>(resp) }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
            drop(slot);
        });
    }
}
