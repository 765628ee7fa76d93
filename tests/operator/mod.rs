//! What the operator tests share: the real binary as a server process, and
//! its admin subcommands, run the way an operator runs them.
#![allow(dead_code)]

use crate::common;
use matrix_membership::generated::api::*;
use matrix_membership::generated::client::Client;
use matrix_membership::generated::models;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A server process on a free port; SIGTERMed and waited for when dropped.
pub struct Server {
    child: Option<Child>,
    pub base_url: String,
}

/// Starts the binary on `data_dir`, rate limits off, and reads its address.
pub fn spawn(data_dir: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_matrix-membership"))
        .args(["--bind", "127.0.0.1:0", "--no-rate-limits", "--data-dir"])
        .arg(data_dir)
        .args(common::database_args(data_dir))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the server binary");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base_url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in the start-up line {line:?}"))
        .to_string();
    Server {
        child: Some(child),
        base_url,
    }
}

impl Server {
    /// The generated client, every answer checked against the spec.
    pub fn client(&self) -> Client {
        common::checked_client(&self.base_url, Default::default())
    }

    /// SIGTERM, and wait until the process (and its folder lock) is gone.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill only sends a signal to our own child.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let status = child.wait().unwrap();
            assert!(
                status.success() || std::thread::panicking(),
                "server exited with {status}"
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// What an admin command printed, and whether it succeeded.
pub struct Outcome {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `matrix-membership --data-dir DIR ARGS…`, feeding `stdin`.
pub fn admin(data_dir: &Path, args: &[&str], stdin: &str) -> Outcome {
    let mut child = Command::new(env!("CARGO_BIN_EXE_matrix-membership"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(common::database_args(data_dir))
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the admin command");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    Outcome {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Like [`admin`], and it must succeed.
pub fn admin_ok(data_dir: &Path, args: &[&str], stdin: &str) -> String {
    let out = admin(data_dir, args, stdin);
    assert!(out.ok, "{args:?} failed: {}{}", out.stdout, out.stderr);
    out.stdout
}

/// Password login; the client with the token, or the error answer.
pub async fn login(client: &Client, user: &str, password: &str) -> Result<Client, (u16, String)> {
    let body = models::LoginRequest {
        r#type: "m.login.password".into(),
        identifier: Some(models::UserIdentifier {
            r#type: Some("m.id.user".into()),
            user: Some(user.into()),
        }),
        user: None,
        password: Some(password.into()),
        device_id: None,
        initial_device_display_name: None,
    };
    match client.login(&body).await.unwrap() {
        LoginResponse::Ok(ok) => Ok(client.with_access_token(ok.access_token)),
        LoginResponse::Forbidden(e) => Err((403, e.errcode)),
        other => panic!("login: {other:?}"),
    }
}

/// A room of `client` with a name and an alias.
pub async fn create_room(client: &Client, alias: &str, name: &str, preset: models::CreateRoomRequestPreset) -> String {
    let req = models::CreateRoomRequest {
        visibility: None,
        room_alias_name: Some(alias.into()),
        name: Some(name.into()),
        topic: None,
        invite: None,
        preset: Some(preset),
        power_level_content_override: None,
        initial_state: None,
        is_direct: None,
        creation_content: None,
        room_version: None,
    };
    match client.create_room(&req).await.unwrap() {
        CreateRoomResponse::Ok(ok) => ok.room_id,
        other => panic!("createRoom: {other:?}"),
    }
}

/// Whether the client's token still works.
pub async fn token_works(client: &Client) -> bool {
    match client.whoami().await.unwrap() {
        WhoamiResponse::Ok(_) => true,
        WhoamiResponse::Unauthorized(_) => false,
        other => panic!("whoami: {other:?}"),
    }
}

/// Every member of the room and their membership, sorted.
pub async fn members(client: &Client, room: &str) -> Vec<(String, String)> {
    match client.get_members(room, None, None, None).await.unwrap() {
        GetMembersResponse::Ok(ok) => {
            let mut out: Vec<(String, String)> = ok
                .chunk
                .into_iter()
                .map(|e| {
                    let membership = e
                        .content
                        .get("membership")
                        .and_then(|m| m.as_str())
                        .unwrap_or("")
                        .to_string();
                    (e.state_key.unwrap_or_default(), membership)
                })
                .collect();
            out.sort();
            out
        }
        other => panic!("members: {other:?}"),
    }
}
