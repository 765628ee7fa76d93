//! Which storage backend the tests run on: sled (the default), or PostgreSQL
//! when `MM_TEST_POSTGRES` holds the admin URL of a cluster
//! (`bash tests/pg/cluster.sh start`). On PostgreSQL every server gets a
//! database of its own, created here, so tests stay as independent as their
//! temporary data folders make them on sled.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{LazyLock, Mutex};

/// The environment variable naming the PostgreSQL cluster to test on.
pub const ENV: &str = "MM_TEST_POSTGRES";

/// The admin URL of the PostgreSQL cluster the tests run on, if any.
pub fn postgres() -> Option<String> {
    std::env::var(ENV).ok().filter(|url| !url.trim().is_empty())
}

/// "postgresql" or "sled", for messages.
pub fn backend_name() -> &'static str {
    if postgres().is_some() {
        "postgresql"
    } else {
        "sled"
    }
}

/// For a test about sled or its data folder itself: on PostgreSQL it says
/// that it skips and returns true, so the test can `return` at once.
pub fn sled_only(why: &str) -> bool {
    if postgres().is_some() {
        eprintln!("skipped on PostgreSQL: {why}");
        true
    } else {
        false
    }
}

/// On PostgreSQL: a new, empty database `mm_<random>`, as a URL.
pub fn fresh_database() -> Option<String> {
    let admin = postgres()?;
    let name = format!("mm_{:016x}", rand::random::<u64>());
    let out = Command::new("psql")
        .arg(&admin)
        .args(["-v", "ON_ERROR_STOP=1", "-X", "-q", "-c"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .expect("run psql (needed for the PostgreSQL half of the tests)");
    assert!(
        out.status.success(),
        "creating database {name} on {admin}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(with_database(&admin, &name))
}

/// Databases by the data folder they stand for.
static BY_FOLDER: LazyLock<Mutex<HashMap<PathBuf, String>>> = LazyLock::new(Default::default);

/// On PostgreSQL: the database that stands for the data folder `dir`, created
/// the first time `dir` is seen. A server started again on the same folder
/// (a restart, a spawned binary, an admin command) finds the same data, as it
/// would in the folder on sled.
pub fn database_for(dir: &Path) -> Option<String> {
    postgres()?;
    let mut known = BY_FOLDER.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(url) = known.get(dir) {
        return Some(url.clone());
    }
    let url = fresh_database()?;
    known.insert(dir.to_path_buf(), url.clone());
    Some(url)
}

/// `--database-url URL` for a spawned binary on `dir`, or nothing on sled.
pub fn database_args(dir: &Path) -> Vec<String> {
    database_for(dir).map_or_else(Vec::new, |url| vec!["--database-url".into(), url])
}

/// `postgres://user@host:port/postgres?x` with its database replaced by `name`.
pub fn with_database(admin: &str, name: &str) -> String {
    let authority_start = admin.find("://").map_or(0, |i| i + 3);
    let (head, tail) = admin.split_at(authority_start);
    let (authority, rest) = tail.split_at(tail.find(['/', '?']).unwrap_or(tail.len()));
    let query = rest.find('?').map_or("", |i| &rest[i..]);
    format!("{head}{authority}/{name}{query}")
}
