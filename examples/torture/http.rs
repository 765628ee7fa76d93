//! A small Matrix client over one keep-alive HTTP/1 connection per `Conn`.
//!
//! It never retries a request that may have reached the server: whether a
//! request is sent twice is the torture's decision (the retry probes), never
//! the client's. It does tell "never sent" (connection refused) apart from
//! "sent, no answer", because only the second may have been applied.

use bytes::Bytes;
use http::{header, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::net::TcpStream;

/// The Client-Server API prefix real clients use.
pub const V3: &str = "/_matrix/client/v3";

/// Everything but RFC 3986 unreserved characters is encoded (`!`, `:`, `@`, `{` …).
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');

/// Long enough for any answer of a healthy server, including a long poll.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Percent-encodes a path segment or query value.
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, COMPONENT).to_string()
}

/// A stream token `s<pos>` as the server writes them.
pub fn token(pos: u64) -> String {
    format!("s{pos}")
}

/// The position in a token, if it is one of ours.
pub fn parse_token(raw: &str) -> Option<u64> {
    raw.strip_prefix('s')?.parse().ok()
}

/// An HTTP answer with its JSON body (`Null` when it was not JSON).
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub body: Value,
}

impl Resp {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// `403 M_FORBIDDEN: You are not…`, for reports.
    pub fn describe(&self) -> String {
        let field = |name: &str| self.body.get(name).and_then(Value::as_str).unwrap_or("");
        format!("{} {}: {}", self.status, field("errcode"), field("error"))
    }

    pub fn str_field(&self, name: &str) -> Option<String> {
        self.body.get(name).and_then(Value::as_str).map(str::to_string)
    }
}

/// Why no answer arrived.
#[derive(Debug, Clone)]
pub enum Transport {
    /// The request never left this process: it cannot have been applied.
    NotSent(String),
    /// It was sent (or may have been) and no answer came: it may have been applied.
    Lost(String),
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::NotSent(e) => write!(f, "not sent: {e}"),
            Transport::Lost(e) => write!(f, "no answer: {e}"),
        }
    }
}

pub type Answer = Result<Resp, Transport>;

/// One request, kept whole so that it can be sent again byte for byte.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    pub path: String,
    pub token: Option<String>,
    pub body: Option<Value>,
}

impl Req {
    pub fn get(path: String, token: &str) -> Req {
        Req {
            method: Method::GET,
            path,
            token: Some(token.to_string()),
            body: None,
        }
    }

    pub fn post(path: String, token: Option<&str>, body: Value) -> Req {
        Req {
            method: Method::POST,
            path,
            token: token.map(str::to_string),
            body: Some(body),
        }
    }

    pub fn put(path: String, token: &str, body: Value) -> Req {
        Req {
            method: Method::PUT,
            path,
            token: Some(token.to_string()),
            body: Some(body),
        }
    }
}

/// One keep-alive connection to `authority` (`127.0.0.1:port`), opened lazily.
pub struct Conn {
    authority: String,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(authority: &str) -> Conn {
        Conn {
            authority: authority.to_string(),
            sender: None,
        }
    }

    async fn connect(&mut self) -> Result<(), Transport> {
        let stream = TcpStream::connect(&self.authority)
            .await
            .map_err(|e| Transport::NotSent(format!("connect {}: {e}", self.authority)))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Transport::NotSent(format!("handshake: {e}")))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        self.sender = Some(sender);
        Ok(())
    }

    /// Sends `req` and reads the whole answer.
    pub async fn send(&mut self, req: &Req) -> Answer {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.send_inner(req)).await {
            Ok(answer) => answer,
            Err(_) => {
                self.sender = None;
                Err(Transport::Lost(format!("no answer within {REQUEST_TIMEOUT:?}")))
            }
        }
    }

    async fn send_inner(&mut self, req: &Req) -> Answer {
        // An idle connection the server closed is reopened once: nothing was sent on it.
        for attempt in 0..2 {
            if self.sender.is_none() {
                self.connect().await?;
            }
            let sender = self.sender.as_mut().expect("connected above");
            if sender.ready().await.is_ok() {
                break;
            }
            self.sender = None;
            if attempt == 1 {
                return Err(Transport::NotSent(
                    "the connection closed before the request was sent".into(),
                ));
            }
        }
        let sender = self.sender.as_mut().expect("ready above");
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(&req.path)
            .header(header::HOST, &self.authority);
        if let Some(token) = &req.token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let payload = match &req.body {
            Some(body) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(body).expect("a JSON value serializes"))
            }
            None => Bytes::new(),
        };
        let request = builder
            .body(Full::new(payload))
            .map_err(|e| Transport::NotSent(format!("building the request: {e}")))?;
        let lost = |what: &str, e: hyper::Error| Transport::Lost(format!("{what}: {e}"));
        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(lost("send", e));
            }
        };
        let status = response.status().as_u16();
        let bytes = match response.into_body().collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.sender = None;
                return Err(lost("body", e));
            }
        };
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(Resp { status, body })
    }

    /// Sends `req` and insists on a 2xx; the error says what came instead.
    pub async fn call(&mut self, req: &Req) -> Result<Resp, String> {
        match self.send(req).await {
            Ok(r) if r.ok() => Ok(r),
            Ok(r) => Err(format!("{} {}: {}", req.method, req.path, r.describe())),
            Err(e) => Err(format!("{} {}: {e}", req.method, req.path)),
        }
    }
}

/// A registered account.
#[derive(Debug, Clone)]
pub struct Account {
    pub user_id: String,
    pub token: String,
}

/// The first step of registration: the 401 that opens an `m.login.dummy` session.
pub async fn register_start(conn: &mut Conn, username: &str) -> Result<String, Answer> {
    let first = conn
        .send(&Req::post(
            format!("{V3}/register"),
            None,
            json!({ "username": username }),
        ))
        .await;
    match &first {
        Ok(r) if r.status == 401 => r.str_field("session").ok_or(first),
        _ => Err(first),
    }
}

/// The second step: completes the dummy stage of `session`.
pub fn register_finish(username: &str, session: &str) -> Req {
    Req::post(
        format!("{V3}/register"),
        None,
        json!({ "username": username, "auth": { "type": "m.login.dummy", "session": session } }),
    )
}

/// The account a successful second step created.
pub fn account_of(resp: &Resp) -> Option<Account> {
    Some(Account {
        user_id: resp.str_field("user_id")?,
        token: resp.str_field("access_token")?,
    })
}

/// Two-step registration (no password: the server then skips hashing), for set-up.
pub async fn register(conn: &mut Conn, username: &str) -> Result<Account, String> {
    let session = register_start(conn, username)
        .await
        .map_err(|a| format!("register {username}: expected a 401 with a session, got {a:?}"))?;
    let done = conn.call(&register_finish(username, &session)).await?;
    account_of(&done).ok_or_else(|| format!("register {username}: no user_id/access_token in {}", done.body))
}
