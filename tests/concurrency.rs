//! Many clients changing one room at once: the result equals each user's last acknowledged action.

mod common;

use matrix_membership::generated::api::*;
use matrix_membership::generated::models::CreateRoomRequestPreset as Preset;
use std::collections::BTreeSet;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_joins_and_leaves_end_in_each_users_last_acknowledged_action() {
    let s = common::start().await;
    let alice = s.register("alice").await;
    let room = alice.create_room(Preset::PublicChat).await;
    let mut users = Vec::new();
    for i in 0..16 {
        users.push(s.register(&format!("user{i}")).await);
    }
    let mut tasks = Vec::new();
    for (i, user) in users.into_iter().enumerate() {
        let room = room.clone();
        tasks.push(tokio::spawn(async move {
            // A per-user pattern so users interleave differently.
            let mut joined = false;
            for step in 0..12 {
                let want_join = (i * 7 + step * 3) % 5 < 3;
                if want_join {
                    match user.client.post_rooms_room_id_join(&room, None).await.unwrap() {
                        PostRoomsRoomIdJoinResponse::Ok(_) => joined = true,
                        other => panic!("{other:?}"),
                    }
                } else {
                    match user.client.leave_room(&room, None).await.unwrap() {
                        LeaveRoomResponse::Ok(_) => joined = false,
                        LeaveRoomResponse::Forbidden(_) => assert!(!joined, "leave refused while joined"),
                        other => panic!("{other:?}"),
                    }
                }
            }
            (user.id, joined)
        }));
    }
    let mut expected: BTreeSet<String> = BTreeSet::from([alice.id.clone()]);
    for t in tasks {
        let (id, joined) = t.await.unwrap();
        if joined {
            expected.insert(id);
        }
    }
    let actual: BTreeSet<String> = match alice.client.get_joined_members(&room).await.unwrap() {
        GetJoinedMembersResponse::Ok(ok) => ok.joined.into_keys().collect(),
        other => panic!("{other:?}"),
    };
    assert_eq!(actual, expected);
    assert!(
        expected.len() > 1 && expected.len() < 17,
        "the pattern leaves a mix: {expected:?}"
    );
}
