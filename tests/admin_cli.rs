//! The admin command line on a stopped server's data folder: users, rooms,
//! and the refusal to touch a folder a running server holds.

mod common;
mod operator;

use matrix_membership::generated::api::*;
use matrix_membership::generated::models::{self, CreateRoomRequestPreset as Preset};
use operator::{admin, admin_ok, create_room, login, members, spawn, token_works};

const IN_USE: &str = "is in use by a running server; stop it first, or use `backup` against the running server";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_commands_refuse_a_data_folder_a_running_server_holds() {
    if common::sled_only("sled's lock on the data folder; instances share a PostgreSQL database by design") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(dir.path());
    for args in [
        &["user", "list"][..],
        &["user", "create", "carol", "--password-stdin"],
        &["room", "list"],
    ] {
        let out = admin(dir.path(), args, "pw\n");
        assert!(!out.ok, "{args:?} ran against a live folder: {}", out.stdout);
        assert!(
            out.stderr
                .contains(&format!("the data folder {} {IN_USE}", dir.path().display())),
            "{args:?}: {}",
            out.stderr
        );
    }
    server.stop();
    assert!(
        admin(dir.path(), &["user", "list"], "").ok,
        "the folder is free once the server stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_create_makes_accounts_with_registration_rules_that_can_log_in() {
    let dir = tempfile::tempdir().unwrap();
    let out = admin_ok(
        dir.path(),
        &["user", "create", "Alice", "--password-stdin", "--admin"],
        "s3cret\n",
    );
    assert!(out.contains("created @alice:localhost (admin)"), "{out}");
    let out = admin_ok(dir.path(), &["user", "create", "@bob:localhost"], "");
    let generated = out
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no generated password in {out:?}"))
        .to_string();
    assert!(generated.len() >= 20);
    for (name, why) in [
        ("_hidden", "may not begin with '_'"),
        ("1234", "numeric user IDs are reserved"),
        ("@carol:elsewhere", "does not support federation"),
        ("alice", "already exists"),
    ] {
        let out = admin(dir.path(), &["user", "create", name, "--password-stdin"], "pw\n");
        assert!(!out.ok && out.stderr.contains(why), "{name}: {}", out.stderr);
    }
    let list = admin_ok(dir.path(), &["user", "list"], "");
    assert_eq!(
        list.lines().collect::<Vec<_>>(),
        [
            "USER\tADMIN\tDEACTIVATED",
            "@alice:localhost\tyes\tno",
            "@bob:localhost\tno\tno"
        ]
    );
    let server = spawn(dir.path());
    login(&server.client(), "alice", "s3cret").await.expect("alice logs in");
    login(&server.client(), "bob", &generated)
        .await
        .expect("bob logs in with the printed password");
    assert_eq!(
        login(&server.client(), "bob", "wrong").await.err(),
        Some((403, "M_FORBIDDEN".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_password_replaces_the_password_and_ends_sessions_unless_told_to_keep_them() {
    let dir = tempfile::tempdir().unwrap();
    admin_ok(dir.path(), &["user", "create", "alice", "--password-stdin"], "old\n");
    let server = spawn(dir.path());
    let token = login(&server.client(), "alice", "old")
        .await
        .unwrap()
        .access_token()
        .unwrap()
        .to_string();
    server.stop();
    admin_ok(
        dir.path(),
        &["user", "reset-password", "alice", "--keep-sessions"],
        "middle\n",
    );
    let server = spawn(dir.path());
    assert!(
        token_works(&server.client().with_access_token(token.clone())).await,
        "--keep-sessions keeps the token"
    );
    assert!(login(&server.client(), "alice", "old").await.is_err());
    login(&server.client(), "alice", "middle").await.unwrap();
    server.stop();
    let out = admin_ok(dir.path(), &["user", "reset-password", "alice"], "new\n");
    assert!(out.contains("every session ended"), "{out}");
    let server = spawn(dir.path());
    assert!(
        !token_works(&server.client().with_access_token(token)).await,
        "a reset ends the sessions by default"
    );
    assert!(login(&server.client(), "alice", "middle").await.is_err());
    login(&server.client(), "alice", "new").await.unwrap();
    server.stop();
    let out = admin(dir.path(), &["user", "reset-password", "nobody"], "x\n");
    assert!(
        !out.ok && out.stderr.contains("There is no user @nobody:localhost"),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivate_leaves_every_room_through_the_gate_revokes_tokens_and_stops_logins() {
    let dir = tempfile::tempdir().unwrap();
    admin_ok(dir.path(), &["user", "create", "alice", "--password-stdin"], "pw\n");
    admin_ok(dir.path(), &["user", "create", "bob", "--password-stdin"], "pw\n");
    let server = spawn(dir.path());
    let alice = login(&server.client(), "alice", "pw").await.unwrap();
    let bob = login(&server.client(), "bob", "pw").await.unwrap();
    let joined = create_room(&alice, "lounge", "Lounge", Preset::PublicChat).await;
    let invited = create_room(&alice, "private", "Private", Preset::PrivateChat).await;
    let banned = create_room(&alice, "strict", "Strict", Preset::PublicChat).await;
    assert!(matches!(
        bob.post_rooms_room_id_join(&joined, None).await.unwrap(),
        PostRoomsRoomIdJoinResponse::Ok(_)
    ));
    assert!(matches!(
        bob.post_rooms_room_id_join(&banned, None).await.unwrap(),
        PostRoomsRoomIdJoinResponse::Ok(_)
    ));
    let target = models::MembershipChange {
        user_id: "@bob:localhost".into(),
        reason: None,
    };
    assert!(matches!(alice.ban(&banned, &target).await.unwrap(), BanResponse::Ok(_)));
    let invite = models::PostRoomsRoomIdInviteBody {
        user_id: Some("@bob:localhost".into()),
        reason: None,
        ..Default::default()
    };
    assert!(matches!(
        alice.post_rooms_room_id_invite(&invited, &invite).await.unwrap(),
        PostRoomsRoomIdInviteResponse::Ok(_)
    ));
    let bob_token = bob.access_token().unwrap().to_string();
    server.stop();

    let out = admin_ok(dir.path(), &["user", "deactivate", "bob"], "");
    assert!(out.contains("deactivated @bob:localhost"), "{out}");
    assert!(
        out.contains(&format!("left {joined}")) && out.contains(&format!("left {invited}")),
        "{out}"
    );
    assert!(!out.contains(&format!("left {banned}")), "a ban stays: {out}");
    let list = admin_ok(dir.path(), &["user", "list"], "");
    assert!(list.contains("@bob:localhost\tno\tyes"), "{list}");

    let server = spawn(dir.path());
    let bob = server.client().with_access_token(bob_token);
    assert!(!token_works(&bob).await, "every token is revoked");
    assert_eq!(
        login(&server.client(), "bob", "pw").await.err(),
        Some((403, "M_USER_DEACTIVATED".into()))
    );
    let alice = login(&server.client(), "alice", "pw").await.unwrap();
    let bob_in = |list: Vec<(String, String)>| list.into_iter().find(|(u, _)| u == "@bob:localhost").map(|(_, m)| m);
    assert_eq!(bob_in(members(&alice, &joined).await).as_deref(), Some("leave"));
    assert_eq!(bob_in(members(&alice, &invited).await).as_deref(), Some("leave"));
    assert_eq!(bob_in(members(&alice, &banned).await).as_deref(), Some("ban"));
    // The leave is a real event, sent by bob himself.
    let GetRoomEventsResponse::Ok(page) = alice
        .get_room_events(&joined, None, None, "b", Some(1), None)
        .await
        .unwrap()
    else {
        panic!("messages")
    };
    let last = &page.chunk[0];
    assert_eq!(
        (last.r#type.as_str(), last.sender.as_str()),
        ("m.room.member", "@bob:localhost")
    );
    assert_eq!(last.content.get("membership").and_then(|m| m.as_str()), Some("leave"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_list_and_show_tell_names_aliases_state_and_members() {
    let dir = tempfile::tempdir().unwrap();
    admin_ok(dir.path(), &["user", "create", "alice", "--password-stdin"], "pw\n");
    admin_ok(dir.path(), &["user", "create", "bob", "--password-stdin"], "pw\n");
    let server = spawn(dir.path());
    let alice = login(&server.client(), "alice", "pw").await.unwrap();
    let room = create_room(&alice, "garden", "The Garden", Preset::PrivateChat).await;
    let invite = models::PostRoomsRoomIdInviteBody {
        user_id: Some("@bob:localhost".into()),
        reason: None,
        ..Default::default()
    };
    assert!(matches!(
        alice.post_rooms_room_id_invite(&room, &invite).await.unwrap(),
        PostRoomsRoomIdInviteResponse::Ok(_)
    ));
    server.stop();

    let list = admin_ok(dir.path(), &["room", "list"], "");
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(
        lines[0],
        "ROOM\tNAME\tCANONICAL_ALIAS\tALIASES\tJOINED\tINVITED\tBANNED"
    );
    assert_eq!(
        lines[1],
        format!("{room}\tThe Garden\t#garden:localhost\t#garden:localhost\t1\t1\t0")
    );
    for target in [room.as_str(), "#garden:localhost"] {
        let show = admin_ok(dir.path(), &["room", "show", target], "");
        assert!(show.contains(&format!("room: {room}")), "{show}");
        assert!(show.contains("name: The Garden"), "{show}");
        assert!(
            show.contains(r#""type":"m.room.join_rules""#) && show.contains(r#""join_rule":"invite""#),
            "{show}"
        );
        assert!(
            show.contains("  @alice:localhost\tjoin") && show.contains("  @bob:localhost\tinvite"),
            "{show}"
        );
    }
    let out = admin(dir.path(), &["room", "show", "#nowhere:localhost"], "");
    assert!(!out.ok && out.stderr.contains("does not exist"), "{}", out.stderr);
}
