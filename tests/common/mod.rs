//! Test harness: an in-process server on a free port with its own data folder,
//! and the generated client pointed at it.
//!
//! With `MM_TEST_POSTGRES` set to an admin URL of a PostgreSQL cluster
//! (`bash tests/pg/cluster.sh start` prints one), every server runs on
//! PostgreSQL instead of sled, on a database of its own (see [`backend`]).
//!
//! Every response a test sees, through [`TestServer::client`] or
//! [`TestServer::raw`], is checked against the spec (see `contract.rs`): an
//! undocumented status or a body that does not match its schema panics, naming
//! the operation. Violations are also remembered, so one that happens in a
//! spawned task still fails the test when the server is dropped.
#![allow(dead_code)]

pub mod backend;
pub mod contract;

#[allow(unused_imports)] // each test binary uses some of them
pub use backend::{backend_name, database_args, database_for, fresh_database, postgres, sled_only};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use matrix_membership::config::settings_from_args;
use matrix_membership::generated::client::{Client, Exchange};
use matrix_membership::http::router::{RouteMatch, Router};
use matrix_membership::http::server::{serve, Edge, EdgeConfig};
use matrix_membership::metrics;
use matrix_membership::service::Service;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// A running server; it stops when dropped.
pub struct TestServer {
    pub base_url: String,
    pub service: Arc<Service>,
    pub data_dir: tempfile::TempDir,
    /// On PostgreSQL: the database this server uses; `restart` keeps it.
    pub database_url: Option<String>,
    stop: Option<oneshot::Sender<()>>,
    /// Every contract violation seen so far.
    violations: Arc<Mutex<Vec<String>>>,
    /// The serving task; `restart` waits for it to finish.
    task: Option<tokio::task::JoinHandle<()>>,
    /// With `--metrics-bind`: where `/_matrix/metrics` is served. The
    /// listener stops when `_metrics_stop` is dropped with the server.
    pub metrics_url: Option<String>,
    _metrics_stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let violations = self.violations.lock().map(|v| v.clone()).unwrap_or_default();
        if !violations.is_empty() && !std::thread::panicking() {
            panic!("{} contract violation(s):\n{}", violations.len(), violations.join("\n"));
        }
    }
}

/// Records and panics on a violation.
fn report(violations: &Mutex<Vec<String>>, message: String) -> ! {
    if let Ok(mut v) = violations.lock() {
        v.push(message.clone());
    }
    panic!("{message}");
}

/// The generated client for the server at `base_url`, checking every response
/// against the spec: a violation is pushed to `violations` and panics.
/// For servers the harness does not start itself (tests/process.rs).
pub fn checked_client(base_url: &str, violations: Arc<Mutex<Vec<String>>>) -> Client {
    let contract = contract::Contract::get();
    Client::new(base_url).with_observer(Arc::new(move |ex: &Exchange<'_>| {
        if let Err(what) = contract.check(ex.operation, ex.status, ex.content_type, ex.body) {
            report(
                &violations,
                contract::violation(ex.operation, ex.method, ex.path, ex.status, &what, ex.body),
            );
        }
    }))
}

/// Starts a server with rate limits off and extra flags.
pub async fn start_with(extra: &[&str]) -> TestServer {
    let data_dir = tempfile::tempdir().expect("temp dir");
    start_in(data_dir, "127.0.0.1:0", extra).await
}

/// Starts a server on `bind` whose database lives in `data_dir` (which may hold one already).
/// On PostgreSQL the database is the one [`database_for`] ties to `data_dir`.
pub async fn start_in(data_dir: tempfile::TempDir, bind: &str, extra: &[&str]) -> TestServer {
    let database_url = database_for(data_dir.path());
    start_on(data_dir, bind, extra, database_url).await
}

/// Starts a server on the PostgreSQL database `url` (which may hold data, and
/// may be in use by another server: several instances on one database).
pub async fn start_on_database(url: &str, extra: &[&str]) -> TestServer {
    let data_dir = tempfile::tempdir().expect("temp dir");
    start_on(data_dir, "127.0.0.1:0", extra, Some(url.to_string())).await
}

/// Starts a server on `bind`; with `database_url`, on that PostgreSQL
/// database unless `extra` names one itself.
async fn start_on(data_dir: tempfile::TempDir, bind: &str, extra: &[&str], database_url: Option<String>) -> TestServer {
    let database_url = if extra.contains(&"--database-url") {
        None
    } else {
        database_url
    };
    let mut args = vec![
        "matrix-membership".to_string(),
        "--bind".into(),
        bind.into(),
        "--data-dir".into(),
        data_dir.path().display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    if let Some(url) = &database_url {
        args.extend(["--database-url".to_string(), url.clone()]);
    }
    let mut settings = settings_from_args(args).expect("settings");
    let listener = TcpListener::bind(settings.server.bind).await.expect("bind");
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    settings.server.public_base_url.get_or_insert_with(|| base_url.clone());
    let service = Arc::new(Service::open(&settings).expect("open store"));
    let edge = Arc::new(Edge::new(
        service.clone(),
        EdgeConfig::from(&settings.server),
        service.metrics().clone(),
    ));
    let (metrics_url, metrics_stop) = match settings.server.metrics_bind {
        Some(addr) => {
            let listener = TcpListener::bind(addr).await.expect("bind metrics");
            let url = format!("http://{}{}", listener.local_addr().unwrap(), metrics::endpoint::PATH);
            let (stop, stopped) = oneshot::channel::<()>();
            let stopped = async {
                let _ = stopped.await;
            };
            tokio::spawn(metrics::endpoint::serve(listener, service.metrics().clone(), stopped));
            (Some(url), Some(stop))
        }
        None => (None, None),
    };
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        edge,
        async {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));
    TestServer {
        base_url,
        service,
        data_dir,
        database_url,
        stop: Some(stop),
        violations: Arc::new(Mutex::new(Vec::new())),
        task: Some(task),
        metrics_url,
        _metrics_stop: metrics_stop,
    }
}

impl TestServer {
    /// Stops the server, waits until it has let go of its database, and
    /// starts a new one on the same address, data folder and database, so
    /// clients and access tokens keep working.
    pub async fn restart(mut self) -> TestServer {
        let bind = self.base_url.trim_start_matches("http://").to_string();
        let database_url = self.database_url.take();
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().expect("temp dir"));
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server task ended cleanly");
        }
        let service = self.service.clone();
        // Clients made before the restart keep reporting here.
        let violations = self.violations.clone();
        drop(self);
        // Connection tasks drop their handle on the service just after they end.
        for _ in 0..500 {
            if Arc::strong_count(&service) == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            Arc::strong_count(&service),
            1,
            "the old server still holds its database"
        );
        service.flush().expect("flush before restart");
        drop(service);
        let mut next = start_on(data_dir, &bind, &["--no-rate-limits"], database_url).await;
        next.violations = violations;
        next
    }
}

/// Starts a server with rate limits off.
pub async fn start() -> TestServer {
    start_with(&["--no-rate-limits"]).await
}

impl TestServer {
    /// The generated client, without a token, checking every response against the spec.
    pub fn client(&self) -> Client {
        checked_client(&self.base_url, self.violations.clone())
    }

    /// Checks a raw response against the operation its method and path route
    /// to; answers that reach no operation must be Matrix errors. CORS
    /// preflights (`OPTIONS`) belong to no operation and are not checked.
    fn check_raw(&self, method: &str, path: &str, status: u16, headers: &http::HeaderMap, body: &[u8]) {
        if method.eq_ignore_ascii_case("OPTIONS") {
            return;
        }
        let contract = contract::Contract::get();
        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
        let route_path = path.split('?').next().unwrap_or(path);
        let (name, result) = match Router::default().route(method, route_path) {
            RouteMatch::Found { operation, .. } => (
                operation.name(),
                contract.check(operation.name(), status, content_type, body),
            ),
            _ => ("(no operation)", contract.check_unrouted(status, content_type, body)),
        };
        if let Err(what) = result {
            report(
                &self.violations,
                contract::violation(name, method, path, status, &what, body),
            );
        }
    }

    /// A raw request, for what the typed client cannot send (malformed input).
    pub async fn raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
        let resp = self.send_raw(method, path, headers, body).await;
        self.check_raw(method, path, resp.status, &resp.headers, &resp.bytes);
        resp
    }

    /// A raw request that a broken server (a test broke it on purpose) must
    /// answer with a server error. No spec documents a 5xx, so the contract
    /// cannot check it; what is checked instead is what every answer owes a
    /// client: a status of 500 or more and a Matrix JSON error.
    pub async fn raw_server_failure(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> RawResponse {
        let resp = self.send_raw(method, path, headers, body).await;
        let content_type = resp.headers.get("content-type").and_then(|v| v.to_str().ok());
        let checked = match resp.status {
            500.. => contract::Contract::get().check_unrouted(resp.status, content_type, &resp.bytes),
            status => Err(format!("status {status}, where a server failure was expected")),
        };
        if let Err(what) = checked {
            report(
                &self.violations,
                contract::violation("(server failure)", method, path, resp.status, &what, &resp.bytes),
            );
        }
        resp
    }

    async fn send_raw(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> RawResponse {
        let client = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
        let mut req = http::Request::builder()
            .method(method)
            .uri(format!("{}{}", self.base_url, path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = client
            .request(req.body(Full::new(Bytes::copy_from_slice(body))).unwrap())
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        RawResponse {
            status,
            headers,
            json,
            bytes: bytes.to_vec(),
        }
    }
}

impl TestServer {
    /// Scrapes the metrics listener (started with `--metrics-bind 127.0.0.1:0`):
    /// the status, the content type and the text.
    pub async fn scrape(&self) -> (u16, String, String) {
        get_from_metrics_listener(self.metrics_url.as_ref().expect("started with --metrics-bind")).await
    }
}

/// A plain GET to a metrics listener, which serves the Prometheus text format
/// outside every spec, so there is no contract to check: (status, content
/// type, body).
pub async fn get_from_metrics_listener(url: &str) -> (u16, String, String) {
    let client = HyperClient::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let resp = client
        .get(url.parse().unwrap())
        .await
        .expect("GET from the metrics listener");
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).expect("UTF-8 from the metrics listener"),
    )
}

/// What a raw request got back.
pub struct RawResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub json: serde_json::Value,
    pub bytes: Vec<u8>,
}

impl RawResponse {
    /// The Matrix errcode of the body.
    pub fn errcode(&self) -> &str {
        self.json.get("errcode").and_then(|v| v.as_str()).unwrap_or("")
    }

    /// Asserts a Matrix JSON error with this status and errcode.
    pub fn assert_error(&self, status: u16, errcode: &str) {
        assert_eq!(self.status, status, "body: {}", String::from_utf8_lossy(&self.bytes));
        assert_eq!(
            self.errcode(),
            errcode,
            "body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        assert_eq!(
            self.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
        assert!(self
            .json
            .get("error")
            .and_then(|v| v.as_str())
            .is_some_and(|e| !e.is_empty()));
    }
}

use matrix_membership::generated::api::{CreateRoomResponse, RegisterResponse};
use matrix_membership::generated::models;

/// A registered user: their id and a client that sends their token.
pub struct User {
    pub id: String,
    pub client: Client,
}

impl TestServer {
    /// Registers `name` through the two-step dummy auth flow.
    pub async fn register(&self, name: &str) -> User {
        let client = self.client();
        let mut body = models::RegisterRequest {
            username: Some(name.to_string()),
            password: Some(format!("{name}-password")),
            device_id: None,
            initial_device_display_name: None,
            inhibit_login: None,
            auth: None,
        };
        let session = match client.register(None, Some(&body)).await.unwrap() {
            RegisterResponse::Unauthorized(uia) => uia.session.expect("UIA session"),
            other => panic!("expected a 401 UIA challenge, got {other:?}"),
        };
        body.auth = Some(models::AuthenticationData {
            r#type: Some("m.login.dummy".into()),
            session: Some(session),
        });
        match client.register(None, Some(&body)).await.unwrap() {
            RegisterResponse::Ok(ok) => User {
                id: ok.user_id,
                client: client.with_access_token(ok.access_token.expect("access token")),
            },
            other => panic!("expected registration, got {other:?}"),
        }
    }
}

/// An empty createRoom request.
pub fn room_request() -> models::CreateRoomRequest {
    models::CreateRoomRequest {
        visibility: None,
        room_alias_name: None,
        name: None,
        topic: None,
        invite: None,
        preset: None,
        power_level_content_override: None,
        initial_state: None,
        is_direct: None,
        creation_content: None,
        room_version: None,
    }
}

impl User {
    /// Creates a room with `preset` and returns its id.
    pub async fn create_room(&self, preset: models::CreateRoomRequestPreset) -> String {
        let mut req = room_request();
        req.preset = Some(preset);
        self.create_room_with(&req).await
    }

    /// Joins `room`, asserting it succeeds.
    pub async fn join(&self, room: &str) {
        let status = self.client.post_rooms_room_id_join(room, None).await.unwrap().status();
        assert_eq!(status, 200, "{} could not join {room}", self.id);
    }

    /// Creates a room from a full request and returns its id.
    pub async fn create_room_with(&self, req: &models::CreateRoomRequest) -> String {
        match self.client.create_room(req).await.unwrap() {
            CreateRoomResponse::Ok(ok) => ok.room_id,
            other => panic!("createRoom failed: {other:?}"),
        }
    }
}

impl TestServer {
    /// The store's current stream position: it moves exactly when an event is written.
    pub fn service_pos(&self) -> u64 {
        self.service.stream_position()
    }
}

/// Registers `name` (password "pw") through `client`'s server and returns a
/// client with the new account's token; for servers the harness did not
/// start itself (spawned binaries).
pub async fn register_on(client: &Client, name: &str) -> Client {
    let mut body = models::RegisterRequest {
        username: Some(name.into()),
        password: Some("pw".into()),
        device_id: None,
        initial_device_display_name: None,
        inhibit_login: None,
        auth: None,
    };
    let RegisterResponse::Unauthorized(uia) = client.register(None, Some(&body)).await.unwrap() else {
        panic!("expected a UIA challenge")
    };
    body.auth = Some(models::AuthenticationData {
        r#type: Some("m.login.dummy".into()),
        session: uia.session,
    });
    match client.register(None, Some(&body)).await.unwrap() {
        RegisterResponse::Ok(ok) => client.with_access_token(ok.access_token.unwrap()),
        other => panic!("{other:?}"),
    }
}
