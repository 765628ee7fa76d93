//! The administration part of the `Store` contract, on sled.

use super::sled::SledStore;
use super::*;
use std::sync::Arc;
use std::time::Duration;

fn user(s: &str) -> UserId {
    UserId::parse(s).unwrap()
}

/// Holds the writer thread busy for `pause`, so writes sent meanwhile share the next batch.
async fn occupy_writer(store: Arc<SledStore>, pause: Duration) {
    let room = RoomId::parse("!busy:localhost").unwrap();
    let plan: Plan = Box::new(move |_| {
        std::thread::sleep(pause);
        Ok(Vec::new())
    });
    let write = RoomWrite {
        room,
        create: Some(Creation::default()),
        users: Vec::new(),
        txn: None,
        plan,
    };
    store.write_room(write).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_added_in_the_batch_of_a_deactivation_is_revoked_with_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let alice = user("@alice:localhost");
    assert!(store.create_user(&alice, "hash").await.unwrap());
    store.add_token(&[1; 32], &alice, "OLD").await.unwrap();
    let busy = tokio::spawn(occupy_writer(store.clone(), Duration::from_millis(300)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Sent in this order while the writer is busy: one batch, the login first.
    let (login, deactivated) = tokio::join!(store.add_token(&[2; 32], &alice, "NEW"), store.deactivate(&alice));
    busy.await.unwrap();
    login.unwrap();
    assert!(deactivated.unwrap());
    assert_eq!(store.token_user(&[1; 32]).await.unwrap(), None);
    assert_eq!(
        store.token_user(&[2; 32]).await.unwrap(),
        None,
        "a login staged in the same batch survived the deactivation"
    );
    assert!(matches!(
        store.add_token(&[3; 32], &alice, "LATER").await,
        Err(StoreError::Deactivated(_))
    ));
    let flags = store.account_flags(&alice).await.unwrap().unwrap();
    assert!(flags.deactivated && !flags.admin);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_reset_ends_sessions_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path()).unwrap();
    let alice = user("@alice:localhost");
    store
        .create_account(
            &alice,
            "h1",
            AccountFlags {
                admin: true,
                deactivated: false,
            },
        )
        .await
        .unwrap();
    store.add_token(&[1; 32], &alice, "A").await.unwrap();
    assert!(store.set_password_hash(&alice, "h2", false).await.unwrap());
    assert!(store.token_user(&[1; 32]).await.unwrap().is_some());
    assert!(store.set_password_hash(&alice, "h3", true).await.unwrap());
    assert_eq!(store.token_user(&[1; 32]).await.unwrap(), None);
    assert_eq!(store.password_hash(&alice).await.unwrap().as_deref(), Some("h3"));
    assert!(!store
        .set_password_hash(&user("@nobody:localhost"), "h", true)
        .await
        .unwrap());
    assert!(store.account_flags(&alice).await.unwrap().unwrap().admin);
}
