//! Set-up over HTTP: the accounts and rooms the mixed run cycles through.

use super::args::Args;
use super::client::{self, Account, Conn, Target};
use super::progress::Progress;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A public room the mix joins by alias.
pub struct PublicRoom {
    pub id: String,
    pub alias: String,
    /// Index into `Plan::owners` of its creator.
    pub owner: usize,
}

/// An invite-only room the mix is invited into.
pub struct PrivateRoom {
    pub id: String,
    /// Index into `Plan::owners` of its creator, who invites.
    pub owner: usize,
}

/// Accounts and rooms the mixed run uses.
pub struct Plan {
    pub owners: Vec<Account>,
    pub members: Vec<Account>,
    pub public: Vec<PublicRoom>,
    pub private: Vec<PrivateRoom>,
}

impl Plan {
    /// Every room of the plan with an account that has been in it since its creation.
    pub fn rooms_with_readers(&self) -> Vec<(String, Account)> {
        let public = self.public.iter().map(|r| (r.id.clone(), self.owners[r.owner].clone()));
        let private = self
            .private
            .iter()
            .map(|r| (r.id.clone(), self.owners[r.owner].clone()));
        public.chain(private).collect()
    }
}

pub async fn setup(args: &Args, target: &Target, tag: &str) -> Result<Plan, String> {
    let n_owners = args.public_rooms.min(4);
    let owners = register_many(target, &format!("b{tag}-o"), n_owners, args.connections, None).await?;
    let members = register_many(target, &format!("b{tag}-u"), args.users, args.connections, None).await?;
    let mut conn = Conn::new(target);
    let mut public = Vec::new();
    for i in 0..args.public_rooms {
        let owner = i % n_owners;
        let alias_name = format!("b{tag}-pub{i}");
        let id = conn
            .create_room(&owners[owner], "public_chat", Some(&alias_name))
            .await
            .map_err(|e| format!("createRoom (public): {e}"))?;
        let alias = format!("#{alias_name}:{}", owners[owner].server_name());
        public.push(PublicRoom { id, alias, owner });
    }
    let mut private = Vec::new();
    for i in 0..args.private_rooms {
        let owner = i % n_owners;
        let id = conn
            .create_room(&owners[owner], "private_chat", None)
            .await
            .map_err(|e| format!("createRoom (private): {e}"))?;
        private.push(PrivateRoom { id, owner });
    }
    Ok(Plan {
        owners,
        members,
        public,
        private,
    })
}

/// Registers `count` users named `{prefix}{i}` over `conns` connections,
/// each then joining `join` if given. Prints progress for large counts.
pub async fn register_many(
    target: &Target,
    prefix: &str,
    count: usize,
    conns: usize,
    join: Option<&str>,
) -> Result<Vec<Account>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let join_path = join.map(client::join_room_path);
    let mut tasks = Vec::new();
    for _ in 0..conns.min(count.max(1)) {
        let (next, done, failed) = (next.clone(), done.clone(), failed.clone());
        let (target, prefix, join_path) = (target.clone(), prefix.to_string(), join_path.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(&target);
            let mut mine = Vec::new();
            loop {
                if failed.load(Ordering::Relaxed) {
                    return Ok(mine);
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok(mine);
                }
                let step = async {
                    let account = conn
                        .register(&format!("{prefix}{i}"))
                        .await
                        .map_err(|e| format!("register: {e}"))?;
                    if let Some(path) = &join_path {
                        conn.call(http::Method::POST, path, Some(&account.token), &json!({}))
                            .await
                            .map_err(|e| format!("join: {e}"))?;
                    }
                    Ok::<_, String>(account)
                };
                match step.await {
                    Ok(account) => mine.push((i, account)),
                    Err(e) => {
                        failed.store(true, Ordering::Relaxed);
                        return Err(format!("user {prefix}{i}: {e}"));
                    }
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let _progress = Progress::start(done, count, "users");
    let mut all = Vec::with_capacity(count);
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(mine)) => all.extend(mine),
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Err(e) => first_error = first_error.or(Some(format!("task: {e}"))),
        }
    }
    if let Some(e) = first_error {
        return Err(format!("setup failed: {e}"));
    }
    all.sort_by_key(|(i, _)| *i);
    Ok(all.into_iter().map(|(_, a)| a).collect())
}
