//! The `Store` contract, tested on sled: atomic, serialized, authorized,
//! durable on return and read committed.

use super::keys::{self, Tag};
use super::sled::{folder_config, SledOptions, SledStore, SEGMENT_BYTES};
use super::*;
use crate::membership::auth::{authorize, ProposedEvent};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ALICE: &str = "@alice:localhost";
const BOB: &str = "@bob:localhost";
const CAROL: &str = "@carol:localhost";
const ROOM: &str = "!room:localhost";

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

fn room(s: &str) -> RoomId {
    RoomId::parse(s).unwrap()
}

fn proposed(sender: &str, event_type: &str, state_key: Option<&str>, content: serde_json::Value) -> ProposedEvent {
    ProposedEvent {
        sender: user(sender),
        event_type: event_type.into(),
        state_key: state_key.map(str::to_string),
        content: content.as_object().cloned().unwrap(),
    }
}

fn member(sender: &str, target: &str, membership: &str) -> ProposedEvent {
    proposed(
        sender,
        "m.room.member",
        Some(target),
        json!({ "membership": membership }),
    )
}

fn message(sender: &str, body: &str) -> ProposedEvent {
    proposed(
        sender,
        "m.room.message",
        None,
        json!({ "msgtype": "m.text", "body": body }),
    )
}

/// A plan that authorizes `events` in order and refuses on the first denial.
fn plan(events: Vec<ProposedEvent>) -> Plan {
    Box::new(move |auth| {
        events
            .into_iter()
            .map(|e| authorize(auth, e).map_err(|d| Box::<dyn std::error::Error + Send + Sync>::from(d.message())))
            .collect()
    })
}

fn users_of(events: &[ProposedEvent]) -> Vec<UserId> {
    let mut users: Vec<UserId> = events
        .iter()
        .flat_map(|e| {
            let target = (e.event_type == "m.room.member")
                .then(|| e.state_key.as_deref().and_then(|k| UserId::parse(k).ok()))
                .flatten();
            std::iter::once(e.sender.clone()).chain(target)
        })
        .collect();
    users.sort();
    users.dedup();
    users
}

fn write(r: &RoomId, events: Vec<ProposedEvent>) -> RoomWrite {
    RoomWrite {
        room: r.clone(),
        create: None,
        users: users_of(&events),
        txn: None,
        plan: plan(events),
    }
}

fn creation(r: &RoomId, alias: Option<&str>, creator: &str, extra: Vec<ProposedEvent>) -> RoomWrite {
    let mut events = vec![
        proposed(
            creator,
            "m.room.create",
            Some(""),
            json!({"creator": creator, "room_version": "10"}),
        ),
        member(creator, creator, "join"),
        proposed(creator, "m.room.join_rules", Some(""), json!({"join_rule": "public"})),
    ];
    events.extend(extra);
    RoomWrite {
        create: Some(Creation {
            alias: alias.map(|a| RoomAliasId::parse(a).unwrap()),
        }),
        ..write(r, events)
    }
}

fn events_of(written: RoomWritten) -> Vec<Event> {
    match written {
        RoomWritten::Written(events) => events,
        other => panic!("expected events, got {other:?}"),
    }
}

fn open() -> (tempfile::TempDir, SledStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    (dir, store)
}

async fn with_room(store: &SledStore) -> RoomId {
    let r = room(ROOM);
    store.write_room(creation(&r, None, ALICE, vec![])).await.unwrap();
    r
}

#[tokio::test]
async fn a_membership_change_updates_both_indexes_and_current_state_together() {
    let (_dir, store) = open();
    let r = with_room(&store).await;
    let (bob, alice) = (user(BOB), user(ALICE));
    assert_eq!(store.membership(&r, &bob).await.unwrap(), None);

    let invite = events_of(
        store
            .write_room(write(&r, vec![member(ALICE, BOB, "invite")]))
            .await
            .unwrap(),
    );
    let invite_pos = invite[0].stream_pos;
    assert_eq!(
        store.membership(&r, &bob).await.unwrap(),
        Some((Membership::Invite, invite_pos))
    );
    assert_eq!(
        store.rooms_of(&bob).await.unwrap(),
        vec![(r.clone(), (Membership::Invite, invite_pos))]
    );

    let join = events_of(
        store
            .write_room(write(&r, vec![member(BOB, BOB, "join")]))
            .await
            .unwrap(),
    )
    .remove(0);
    assert_eq!(
        store.membership(&r, &bob).await.unwrap(),
        Some((Membership::Join, join.stream_pos))
    );
    assert_eq!(
        store.state_event(&r, "m.room.member", BOB).await.unwrap().as_ref(),
        Some(&join)
    );
    let mut members = store.members(&r).await.unwrap();
    members.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(members, vec![(alice, Membership::Join), (bob, Membership::Join)]);
    let state = store.current_state(&r).await.unwrap();
    assert_eq!(state.len(), 4, "create, join rules, two members: {state:?}");
    assert!(state.contains(&join));
    let before = store.state_at(&r, invite_pos).await.unwrap();
    let bob_then = before.iter().find(|e| e.state_key.as_deref() == Some(BOB)).unwrap();
    assert_eq!(bob_then.content["membership"], "invite");
}

#[tokio::test]
async fn a_prefix_scan_never_mixes_a_room_with_one_whose_id_extends_it() {
    let (_dir, store) = open();
    let short = room("!a:localhost");
    let long = room("!a:localhost.org");
    store.write_room(creation(&short, None, ALICE, vec![])).await.unwrap();
    store
        .write_room(creation(&long, None, "@bob:localhost.org", vec![]))
        .await
        .unwrap();
    assert_eq!(
        store.members(&short).await.unwrap(),
        vec![(user(ALICE), Membership::Join)]
    );
    assert_eq!(store.current_state(&short).await.unwrap().len(), 3);
    assert_eq!(
        store.room_events(&short, 0, u64::MAX, 10, false).await.unwrap().len(),
        3
    );
}

#[tokio::test]
async fn a_refused_plan_writes_nothing_not_even_the_room_or_its_alias() {
    let (_dir, store) = open();
    let r = with_room(&store).await;
    let pos = store.durable_pos();
    // A message, then a force-join the gate refuses: the message is not written either.
    let err = store
        .write_room(write(&r, vec![message(ALICE, "first"), member(ALICE, BOB, "join")]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Refused(ref why) if why.to_string().contains("force")),
        "{err}"
    );
    assert_eq!(store.durable_pos(), pos);
    assert_eq!(store.membership(&r, &user(BOB)).await.unwrap(), None);

    let new_room = room("!new:localhost");
    let err = store
        .write_room(creation(
            &new_room,
            Some("#hall:localhost"),
            ALICE,
            vec![member(ALICE, ALICE, "invite")],
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Refused(_)), "{err}");
    assert!(!store.room_exists(&new_room).await.unwrap());
    let hall = RoomAliasId::parse("#hall:localhost").unwrap();
    assert_eq!(store.resolve_alias(&hall).await.unwrap(), None);
    assert_eq!(store.rooms_of(&user(ALICE)).await.unwrap().len(), 1);
    assert_eq!(store.durable_pos(), pos);

    let missing = room("!missing:localhost");
    let err = store
        .write_room(write(&missing, vec![message(ALICE, "x")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownRoom(_)), "{err}");
    let again = store.write_room(creation(&r, None, BOB, vec![])).await.unwrap_err();
    assert!(matches!(again, StoreError::RoomExists(_)), "{again}");
    assert_eq!(
        store
            .state_event(&r, "m.room.create", "")
            .await
            .unwrap()
            .unwrap()
            .sender,
        ALICE
    );
}

#[tokio::test]
async fn of_two_rooms_created_with_one_alias_the_loser_leaves_nothing_behind() {
    let (_dir, store) = open();
    let store = Arc::new(store);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let r = room(&format!("!r{i}:localhost"));
                let result = store
                    .write_room(creation(&r, Some("#race:localhost"), ALICE, vec![]))
                    .await;
                (r, result)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        let (r, result) = t.await.unwrap();
        match result {
            Ok(_) => winners.push(r),
            Err(StoreError::AliasTaken(_)) => assert!(!store.room_exists(&r).await.unwrap()),
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(winners.len(), 1);
    let alias = RoomAliasId::parse("#race:localhost").unwrap();
    assert_eq!(store.resolve_alias(&alias).await.unwrap().as_ref(), Some(&winners[0]));
    assert_eq!(store.rooms_of(&user(ALICE)).await.unwrap().len(), 1);
}

#[tokio::test]
async fn reopening_the_database_finds_every_change_and_positions_continue() {
    let dir = tempfile::tempdir().unwrap();
    let r = room(ROOM);
    let token = [7u8; 32];
    let last_pos;
    {
        let store = SledStore::open(dir.path()).unwrap();
        with_room(&store).await;
        assert!(store.create_user(&user(ALICE), "hash").await.unwrap());
        store.add_token(&token, &user(ALICE), "DEVICE").await.unwrap();
        store
            .write_room(write(&r, vec![member(ALICE, BOB, "invite"), message(ALICE, "hi")]))
            .await
            .unwrap();
        let alias = RoomAliasId::parse("#a:localhost").unwrap();
        assert!(store.set_alias(&alias, &r).await.unwrap());
        last_pos = store.durable_pos();
        assert_eq!(last_pos, 5);
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.durable_pos(), last_pos);
    assert_eq!(
        store.password_hash(&user(ALICE)).await.unwrap().as_deref(),
        Some("hash")
    );
    assert_eq!(
        store.token_user(&token).await.unwrap(),
        Some((user(ALICE), "DEVICE".into()))
    );
    assert_eq!(
        store.membership(&r, &user(BOB)).await.unwrap().map(|(m, _)| m),
        Some(Membership::Invite)
    );
    let alias = RoomAliasId::parse("#a:localhost").unwrap();
    assert_eq!(store.resolve_alias(&alias).await.unwrap(), Some(r.clone()));
    let events = store.room_events(&r, 0, last_pos, 100, false).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.stream_pos).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let next = events_of(
        store
            .write_room(write(&r, vec![message(ALICE, "again")]))
            .await
            .unwrap(),
    );
    assert_eq!(next[0].stream_pos, last_pos + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_get_unique_gap_free_positions_all_readable() {
    let (_dir, store) = open();
    let store = Arc::new(store);
    let r = with_room(&store).await;
    let base = store.durable_pos();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (store, r) = (store.clone(), r.clone());
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for i in 0..40 {
                    let events = events_of(
                        store
                            .write_room(write(&r, vec![message(ALICE, &format!("{t}/{i}"))]))
                            .await
                            .unwrap(),
                    );
                    // Acknowledged means durable, and durable means readable.
                    assert!(store.durable_pos() >= events[0].stream_pos);
                    seen.push(events[0].stream_pos);
                }
                seen
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        let seen = t.await.unwrap();
        assert!(seen.windows(2).all(|w| w[0] < w[1]), "per-task order: {seen:?}");
        all.extend(seen);
    }
    all.sort_unstable();
    let expected: Vec<u64> = (base + 1..=base + 320).collect();
    assert_eq!(all, expected, "positions are unique and gap-free");
    let events = store.room_events(&r, base, base + 320, 1000, false).await.unwrap();
    assert_eq!(events.iter().map(|e| e.stream_pos).collect::<Vec<_>>(), expected);
    let newest = store.room_events(&r, base, base + 320, 10, true).await.unwrap();
    assert_eq!(newest.first().unwrap().stream_pos, base + 311);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_finds_every_event_while_the_writer_packs_them() {
    let (dir, store) = open();
    let store = Arc::new(store);
    let r = with_room(&store).await;
    let base = store.durable_pos();
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (store, r) = (store.clone(), r.clone());
            tokio::spawn(async move {
                for i in 0..150 {
                    let body = format!("{t}/{i}");
                    store.write_room(write(&r, vec![message(ALICE, &body)])).await.unwrap();
                }
            })
        })
        .collect();
    let mut reads = 0;
    while writers.iter().any(|w| !w.is_finished()) {
        let durable = store.durable_pos();
        let events = store.room_events(&r, base, durable, usize::MAX, false).await.unwrap();
        let seen: Vec<u64> = events.iter().map(|e| e.stream_pos).collect();
        assert_eq!(seen, (base + 1..=durable).collect::<Vec<_>>(), "read {reads}");
        let newest = store.room_events(&r, base, durable, 4, true).await.unwrap();
        assert_eq!(newest.last().map(|e| e.stream_pos), (durable > base).then_some(durable));
        if durable > base {
            let middle = base + 1 + (durable - base) / 2;
            assert!(store.event_at(&r, middle).await.unwrap().is_some(), "event {middle}");
        }
        reads += 1;
    }
    for w in writers {
        w.await.unwrap();
    }
    drop(store);
    let (_db, kv) = raw_kv(dir.path());
    let room_prefix = |tag| keys::prefix(tag, &[r.as_str().as_bytes()]);
    let chunks = kv.scan_prefix(room_prefix(Tag::RoomPosChunk)).count();
    let singles = kv.scan_prefix(room_prefix(Tag::RoomPosEvent)).count();
    assert!(
        chunks > 0 && singles < 2 * super::event_log::CHUNK,
        "{chunks} chunks, {singles} singles"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_batched_with_others_fails_alone() {
    let (_dir, store) = open();
    let store = Arc::new(store);
    let r = with_room(&store).await;
    let base = store.durable_pos();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (store, r) = (store.clone(), r.clone());
            tokio::spawn(async move {
                let mut ok = 0;
                for i in 0..30 {
                    if (t + i) % 3 == 0 {
                        // Bob is not in the room: refused.
                        let err = store.write_room(write(&r, vec![message(BOB, "x")])).await.unwrap_err();
                        assert!(matches!(err, StoreError::Refused(_)), "{err}");
                    } else {
                        store
                            .write_room(write(&r, vec![message(ALICE, &format!("{t}/{i}"))]))
                            .await
                            .unwrap();
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap();
    }
    assert_eq!(
        store.durable_pos(),
        base + ok,
        "every good write landed, no bad one used a position"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_writes_share_flushes() {
    let (_dir, store) = open();
    let store = Arc::new(store);
    let r = with_room(&store).await;
    let before = store.flush_count();
    let start = Instant::now();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (store, r) = (store.clone(), r.clone());
            tokio::spawn(async move {
                store
                    .write_room(write(&r, vec![message(ALICE, &format!("{i}"))]))
                    .await
                    .unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let flushes = store.flush_count() - before;
    eprintln!("200 durable writes: {flushes} flushes in {:?}", start.elapsed());
    assert!(flushes < 100, "flushes are shared: {flushes}");
}

#[tokio::test]
async fn aliases_set_resolve_and_delete_and_a_taken_alias_is_refused() {
    let (_dir, store) = open();
    let r = with_room(&store).await;
    let other = room("!other:localhost");
    store.write_room(creation(&other, None, BOB, vec![])).await.unwrap();
    let alias = RoomAliasId::parse("#hall:localhost").unwrap();
    assert_eq!(store.resolve_alias(&alias).await.unwrap(), None);
    assert!(store.set_alias(&alias, &r).await.unwrap());
    assert_eq!(store.resolve_alias(&alias).await.unwrap(), Some(r.clone()));
    assert!(!store.set_alias(&alias, &other).await.unwrap(), "taken");
    assert!(store.delete_alias(&alias).await.unwrap());
    assert_eq!(store.resolve_alias(&alias).await.unwrap(), None);
    assert!(!store.delete_alias(&alias).await.unwrap(), "already gone");
    assert!(store.set_alias(&alias, &other).await.unwrap(), "free again");
    let err = store
        .set_alias(
            &RoomAliasId::parse("#x:localhost").unwrap(),
            &room("!nowhere:localhost"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::UnknownRoom(_)));
}

#[tokio::test]
async fn a_repeated_transaction_id_returns_the_first_event_and_appends_nothing() {
    let (_dir, store) = open();
    let r = with_room(&store).await;
    let alice = user(ALICE);
    let with_txn = |sender: &str, body: &str| RoomWrite {
        txn: Some((user(sender), "t1".into())),
        ..write(&r, vec![message(sender, body)])
    };
    let first = events_of(store.write_room(with_txn(ALICE, "once")).await.unwrap()).remove(0);
    let pos = store.durable_pos();
    assert_eq!(
        store.txn_event(&alice, &r, "t1").await.unwrap(),
        Some(first.event_id.clone())
    );
    assert_eq!(
        store.write_room(with_txn(ALICE, "once")).await.unwrap(),
        RoomWritten::Repeated(first.event_id.clone())
    );
    assert_eq!(store.durable_pos(), pos, "nothing appended");
    store
        .write_room(write(&r, vec![member(ALICE, BOB, "invite")]))
        .await
        .unwrap();
    store
        .write_room(write(&r, vec![member(BOB, BOB, "join")]))
        .await
        .unwrap();
    let bobs = events_of(store.write_room(with_txn(BOB, "mine")).await.unwrap()).remove(0);
    assert_ne!(
        bobs.event_id, first.event_id,
        "the same id from another sender is another transaction"
    );
}

#[tokio::test]
async fn filters_and_display_names_are_kept_per_user_and_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob) = (user(ALICE), user(BOB));
    let filter = json!({"room": {"timeline": {"limit": 3}}});
    let (first, second);
    {
        let store = SledStore::open(dir.path()).unwrap();
        first = store.put_filter(&alice, &filter).await.unwrap();
        second = store.put_filter(&alice, &json!({})).await.unwrap();
        assert_ne!(first, second, "each filter gets its own id");
        assert_eq!(store.filter(&bob, &first).await.unwrap(), None, "filters are per user");
        store.set_displayname(&alice, Some("Alice A.")).await.unwrap();
        store.set_displayname(&bob, Some("Bob")).await.unwrap();
        store.set_displayname(&bob, None).await.unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.filter(&alice, &first).await.unwrap(), Some(filter));
    assert_eq!(store.filter(&alice, &second).await.unwrap(), Some(json!({})));
    assert_eq!(store.displayname(&alice).await.unwrap().as_deref(), Some("Alice A."));
    assert_eq!(store.displayname(&bob).await.unwrap(), None);
}

#[tokio::test]
async fn a_device_keeps_one_token_and_logout_forgets_it() {
    let (_dir, sled_store) = open();
    // Object safety: the service holds the store as a trait object.
    let store: &dyn Store = &sled_store;
    let alice = user(ALICE);
    assert!(store.create_user(&alice, "h1").await.unwrap());
    assert!(!store.create_user(&alice, "h2").await.unwrap(), "taken");
    let (t1, t2, t3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    store.add_token(&t1, &alice, "DEV").await.unwrap();
    store.add_token(&t3, &alice, "OTHER").await.unwrap();
    store.add_token(&t2, &alice, "DEV").await.unwrap();
    assert_eq!(
        store.token_user(&t1).await.unwrap(),
        None,
        "replaced by the device's new token"
    );
    assert_eq!(
        store.token_user(&t2).await.unwrap(),
        Some((alice.clone(), "DEV".into()))
    );
    assert_eq!(
        store.token_user(&t3).await.unwrap(),
        Some((alice.clone(), "OTHER".into()))
    );
    store.remove_token(&t2).await.unwrap();
    assert_eq!(store.token_user(&t2).await.unwrap(), None);
    // The device has no token now, so a later login on it replaces nothing.
    store.add_token(&t1, &alice, "DEV").await.unwrap();
    assert!(store.token_user(&t3).await.unwrap().is_some());
}

/// A store whose flushes wait `ms` first, so a write stays applied but not
/// durable for that long.
fn slow_store(ms: u64) -> (tempfile::TempDir, Arc<SledStore>) {
    let dir = tempfile::tempdir().unwrap();
    let options = SledOptions {
        flush_delay: Duration::from_millis(ms),
        ..SledOptions::default()
    };
    let store = Arc::new(SledStore::open_with(dir.path(), options).unwrap());
    (dir, store)
}

/// Waits until the writer has applied something readers are kept from seeing.
async fn until_hidden(store: &SledStore) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.hidden_keys() == 0 {
        assert!(Instant::now() < deadline, "the write was never applied");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_shows_a_write_before_it_is_durable() {
    let (_dir, store) = slow_store(400);
    let r = with_room(&store).await;
    let alias = RoomAliasId::parse("#a:localhost").unwrap();
    assert!(store.set_alias(&alias, &r).await.unwrap());
    let pos = store.durable_pos();
    let pending = {
        let store = store.clone();
        let r = r.clone();
        tokio::spawn(async move {
            let other = room("!other:localhost");
            let join_bob = write(&r, vec![member(ALICE, BOB, "invite"), message(ALICE, "secret")]);
            store.write_room(join_bob).await.unwrap();
            store.write_room(creation(&other, None, CAROL, vec![])).await.unwrap();
            store
                .delete_alias(&RoomAliasId::parse("#a:localhost").unwrap())
                .await
                .unwrap();
        })
    };
    until_hidden(&store).await;
    // Applied in sled, not yet durable: every read still shows the old world.
    for _ in 0..5 {
        assert_eq!(store.durable_pos(), pos);
        assert_eq!(store.membership(&r, &user(BOB)).await.unwrap(), None);
        assert!(store.state_event(&r, "m.room.member", BOB).await.unwrap().is_none());
        assert_eq!(store.current_state(&r).await.unwrap().len(), 3);
        assert_eq!(store.members(&r).await.unwrap().len(), 1);
        assert!(store.rooms_of(&user(BOB)).await.unwrap().is_empty());
        assert_eq!(store.room_events(&r, 0, u64::MAX, 100, false).await.unwrap().len(), 3);
        assert!(!store.room_exists(&room("!other:localhost")).await.unwrap());
        assert_eq!(store.resolve_alias(&alias).await.unwrap(), Some(r.clone()));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pending.await.unwrap();
    assert_eq!(store.durable_pos(), pos + 5, "two events, then a room of three");
    assert_eq!(
        store.membership(&r, &user(BOB)).await.unwrap().map(|(m, _)| m),
        Some(Membership::Invite)
    );
    assert_eq!(store.room_events(&r, 0, u64::MAX, 100, false).await.unwrap().len(), 5);
    assert!(store.room_exists(&room("!other:localhost")).await.unwrap());
    assert_eq!(store.resolve_alias(&alias).await.unwrap(), None);
    assert_eq!(store.hidden_keys(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_that_finds_its_change_made_answers_only_once_that_change_is_durable() {
    let (_dir, store) = slow_store(300);
    let r = with_room(&store).await;
    let first = {
        let (store, r) = (store.clone(), r.clone());
        tokio::spawn(async move {
            let w = RoomWrite {
                txn: Some((user(ALICE), "t".into())),
                ..write(&r, vec![message(ALICE, "once")])
            };
            events_of(store.write_room(w).await.unwrap()).remove(0)
        })
    };
    until_hidden(&store).await;
    // The retry, a no-op plan and a refusal all saw the pending write.
    let retry = RoomWrite {
        txn: Some((user(ALICE), "t".into())),
        ..write(&r, vec![message(ALICE, "once")])
    };
    let repeated = store.write_room(retry).await.unwrap();
    let durable_at_answer = store.durable_pos();
    let first = first.await.unwrap();
    assert!(
        durable_at_answer >= first.stream_pos,
        "the retry was answered before the write it found was durable"
    );
    assert_eq!(repeated, RoomWritten::Repeated(first.event_id));

    let second = {
        let (store, r) = (store.clone(), r.clone());
        tokio::spawn(async move { events_of(store.write_room(write(&r, vec![message(ALICE, "two")])).await.unwrap()) })
    };
    until_hidden(&store).await;
    let nothing = RoomWrite {
        plan: Box::new(|_| Ok(Vec::new())),
        ..write(&r, vec![])
    };
    assert_eq!(store.write_room(nothing).await.unwrap(), RoomWritten::Unchanged);
    let durable_at_answer = store.durable_pos();
    let pos = second.await.unwrap()[0].stream_pos;
    assert!(
        durable_at_answer >= pos,
        "a no-op was answered before what it saw was durable"
    );
}

#[tokio::test]
async fn a_layout_2_folder_is_read_as_it_is_and_marked_layout_3() {
    let dir = tempfile::tempdir().unwrap();
    let r = room(ROOM);
    {
        // Layout 2 wrote every event and every history entry as a single key.
        let (db, kv) = raw_kv(dir.path());
        let event = Event {
            event_id: "$create".into(),
            room_id: ROOM.into(),
            sender: ALICE.into(),
            event_type: "m.room.create".into(),
            state_key: Some(String::new()),
            content: json!({"room_version": "11"}),
            origin_server_ts: 1,
            stream_pos: 1,
        };
        let member = Event {
            event_id: "$join".into(),
            event_type: "m.room.member".into(),
            state_key: Some(ALICE.into()),
            content: json!({"membership": "join"}),
            stream_pos: 2,
            ..event.clone()
        };
        let topic = Event {
            event_id: "$t".into(),
            event_type: "m.t".into(),
            state_key: Some(String::new()),
            content: json!({"v": 0}),
            stream_pos: 3,
            ..event.clone()
        };
        for e in [&event, &member, &topic] {
            for entry in indexes::entries(e).unwrap() {
                kv.insert(entry.key, entry.value).unwrap();
            }
        }
        kv.insert(
            keys::key(Tag::RoomMeta, &[ROOM.as_bytes()]),
            &br#"{"creator":"@alice:localhost"}"#[..],
        )
        .unwrap();
        kv.insert(keys::stream_end(), &3u64.to_be_bytes()[..]).unwrap();
        kv.insert(keys::key(Tag::LayoutVersion, &[]), keys::READABLE_LAYOUT)
            .unwrap();
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.room_events(&r, 0, 3, 10, false).await.unwrap().len(), 3);
    assert_eq!(
        store.state_changes(&r, "m.room.member", ALICE, 3).await.unwrap(),
        vec![(2, Some(Membership::Join))]
    );
    // New changes of the key go into lists after its layout-2 single.
    let mut positions = vec![3];
    for v in 1..=5 {
        let state = proposed(ALICE, "m.t", Some(""), json!({ "v": v }));
        positions.push(events_of(store.write_room(write(&r, vec![state])).await.unwrap())[0].stream_pos);
    }
    let changes = store.state_changes(&r, "m.t", "", u64::MAX).await.unwrap();
    assert_eq!(changes, positions.iter().map(|p| (*p, None)).collect::<Vec<_>>());
    for (v, pos) in positions.iter().enumerate() {
        let at = store.state_event_at(&r, "m.t", "", *pos).await.unwrap().unwrap();
        assert_eq!(at.content, json!({ "v": v }), "at {pos}");
    }
    drop(store);
    let (_db, kv) = raw_kv(dir.path());
    assert_eq!(
        kv.get(keys::key(Tag::LayoutVersion, &[])).unwrap().as_deref(),
        Some(keys::LAYOUT_VERSION)
    );
}

#[tokio::test]
async fn a_layout_1_folder_is_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = ::sled::open(dir.path()).unwrap();
        let put = |tree: &str, k: &[u8], v: &[u8]| {
            db.open_tree(tree).unwrap().insert(k, v).unwrap();
        };
        let j = |parts: &[&[u8]]| keys::joined(parts);
        let membership = codec::encode_membership(Membership::Join, 2);
        put("userid_password", ALICE.as_bytes(), b"hash");
        put("tokenhash_userid", &[9u8; 32], &j(&[ALICE.as_bytes(), b"DEV"]));
        put("roomid_meta", ROOM.as_bytes(), br#"{"creator":"@alice:localhost"}"#);
        put(
            "roomuserid_membership",
            &j(&[ROOM.as_bytes(), ALICE.as_bytes()]),
            &membership,
        );
        put(
            "userroomid_membership",
            &j(&[ALICE.as_bytes(), ROOM.as_bytes()]),
            &membership,
        );
        put(
            "roomid_state",
            &j(&[ROOM.as_bytes(), b"m.room.create", b""]),
            &1u64.to_be_bytes(),
        );
        put(
            "roomid_state",
            &j(&[ROOM.as_bytes(), b"m.room.member", ALICE.as_bytes()]),
            &2u64.to_be_bytes(),
        );
        let legacy = |pos: u64, t: &str, key: &str, content: serde_json::Value| {
            json!({"event_id": format!("$e{pos}"), "room_id": ROOM, "sender": ALICE, "type": t,
                   "state_key": key, "content": content, "origin_server_ts": 1, "stream_pos": pos})
            .to_string()
        };
        let create = legacy(1, "m.room.create", "", json!({"creator": ALICE, "room_version": "10"}));
        let join = legacy(2, "m.room.member", ALICE, json!({"membership": "join"}));
        for (pos, event) in [(1u64, create), (2, join)] {
            put(
                "roompos_event",
                &j(&[ROOM.as_bytes(), &pos.to_be_bytes()]),
                event.as_bytes(),
            );
            put("pos_roomid", &pos.to_be_bytes(), ROOM.as_bytes());
        }
        put("alias_roomid", b"#a:localhost", ROOM.as_bytes());
        put("roomid_alias", &j(&[ROOM.as_bytes(), b"#a:localhost"]), b"");
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    let r = room(ROOM);
    assert_eq!(store.durable_pos(), 2);
    assert_eq!(
        store.password_hash(&user(ALICE)).await.unwrap().as_deref(),
        Some("hash")
    );
    assert_eq!(
        store.token_user(&[9u8; 32]).await.unwrap(),
        Some((user(ALICE), "DEV".into()))
    );
    assert_eq!(
        store.membership(&r, &user(ALICE)).await.unwrap(),
        Some((Membership::Join, 2))
    );
    assert_eq!(store.current_state(&r).await.unwrap().len(), 2);
    assert_eq!(
        store
            .resolve_alias(&RoomAliasId::parse("#a:localhost").unwrap())
            .await
            .unwrap(),
        Some(r.clone())
    );
    // The migrated room takes writes, judged against its migrated state.
    store
        .write_room(write(&r, vec![member(ALICE, BOB, "invite")]))
        .await
        .unwrap();
    // A second login on the migrated device replaces its token.
    store.add_token(&[8u8; 32], &user(ALICE), "DEV").await.unwrap();
    assert_eq!(store.token_user(&[9u8; 32]).await.unwrap(), None);
    drop(store);
    let db = ::sled::open(dir.path()).unwrap();
    assert!(!db.tree_names().iter().any(|n| n.as_ref() == b"roompos_event"));
    let kv = db.open_tree("kv").unwrap();
    assert_eq!(
        kv.get(keys::key(Tag::LayoutVersion, &[])).unwrap().as_deref(),
        Some(keys::LAYOUT_VERSION)
    );
}

/// One step of a random room history.
#[derive(Debug, Clone)]
enum Step {
    /// alice sets `m.t{type}` with state key `k{key}` (or "" for key 0).
    State(u8, u8, u8),
    JoinRule(bool),
    Invite(u8),
    Join(u8),
    Leave(u8),
    Kick(u8),
    Ban(u8),
    Unban(u8),
    Message,
}

const OTHERS: [&str; 3] = [BOB, CAROL, "@dave:localhost"];

fn step_strategy() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    let who = 0u8..3;
    prop_oneof![
        (0u8..3, 0u8..3, any::<u8>()).prop_map(|(t, k, v)| Step::State(t, k, v)),
        any::<bool>().prop_map(Step::JoinRule),
        who.clone().prop_map(Step::Invite),
        who.clone().prop_map(Step::Join),
        who.clone().prop_map(Step::Leave),
        who.clone().prop_map(Step::Kick),
        who.clone().prop_map(Step::Ban),
        who.prop_map(Step::Unban),
        Just(Step::Message),
    ]
}

fn event_for(step: &Step) -> ProposedEvent {
    let other = |i: &u8| OTHERS[*i as usize];
    match step {
        Step::State(t, k, v) => {
            let key = if *k == 0 { String::new() } else { format!("k{k}") };
            proposed(ALICE, &format!("m.t{t}"), Some(&key), json!({ "v": v }))
        }
        Step::JoinRule(public) => proposed(
            ALICE,
            "m.room.join_rules",
            Some(""),
            json!({"join_rule": if *public { "public" } else { "invite" }}),
        ),
        Step::Invite(i) => member(ALICE, other(i), "invite"),
        Step::Join(i) => member(other(i), other(i), "join"),
        Step::Leave(i) => member(other(i), other(i), "leave"),
        Step::Kick(i) | Step::Unban(i) => member(ALICE, other(i), "leave"),
        Step::Ban(i) => member(ALICE, other(i), "ban"),
        Step::Message => message(ALICE, "m"),
    }
}

/// State after `pos`, by replaying the events as they were written: the
/// reference the index must agree with.
fn replayed_state(written: &[Event], pos: u64) -> std::collections::BTreeMap<(String, String), Event> {
    let mut state = std::collections::BTreeMap::new();
    for e in written.iter().take_while(|e| e.stream_pos <= pos) {
        if let Some(key) = &e.state_key {
            state.insert((e.event_type.clone(), key.clone()), e.clone());
        }
    }
    state
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 12, ..Default::default() })]

    #[test]
    fn state_from_the_index_agrees_with_a_replay_at_every_position(
        steps in proptest::collection::vec(step_strategy(), 1..60),
        pages in proptest::collection::vec((0u64..80, 0u64..80, 1usize..8, proptest::prelude::any::<bool>()), 4)
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (_dir, store) = open();
            let r = room(ROOM);
            let create = creation(&r, None, ALICE, vec![]);
            store.write_room(RoomWrite { users: [ALICE, BOB, CAROL, "@dave:localhost"].map(user).to_vec(), ..create }).await.unwrap();
            let mut written = store.room_events(&r, 0, u64::MAX, usize::MAX, false).await.unwrap();
            for step in &steps {
                // Steps the rules refuse write nothing, which the comparison covers too.
                if let Ok(RoomWritten::Written(events)) = store.write_room(write(&r, vec![event_for(step)])).await {
                    written.extend(events);
                }
            }
            let end = store.durable_pos();
            // The log reads back as written, single keys and chunks alike, whole and by pages.
            assert_eq!(store.room_events(&r, 0, end, usize::MAX, false).await.unwrap(), written);
            for (a, b, limit, newest) in pages {
                let (from, to) = (a.min(b), a.max(b));
                let mut expected: Vec<Event> =
                    written.iter().filter(|e| e.stream_pos > from && e.stream_pos <= to).cloned().collect();
                if newest {
                    expected.drain(..expected.len().saturating_sub(limit));
                } else {
                    expected.truncate(limit);
                }
                let page = store.room_events(&r, from, to, limit, newest).await.unwrap();
                assert_eq!(page, expected, "({from}, {to}] limit {limit} newest {newest}");
            }
            for e in &written {
                let at = store.event_at(&r, e.stream_pos).await.unwrap();
                assert_eq!(at.as_ref(), Some(e), "the event at {}", e.stream_pos);
            }
            for pos in 0..=end {
                let replay = replayed_state(&written, pos);
                let indexed: std::collections::BTreeMap<_, _> = store
                    .state_at(&r, pos)
                    .await
                    .unwrap()
                    .into_iter()
                    .map(|e| ((e.event_type.clone(), e.state_key.clone().unwrap()), e))
                    .collect();
                assert_eq!(indexed, replay, "state at {pos} after {steps:?}");
                for ((t, k), e) in &replay {
                    let at = store.state_event_at(&r, t, k, pos).await.unwrap();
                    assert_eq!(at.as_ref(), Some(e), "{t}/{k} at {pos}");
                }
            }
            for u in OTHERS {
                let changes = store.state_changes(&r, "m.room.member", u, end).await.unwrap();
                let mut replayed = Vec::new();
                for e in &written {
                    if e.event_type == "m.room.member" && e.state_key.as_deref() == Some(u) {
                        let m: Membership = serde_json::from_value(e.content["membership"].clone()).unwrap();
                        replayed.push((e.stream_pos, Some(m)));
                    }
                }
                assert_eq!(changes, replayed, "membership changes of {u}");
            }
        });
    }
}

/// The folder as sled itself opens it, with the segment size it was made
/// with (sled refuses to open it with another).
fn raw_kv(dir: &std::path::Path) -> (::sled::Db, ::sled::Tree) {
    let db = folder_config(dir).open().unwrap();
    let kv = db.open_tree("kv").unwrap();
    (db, kv)
}

fn batch_log_records(kv: &::sled::Tree) -> usize {
    kv.scan_prefix(batch_log::prefix()).count()
}

#[tokio::test]
async fn a_batch_a_crash_cut_short_is_completed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let name = |u: &str| keys::key(Tag::UserDisplayname, &[u.as_bytes()]);
    {
        // What the disk holds after a crash in the middle of a batch: its
        // record, the first of its inserts, and none of the rest.
        let (db, kv) = raw_kv(dir.path());
        kv.insert(name(BOB), "Bob").unwrap();
        let (a, b, c) = (name(ALICE), name(BOB), name(CAROL));
        let changes = [
            (a.as_slice(), Some(&b"Alice 2"[..])),
            (b.as_slice(), None),
            (c.as_slice(), Some(&b"Carol"[..])),
        ];
        kv.insert(batch_log::key(7), batch_log::encode(changes.into_iter()))
            .unwrap();
        kv.insert(name(ALICE), "Alice 2").unwrap();
        db.flush().unwrap();
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(
        store.displayname(&user(ALICE)).await.unwrap().as_deref(),
        Some("Alice 2")
    );
    assert_eq!(store.displayname(&user(BOB)).await.unwrap(), None);
    assert_eq!(store.displayname(&user(CAROL)).await.unwrap().as_deref(), Some("Carol"));
    drop(store);
    let (_db, kv) = raw_kv(dir.path());
    assert_eq!(batch_log_records(&kv), 0, "applied records are removed");
}

#[tokio::test]
async fn the_batch_log_keeps_only_batches_no_flush_has_covered() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    for i in 0..50 {
        store
            .set_displayname(&user(ALICE), Some(&format!("Alice {i}")))
            .await
            .unwrap();
    }
    drop(store);
    let (_db, kv) = raw_kv(dir.path());
    let left = batch_log_records(&kv);
    assert!(left <= 2, "{left} batch-log records left after 50 durable writes");
}

// -- account data and forgotten rooms (issue 11) ---------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_data_is_hidden_until_durable_and_answered_only_once_durable() {
    let (_dir, store) = slow_store(400);
    let alice = user(ALICE);
    let pos = store.durable_pos();
    let pending = {
        let (store, alice) = (store.clone(), alice.clone());
        tokio::spawn(async move {
            let at = store
                .set_account_data(&alice, None, "org.example.x", &json!({"v": 1}))
                .await
                .unwrap();
            (at, store.durable_pos())
        })
    };
    until_hidden(&store).await;
    for _ in 0..5 {
        assert_eq!(store.durable_pos(), pos);
        assert!(store
            .account_data(&alice, None, "org.example.x")
            .await
            .unwrap()
            .is_none());
        assert!(store
            .account_data_changes(&alice, 0, u64::MAX)
            .await
            .unwrap()
            .is_empty());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (at, durable_at_answer) = pending.await.unwrap();
    assert_eq!(at, pos + 1, "a change takes the next stream position");
    assert!(durable_at_answer >= at, "answered before the change was durable");
    let stored = store
        .account_data(&alice, None, "org.example.x")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((stored.content, stored.stream_pos), (json!({"v": 1}), at));
}

#[tokio::test]
async fn account_data_changes_list_each_entry_once_at_its_newest_change() {
    let (dir, store) = open();
    let (alice, bob) = (user(ALICE), user(BOB));
    let r = with_room(&store).await;
    let a1 = store
        .set_account_data(&alice, None, "a", &json!({"n": 1}))
        .await
        .unwrap();
    let b = store
        .set_account_data(&alice, Some(&r), "a", &json!({"room": true}))
        .await
        .unwrap();
    store
        .set_account_data(&bob, None, "a", &json!({"bob": true}))
        .await
        .unwrap();
    let a2 = store
        .set_account_data(&alice, None, "a", &json!({"n": 2}))
        .await
        .unwrap();
    let all = store.account_data_changes(&alice, 0, u64::MAX).await.unwrap();
    let seen: Vec<(Option<RoomId>, u64)> = all.iter().map(|d| (d.room.clone(), d.stream_pos)).collect();
    assert_eq!(
        seen,
        vec![(Some(r.clone()), b), (None, a2)],
        "alice's two entries, not bob's"
    );
    assert_eq!(all[1].content, json!({"n": 2}));
    // A window ending before the newest change does not show the entry's older value.
    assert!(store.account_data_changes(&alice, b, a2 - 1).await.unwrap().is_empty());
    assert!(a1 < b);
    drop(store);
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.account_data_changes(&alice, 0, u64::MAX).await.unwrap().len(), 2);
    assert!(
        store.durable_pos() >= a2,
        "positions taken by account data survive a reopen"
    );
}

#[tokio::test]
async fn a_forgotten_room_stays_forgotten_until_the_membership_changes() {
    let (_dir, store) = open();
    let r = with_room(&store).await;
    let bob = user(BOB);
    assert_eq!(store.forget_room(&bob, &r).await.unwrap(), None, "never a member");
    assert!(!store.forgotten(&bob, &r).await.unwrap());
    store
        .write_room(write(&r, vec![member(ALICE, BOB, "invite")]))
        .await
        .unwrap();
    assert_eq!(store.forget_room(&bob, &r).await.unwrap(), Some(Membership::Invite));
    assert!(
        !store.forgotten(&bob, &r).await.unwrap(),
        "an invite cannot be forgotten"
    );
    store
        .write_room(write(&r, vec![member(BOB, BOB, "leave")]))
        .await
        .unwrap();
    assert_eq!(store.forget_room(&bob, &r).await.unwrap(), Some(Membership::Leave));
    assert!(store.forgotten(&bob, &r).await.unwrap());
    store
        .write_room(write(&r, vec![member(ALICE, BOB, "invite")]))
        .await
        .unwrap();
    assert!(!store.forgotten(&bob, &r).await.unwrap(), "a new membership clears it");
}

/// A new folder gets [`SEGMENT_BYTES`]; one sled made with its default
/// segment size still opens (sled refuses to change it) and keeps working.
#[tokio::test]
async fn a_folder_keeps_the_segment_size_it_was_made_with() {
    let conf = |dir: &tempfile::TempDir| std::fs::read(dir.path().join("conf")).unwrap();
    let new = tempfile::tempdir().unwrap();
    drop(SledStore::open(new.path()).unwrap());
    let want = format!("segment_size: {SEGMENT_BYTES}\n");
    assert!(String::from_utf8_lossy(&conf(&new)).starts_with(&want));

    let old = tempfile::tempdir().unwrap();
    drop(::sled::Config::new().path(old.path()).open().unwrap());
    assert!(String::from_utf8_lossy(&conf(&old)).starts_with("segment_size: 524288\n"));
    let r = {
        let store = SledStore::open(old.path()).unwrap();
        with_room(&store).await
    };
    let store = SledStore::open(old.path()).unwrap();
    assert_eq!(store.members(&r).await.unwrap().len(), 1);
    assert!(String::from_utf8_lossy(&conf(&old)).starts_with("segment_size: 524288\n"));
}
