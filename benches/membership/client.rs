//! A minimal Matrix client-server v3 client over one keep-alive HTTP/1
//! connection (raw hyper client conn), enough for the membership benchmark.

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

use super::ledger::Ledger;

/// Everything but RFC 3986 unreserved characters is encoded (`#`, `:`, `!`, `@` …).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// One request may take at most this long before it counts as a timeout error.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

const V3: &str = "/_matrix/client/v3";

/// Set once a server rejected a registration without a password (Synapse does).
pub static NEED_PASSWORD: AtomicBool = AtomicBool::new(false);
/// The password used for bench accounts when the server insists on one.
pub const BENCH_PASSWORD: &str = "bench-password-not-secret";

/// Percent-encodes one path segment.
pub fn enc(segment: &str) -> String {
    utf8_percent_encode(segment, PATH_SEGMENT).to_string()
}

/// `http://host:port` split into what a connection needs.
#[derive(Clone, Debug)]
pub struct Target {
    /// `host:port`, for connecting and for the Host header.
    pub authority: String,
    /// Where acknowledged writes and accounts are counted: set for the
    /// server under test, not for the floor.
    pub ledger: Option<Arc<Ledger>>,
}

impl Target {
    pub fn parse(url: &str) -> Result<Target, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url:?}: only plain http:// URLs are supported"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!(
                "{url:?}: give only scheme, host and port, e.g. http://127.0.0.1:8009"
            ));
        }
        let authority = if authority
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        Ok(Target {
            authority,
            ledger: None,
        })
    }

    /// The same target, its acknowledged writes counted in `ledger`.
    pub fn counted(self, ledger: Arc<Ledger>) -> Target {
        Target {
            ledger: Some(ledger),
            ..self
        }
    }

    /// True when the host is a loopback address (the benchmark refuses anything else).
    pub fn is_loopback(&self) -> bool {
        let host = self
            .authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(&self.authority);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
    }
}

/// A response: status and parsed JSON body (`Null` if it was not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Resp {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `"403 M_FORBIDDEN"`: the key under which errors are counted.
    pub fn error_key(&self) -> String {
        match self.body.get("errcode").and_then(Value::as_str) {
            Some(code) => format!("{} {code}", self.status),
            None => format!("{}", self.status),
        }
    }

    pub fn error_text(&self) -> String {
        self.body.get("error").and_then(Value::as_str).unwrap_or("").to_string()
    }
}

/// Why a call failed: an HTTP error response or a transport problem.
#[derive(Debug)]
pub enum Failure {
    Status(Resp),
    Transport(String),
}

impl Failure {
    pub fn key(&self) -> String {
        match self {
            Failure::Status(r) => r.error_key(),
            Failure::Transport(e) => format!("transport: {}", e.split(':').next().unwrap_or(e)),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Status(r) => write!(f, "{} {}", r.error_key(), r.error_text()),
            Failure::Transport(e) => write!(f, "transport: {e}"),
        }
    }
}

/// A Matrix account the bench registered.
#[derive(Clone, Debug)]
pub struct Account {
    pub user_id: String,
    pub token: String,
}

impl Account {
    /// The server name part of the user id.
    pub fn server_name(&self) -> &str {
        self.user_id.split_once(':').map(|(_, s)| s).unwrap_or("localhost")
    }
}

/// One keep-alive HTTP/1 connection, reopened if the server closes it.
pub struct Conn {
    target: Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(target: &Target) -> Conn {
        Conn {
            target: target.clone(),
            sender: None,
        }
    }

    async fn connect(&mut self) -> Result<(), String> {
        let stream = TcpStream::connect(&self.target.authority)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends one request (no body when `body` is `None`) and reads the whole
    /// response, within `REQUEST_TIMEOUT`.
    pub async fn request(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Resp, String> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.request_inner(method, path, token, body)).await {
            Ok(result) => result,
            Err(_) => {
                // The connection is in an unknown state: drop it.
                self.sender = None;
                Err("timeout: no response within 30 s".into())
            }
        }
    }

    async fn request_inner(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Resp, String> {
        let payload = match body {
            Some(body) => Bytes::from(serde_json::to_vec(body).expect("JSON")),
            None => Bytes::new(),
        };
        // A connection the server closed while idle is reopened once; a request
        // that was already sent is never retried (it may have been applied).
        for attempt in 0..2 {
            if self.sender.is_none() {
                self.connect().await?;
            }
            let sender = self.sender.as_mut().expect("connected");
            if sender.ready().await.is_err() {
                self.sender = None;
                if attempt == 0 {
                    continue;
                }
                return Err("closed: connection closed before the request was sent".into());
            }
            let mut req = Request::builder()
                .method(method.clone())
                .uri(path)
                .header(header::HOST, &self.target.authority);
            if body.is_some() {
                req = req.header(header::CONTENT_TYPE, "application/json");
            }
            if let Some(token) = token {
                req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let req = req
                .body(Full::new(payload.clone()))
                .map_err(|e| format!("request: {e}"))?;
            let resp = match sender.send_request(req).await {
                Ok(resp) => resp,
                Err(e) => {
                    self.sender = None;
                    return Err(format!("send: {e}"));
                }
            };
            let status = resp.status().as_u16();
            let bytes = match resp.into_body().collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    self.sender = None;
                    return Err(format!("body: {e}"));
                }
            };
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            return Ok(Resp { status, body });
        }
        unreachable!()
    }

    /// A request whose non-2xx answer is a `Failure`; a 2xx write is
    /// counted in the target's ledger.
    pub async fn call(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> Result<Resp, Failure> {
        let write = method != Method::GET;
        match self.request(method, path, token, Some(body)).await {
            Ok(r) if r.ok() => {
                if let (true, Some(ledger)) = (write, &self.target.ledger) {
                    ledger.write();
                }
                Ok(r)
            }
            Ok(r) => Err(Failure::Status(r)),
            Err(e) => Err(Failure::Transport(e)),
        }
    }

    /// A GET without a body whose non-2xx answer is a `Failure`.
    pub async fn get(&mut self, path: &str, token: &str) -> Result<Resp, Failure> {
        match self.request(Method::GET, path, Some(token), None).await {
            Ok(r) if r.ok() => Ok(r),
            Ok(r) => Err(Failure::Status(r)),
            Err(e) => Err(Failure::Transport(e)),
        }
    }

    /// Timed membership call: (latency, result).
    pub async fn timed(&mut self, path: &str, token: &str, body: &Value) -> (Duration, Result<Resp, Failure>) {
        let start = Instant::now();
        let r = self.call(Method::POST, path, Some(token), body).await;
        (start.elapsed(), r)
    }

    /// Timed GET: (latency, result).
    pub async fn timed_get(&mut self, path: &str, token: &str) -> (Duration, Result<Resp, Failure>) {
        let start = Instant::now();
        let r = self.get(path, token).await;
        (start.elapsed(), r)
    }

    /// Two-step registration with `m.login.dummy`. Tries without a password
    /// first (our server then skips hashing); switches to a password for the
    /// rest of the run if the server insists on one.
    pub async fn register(&mut self, username: &str) -> Result<Account, Failure> {
        loop {
            let with_password = NEED_PASSWORD.load(Ordering::Relaxed);
            match self.register_once(username, with_password).await {
                Err(Failure::Status(r)) if !with_password && r.status == 400 && mentions_password(&r) => {
                    NEED_PASSWORD.store(true, Ordering::Relaxed);
                }
                other => return other,
            }
        }
    }

    async fn register_once(&mut self, username: &str, with_password: bool) -> Result<Account, Failure> {
        let path = format!("{V3}/register");
        let mut body = json!({ "username": username, "inhibit_login": false });
        if with_password {
            body["password"] = json!(BENCH_PASSWORD);
        }
        let first = self
            .request(Method::POST, &path, None, Some(&body))
            .await
            .map_err(Failure::Transport)?;
        let done = if first.status == 401 {
            let session = first.body.get("session").cloned().unwrap_or(Value::Null);
            body["auth"] = json!({ "type": "m.login.dummy", "session": session });
            self.call(Method::POST, &path, None, &body).await?
        } else if first.ok() {
            first
        } else {
            return Err(Failure::Status(first));
        };
        let field = |name: &str| done.body.get(name).and_then(Value::as_str).map(str::to_string);
        match (field("user_id"), field("access_token")) {
            (Some(user_id), Some(token)) => {
                if let Some(ledger) = &self.target.ledger {
                    let device = field("device_id").map_or(0, |d| d.len());
                    ledger.account(user_id.len() + token.len() + device);
                }
                Ok(Account { user_id, token })
            }
            _ => Err(Failure::Transport(format!("register: unexpected body {}", done.body))),
        }
    }

    /// `createRoom`; returns the room id.
    pub async fn create_room(
        &mut self,
        owner: &Account,
        preset: &str,
        alias_name: Option<&str>,
    ) -> Result<String, Failure> {
        let mut body = json!({ "preset": preset });
        if let Some(alias) = alias_name {
            body["room_alias_name"] = json!(alias);
        }
        let r = self
            .call(Method::POST, &format!("{V3}/createRoom"), Some(&owner.token), &body)
            .await?;
        if let (Some(ledger), Some(alias)) = (&self.target.ledger, alias_name) {
            // The full alias, `#name:server`, is what the server keeps.
            ledger.alias(alias.len() + owner.server_name().len() + 2);
        }
        r.body
            .get("room_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| Failure::Transport(format!("createRoom: no room_id in {}", r.body)))
    }
}

fn mentions_password(r: &Resp) -> bool {
    let text = format!("{} {}", r.error_key(), r.error_text()).to_lowercase();
    text.contains("password") || text.contains("missing_param")
}

/// Paths of the membership operations.
pub fn invite_path(room: &str) -> String {
    format!("{V3}/rooms/{}/invite", enc(room))
}
pub fn join_room_path(room: &str) -> String {
    format!("{V3}/rooms/{}/join", enc(room))
}
pub fn join_alias_path(room_or_alias: &str) -> String {
    format!("{V3}/join/{}", enc(room_or_alias))
}
pub fn leave_path(room: &str) -> String {
    format!("{V3}/rooms/{}/leave", enc(room))
}
pub fn send_path(room: &str, txn: &str) -> String {
    format!("{V3}/rooms/{}/send/m.room.message/{}", enc(room), enc(txn))
}
/// `/messages`; `from` is a token of an earlier batch.
pub fn messages_path(room: &str, dir: &str, limit: usize, from: Option<&str>) -> String {
    let from = from.map(|f| format!("&from={}", enc(f))).unwrap_or_default();
    format!("{V3}/rooms/{}/messages?dir={dir}&limit={limit}{from}", enc(room))
}
pub fn room_initial_sync_path(room: &str) -> String {
    format!("{V3}/rooms/{}/initialSync", enc(room))
}
pub fn initial_sync_path(limit: usize) -> String {
    format!("{V3}/initialSync?limit={limit}")
}
