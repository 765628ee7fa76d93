//! The real binary: acknowledged writes survive SIGKILL, SIGTERM stops it cleanly.

mod common;

use matrix_membership::generated::api::*;
use matrix_membership::generated::client::Client;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

struct Server {
    child: Child,
    base_url: String,
}

/// Starts the binary on a free port and reads the address from its start-up line.
fn spawn(data_dir: &Path) -> Server {
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
    assert!(
        line.contains("server name localhost") && (line.contains("data in") || line.contains("database postgres")),
        "start-up line: {line}"
    );
    let base_url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("address")
        .to_string();
    Server { child, base_url }
}

impl Server {
    fn client(&self) -> Client {
        // Checked against the spec like every harness client.
        common::checked_client(&self.base_url, Default::default())
    }

    fn kill_hard(mut self) {
        self.child.kill().unwrap(); // SIGKILL: no chance to flush
        self.child.wait().unwrap();
    }
}

async fn joined(client: &Client, room: &str) -> Vec<String> {
    match client.get_joined_members(room).await.unwrap() {
        GetJoinedMembersResponse::Ok(ok) => {
            let mut ids: Vec<String> = ok.joined.into_keys().collect();
            ids.sort();
            ids
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_acknowledged_change_survives_sigkill_right_after_the_response() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(dir.path());
    let alice = common::register_on(&server.client(), "alice").await;
    let alice_token = alice.access_token().unwrap().to_string();
    let bob = common::register_on(&server.client(), "bob").await;
    let bob_token = bob.access_token().unwrap().to_string();
    let req = models::CreateRoomRequest {
        visibility: None,
        room_alias_name: Some("durable".into()),
        name: None,
        topic: None,
        invite: None,
        preset: Some(Preset::PublicChat),
        power_level_content_override: None,
        initial_state: None,
        is_direct: None,
        creation_content: None,
        room_version: None,
    };
    let room = match alice.create_room(&req).await.unwrap() {
        CreateRoomResponse::Ok(ok) => ok.room_id,
        other => panic!("{other:?}"),
    };
    server.kill_hard();

    // Each round: one acknowledged membership change, then SIGKILL at once.
    let mut expect_bob_joined = false;
    for round in 0..6 {
        let server = spawn(dir.path());
        let bob = server.client().with_access_token(bob_token.clone());
        let alice = server.client().with_access_token(alice_token.clone());
        let mut expected = vec!["@alice:localhost".to_string()];
        if expect_bob_joined {
            expected.push("@bob:localhost".into());
        }
        assert_eq!(
            joined(&alice, &room).await,
            expected,
            "round {round}: state after restart"
        );
        let status = if expect_bob_joined {
            bob.leave_room(&room, None).await.unwrap().status()
        } else {
            bob.post_rooms_room_id_join("#durable:localhost", None)
                .await
                .unwrap()
                .status()
        };
        assert_eq!(status, 200);
        expect_bob_joined = !expect_bob_joined;
        server.kill_hard();
    }
    let server = spawn(dir.path());
    let alice = server.client().with_access_token(alice_token);
    assert!(
        matches!(alice.whoami().await.unwrap(), WhoamiResponse::Ok(_)),
        "sessions survive"
    );
    match alice.get_room_alias("#durable:localhost").await.unwrap() {
        GetRoomAliasResponse::Ok(ok) => assert_eq!(ok.room_id, room),
        other => panic!("{other:?}"),
    }
    server.kill_hard();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = spawn(dir.path());
    let alice = common::register_on(&server.client(), "alice").await;
    assert_eq!(alice.whoami().await.unwrap().status(), 200);
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(server.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    assert!(exit.success(), "graceful stop exits 0, got {exit:?}");
    // The database lock was released and the data is there.
    let server = spawn(dir.path());
    let token = alice.access_token().unwrap().to_string();
    assert_eq!(
        server
            .client()
            .with_access_token(token)
            .whoami()
            .await
            .unwrap()
            .status(),
        200
    );
    server.kill_hard();
}
