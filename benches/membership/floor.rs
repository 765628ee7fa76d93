//! The floor: the least work a durable membership POST can cost on this
//! machine, measured in the same run as our server. It is
//! `../shared/tools/limit` in `MODE=blocking`, built into this benchmark so
//! the repository does not depend on `../shared`: hyper 1, parse the JSON
//! body, insert one sled key, `flush()` on the blocking pool (sled coalesces
//! concurrent flushes), then answer a fixed JSON object. It runs as a
//! separate process (this binary re-executed with `--floor-server`), so its
//! CPU and memory are its own.

use super::client::Account;
use super::server::{free_loopback_addr, Listening};
use super::setup::{Plan, PrivateRoom, PublicRoom};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The hidden flag that makes this binary the floor server: `--floor-server PORT DATA_DIR`.
pub const FLAG: &str = "--floor-server";

const ANSWER: &[u8] = b"{\"room_id\":\"!d41d8cd:localhost\"}";

/// The floor server process, killed when dropped.
pub struct FloorServer {
    pub process: Listening,
    _data: tempfile::TempDir,
}

impl FloorServer {
    pub fn start() -> Result<FloorServer, String> {
        let exe = std::env::current_exe().map_err(|e| format!("this benchmark's path: {e}"))?;
        let data = tempfile::Builder::new()
            .prefix("matrix-membership-floor-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let bind = free_loopback_addr()?;
        let port = bind.rsplit_once(':').map(|(_, p)| p.to_string()).unwrap_or_default();
        let log = std::env::temp_dir().join(format!("matrix-membership-floor-{}.log", std::process::id()));
        let mut command = Command::new(&exe);
        command.arg(FLAG).arg(port).arg(data.path());
        let process = Listening::spawn(command, &bind, log, "the floor server")?;
        Ok(FloorServer { process, _data: data })
    }
}

/// Accounts and rooms the floor never checks: the mix sends the same paths
/// and bodies as to our server, with made-up ids and tokens.
pub fn made_up_plan(users: usize, public_rooms: usize, private_rooms: usize) -> Plan {
    let account = |name: String| Account {
        user_id: format!("@{name}:localhost"),
        token: format!("floor-token-{name}"),
    };
    let n_owners = public_rooms.min(4);
    Plan {
        owners: (0..n_owners).map(|i| account(format!("floor-o{i}"))).collect(),
        members: (0..users).map(|i| account(format!("floor-u{i}"))).collect(),
        public: (0..public_rooms)
            .map(|i| PublicRoom {
                id: format!("!floorpub{i}:localhost"),
                alias: format!("#floor-pub{i}:localhost"),
                owner: i % n_owners,
            })
            .collect(),
        private: (0..private_rooms)
            .map(|i| PrivateRoom {
                id: format!("!floorpriv{i}:localhost"),
                owner: i % n_owners,
            })
            .collect(),
    }
}

/// Serves the floor on `127.0.0.1:port` with its sled database in `data`, until killed.
pub fn serve(port: &str, data: &Path) -> Result<(), String> {
    let port: u16 = port.parse().map_err(|_| format!("{FLAG}: {port:?} is not a port"))?;
    // Like `#[tokio::main]` in the limit tool: one worker per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let db = sled::open(data).map_err(|e| format!("sled at {}: {e}", data.display()))?;
    let tree = db.open_tree("m").map_err(|e| format!("sled tree: {e}"))?;
    runtime.block_on(accept(port, tree))
}

async fn accept(port: u16, tree: sled::Tree) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| format!("bind 127.0.0.1:{port}: {e}"))?;
    let next_key = Arc::new(AtomicU64::new(0));
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| format!("accept: {e}"))?;
        let (tree, next_key) = (tree.clone(), next_key.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| answer(req, tree.clone(), next_key.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
        });
    }
}

/// Every path and method alike: parse, insert, flush, answer.
async fn answer(
    req: Request<hyper::body::Incoming>,
    tree: sled::Tree,
    next_key: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = req.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let key = next_key.fetch_add(1, Ordering::Relaxed);
    let durable = async {
        tree.insert(key.to_be_bytes(), serde_json::to_vec(&value).expect("JSON"))
            .map_err(|e| e.to_string())?;
        let flushed = tree.clone();
        tokio::task::spawn_blocking(move || flushed.flush())
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    };
    let (status, body) = match durable.await {
        Ok(_) => (200, Bytes::from_static(ANSWER)),
        Err(e) => (500, Bytes::from(format!("{{\"error\":{:?}}}", e))),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(body))
        .expect("response"))
}
