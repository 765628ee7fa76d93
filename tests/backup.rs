//! Online backup: a running server writes a consistent snapshot while
//! writes go on; restored, it holds every write acknowledged before the
//! backup was asked for, and its indexes agree with its history.

mod common;
mod operator;

use matrix_membership::generated::api::*;
use matrix_membership::generated::client::Client;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use operator::{admin_ok, create_room, login, members, spawn};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the writers had acknowledged, and when.
#[derive(Default)]
struct Acked {
    /// Message event ids.
    messages: Vec<(Instant, String)>,
    /// Membership changes per user, in order.
    memberships: BTreeMap<String, Vec<(Instant, &'static str)>>,
}

async fn history(client: &Client, room: &str) -> Vec<models::ClientEvent> {
    let GetRoomEventsResponse::Ok(page) = client
        .get_room_events(room, None, None, "f", Some(100_000), None)
        .await
        .unwrap()
    else {
        panic!("messages")
    };
    page.chunk
}

fn backup_request(dir: &str) -> models::AdminBackupBody {
    models::AdminBackupBody { dir: dir.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_only_for_admins_into_new_absolute_folders() {
    let dir = tempfile::tempdir().unwrap();
    admin_ok(
        dir.path(),
        &["user", "create", "root", "--password-stdin", "--admin"],
        "pw\n",
    );
    admin_ok(dir.path(), &["user", "create", "bob", "--password-stdin"], "pw\n");
    let server = spawn(dir.path());
    let root = login(&server.client(), "root", "pw").await.unwrap();
    let bob = login(&server.client(), "bob", "pw").await.unwrap();
    let target = tempfile::tempdir().unwrap();
    let into = target.path().join("b");
    match bob.admin_backup(&backup_request(into.to_str().unwrap())).await.unwrap() {
        AdminBackupResponse::Forbidden(e) => assert_eq!(e.errcode, "M_FORBIDDEN"),
        other => panic!("a non-admin got {other:?}"),
    }
    assert!(!into.exists(), "a refused backup writes nothing");
    match server.client().admin_backup(&backup_request("/tmp/x")).await.unwrap() {
        AdminBackupResponse::Unauthorized(e) => assert_eq!(e.errcode, "M_MISSING_TOKEN"),
        other => panic!("no token got {other:?}"),
    }
    match root.admin_backup(&backup_request("relative/dir")).await.unwrap() {
        AdminBackupResponse::BadRequest(e) => assert!(e.error.unwrap().contains("not an absolute path")),
        other => panic!("{other:?}"),
    }
    std::fs::write(target.path().join("occupied"), "x").unwrap();
    match root
        .admin_backup(&backup_request(target.path().to_str().unwrap()))
        .await
        .unwrap()
    {
        AdminBackupResponse::BadRequest(e) => assert!(e.error.unwrap().contains("is not empty")),
        other => panic!("{other:?}"),
    }
    let AdminBackupResponse::Ok(ok) = root
        .admin_backup(&backup_request(into.to_str().unwrap()))
        .await
        .unwrap()
    else {
        panic!("the admin's backup")
    };
    assert_eq!(ok.file, into.join("matrix-membership.jsonl").display().to_string());
    assert!(std::fs::read_to_string(&ok.file).unwrap().contains("@bob:localhost"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_writes_restores_every_write_acknowledged_before_it_and_nothing_half_written() {
    let live = tempfile::tempdir().unwrap();
    admin_ok(
        live.path(),
        &["user", "create", "root", "--password-stdin", "--admin"],
        "pw\n",
    );
    let writers = ["w1", "w2", "w3", "w4"];
    for w in writers {
        admin_ok(live.path(), &["user", "create", w, "--password-stdin"], "pw\n");
    }
    let server = spawn(live.path());
    let root = login(&server.client(), "root", "pw").await.unwrap();
    let room = create_room(&root, "busy", "Busy", Preset::PublicChat).await;
    let acked = Arc::new(Mutex::new(Acked::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (i, w) in writers.into_iter().enumerate() {
        let client = login(&server.client(), w, "pw").await.unwrap();
        let (acked, stop, room) = (acked.clone(), stop.clone(), room.clone());
        let user = format!("@{w}:localhost");
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            // Members must join before they may send.
            assert!(matches!(
                client.post_rooms_room_id_join(&room, None).await.unwrap(),
                PostRoomsRoomIdJoinResponse::Ok(_)
            ));
            acked
                .lock()
                .unwrap()
                .memberships
                .entry(user.clone())
                .or_default()
                .push((Instant::now(), "join"));
            let mut joined = true;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                if i % 2 == 0 {
                    let body = json!({"msgtype": "m.text", "body": format!("{user} {n}")});
                    let SendMessageResponse::Ok(ok) = client
                        .send_message(&room, "m.room.message", &format!("t{n}"), body.as_object().unwrap())
                        .await
                        .unwrap()
                    else {
                        panic!("send")
                    };
                    acked.lock().unwrap().messages.push((Instant::now(), ok.event_id));
                } else {
                    let membership = if joined {
                        let body = models::LeaveRoomBody { reason: None };
                        assert!(matches!(
                            client.leave_room(&room, Some(&body)).await.unwrap(),
                            LeaveRoomResponse::Ok(_)
                        ));
                        "leave"
                    } else {
                        assert!(matches!(
                            client.post_rooms_room_id_join(&room, None).await.unwrap(),
                            PostRoomsRoomIdJoinResponse::Ok(_)
                        ));
                        "join"
                    };
                    joined = !joined;
                    acked
                        .lock()
                        .unwrap()
                        .memberships
                        .entry(user.clone())
                        .or_default()
                        .push((Instant::now(), membership));
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let backups = tempfile::tempdir().unwrap();
    let into = backups.path().join("snapshot");
    let (url, token) = (server.base_url.clone(), root.access_token().unwrap().to_string());
    let into_arg = into.clone();
    let sent = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        operator::admin(
            std::path::Path::new("/nonexistent"),
            &[
                "backup",
                into_arg.to_str().unwrap(),
                "--url",
                &url,
                "--admin-token",
                &token,
            ],
            "",
        )
    })
    .await
    .unwrap();
    let done = Instant::now();
    assert!(out.ok, "backup failed: {}{}", out.stdout, out.stderr);
    assert!(out.stdout.contains("backup written"), "{}", out.stdout);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    server.stop();

    let acked = Arc::try_unwrap(acked).ok().unwrap().into_inner().unwrap();
    let during = acked.messages.iter().filter(|(t, _)| *t > sent && *t < done).count();
    assert!(
        during > 0,
        "no write was acknowledged while the backup ran; the test proves nothing"
    );

    let restored = tempfile::tempdir().unwrap();
    let data = restored.path().join("data");
    let file = into.join("matrix-membership.jsonl");
    admin_ok(&data, &["import", file.to_str().unwrap()], "");
    let server = spawn(&data);
    let root = login(&server.client(), "root", "pw").await.unwrap();
    let events = history(&root, &room).await;

    let ids: std::collections::HashSet<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
    let before: Vec<&String> = acked
        .messages
        .iter()
        .filter(|(t, _)| *t < sent)
        .map(|(_, id)| id)
        .collect();
    assert!(!before.is_empty());
    let lost: Vec<&&String> = before.iter().filter(|id| !ids.contains(id.as_str())).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged messages are missing: {lost:?}",
        lost.len(),
        before.len()
    );

    let members_now = members(&root, &room).await;
    for (user, changes) in &acked.memberships {
        let in_history: Vec<&str> = events
            .iter()
            .filter(|e| e.r#type == "m.room.member" && e.state_key.as_deref() == Some(user.as_str()))
            .map(|e| e.content.get("membership").and_then(|m| m.as_str()).unwrap())
            .collect();
        let acked_before: Vec<&str> = changes.iter().filter(|(t, _)| *t < sent).map(|(_, m)| *m).collect();
        assert!(
            in_history.starts_with(&acked_before),
            "{user}: acknowledged {acked_before:?}, restored history {in_history:?}"
        );
        // Indexes agree with the log: /members says what the last member event says.
        let listed = members_now.iter().find(|(u, _)| u == user).map(|(_, m)| m.as_str());
        assert_eq!(
            listed,
            in_history.last().copied(),
            "{user}: /members disagrees with the history"
        );
    }
    // /sync shows the same history as /messages.
    let filter = r#"{"room":{"timeline":{"limit":100000}}}"#;
    let SyncResponse::Ok(sync) = root.sync(None, Some(0), Some(filter), None, None).await.unwrap() else {
        panic!("sync")
    };
    let timeline: Vec<String> = sync.rooms.join[&room]
        .timeline
        .events
        .iter()
        .map(|e| e.event_id.clone())
        .collect();
    let all: Vec<String> = events.iter().map(|e| e.event_id.clone()).collect();
    assert_eq!(timeline, all, "/sync and /messages disagree");
}
