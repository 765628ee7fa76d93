//! The run's accounts and rooms, made once before the first cycle.

use crate::http::{enc, register, Account, Conn, Req, V3};
use crate::model::{Member, Room, World, M};
use crate::observer::{self, Observer};
use crate::probe::Probes;
use crate::server::Process;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

const OBSERVERS: usize = 3;
const MEMBERS: usize = 6;
const SENDERS: usize = 3;

/// Everything that lives across cycles.
pub struct State {
    pub world: Arc<World>,
    pub members: Vec<Member>,
    pub observers: Vec<Observer>,
    pub probes: Probes,
    /// The sync probe's client.
    pub watcher: Observer,
}

impl State {
    /// Every account made at set-up.
    pub fn accounts(&self) -> Vec<&Account> {
        let mut all = vec![&self.world.owner, &self.world.checker, &self.probes.sender];
        all.extend(&self.world.senders);
        all.extend(self.members.iter().map(|m| &m.account));
        all.extend(self.probes.members().map(|m| &m.account));
        all.extend(self.observers.iter().map(|o| &o.account));
        all.push(&self.watcher.account);
        all
    }

    /// Takes the memberships the server reports as the truth for the next cycle.
    pub fn adopt(&mut self, now: &HashMap<(usize, String), M>) {
        for member in self.members.iter_mut().chain(self.probes.members_mut()) {
            for (room, m) in member.states.iter_mut().enumerate() {
                *m = now
                    .get(&(room, member.account.user_id.clone()))
                    .copied()
                    .unwrap_or(M::Never);
            }
        }
    }

    /// Every sync client, long-polling or not.
    pub fn all_observers(&mut self) -> impl Iterator<Item = &mut Observer> {
        self.observers.iter_mut().chain(std::iter::once(&mut self.watcher))
    }
}

async fn create_room(conn: &mut Conn, owner: &Account, preset: &str) -> Result<Room, String> {
    let resp = conn
        .call(&Req::post(
            format!("{V3}/createRoom"),
            Some(&owner.token),
            json!({ "preset": preset }),
        ))
        .await?;
    let id = resp
        .str_field("room_id")
        .ok_or_else(|| format!("createRoom answered without a room_id: {}", resp.body))?;
    Ok(Room {
        id,
        public: preset == "public_chat",
    })
}

/// Joins `who` to `room`, with the owner's invite first if the room needs one.
async fn enter(conn: &mut Conn, owner: &Account, room: &Room, who: &Account) -> Result<(), String> {
    let path = |what: &str| format!("{V3}/rooms/{}/{what}", enc(&room.id));
    if !room.public {
        conn.call(&Req::post(
            path("invite"),
            Some(&owner.token),
            json!({ "user_id": who.user_id }),
        ))
        .await?;
    }
    conn.call(&Req::post(path("join"), Some(&who.token), json!({}))).await?;
    Ok(())
}

async fn accounts(conn: &mut Conn, prefix: &str, n: usize) -> Result<Vec<Account>, String> {
    let mut made = Vec::new();
    for i in 0..n {
        made.push(register(conn, &format!("{prefix}{i}")).await?);
    }
    Ok(made)
}

/// Registers everyone, creates two public rooms and one invite-only room,
/// joins the observers and senders to all of them.
pub async fn set_up(process: &Process) -> Result<State, String> {
    let mut conn = Conn::new(&process.authority);
    let owner = register(&mut conn, "owner").await?;
    let checker = register(&mut conn, "checker").await?;
    let mut rooms = Vec::new();
    for preset in ["public_chat", "public_chat", "private_chat"] {
        rooms.push(create_room(&mut conn, &owner, preset).await?);
    }
    let senders = accounts(&mut conn, "sender", SENDERS).await?;
    // The last one is the sync probe's.
    let mut watchers = accounts(&mut conn, "observer", OBSERVERS + 1).await?;
    for who in senders.iter().chain(&watchers) {
        for room in &rooms {
            enter(&mut conn, &owner, room, who).await?;
        }
    }
    let member = |account: Account| Member {
        account,
        states: vec![M::Never; rooms.len()],
    };
    let members = accounts(&mut conn, "member", MEMBERS)
        .await?
        .into_iter()
        .map(member)
        .collect();
    let probe_sender = register(&mut conn, "probesender").await?;
    enter(&mut conn, &owner, &rooms[0], &probe_sender).await?;
    let probes = Probes {
        sender: probe_sender,
        joiner: member(register(&mut conn, "probejoiner").await?),
        invitee: member(register(&mut conn, "probeinvitee").await?),
        bannee: member(register(&mut conn, "probebannee").await?),
    };
    let mut observers = Vec::new();
    for account in watchers.drain(..) {
        let at = observer::position(&mut conn, &account).await?;
        observers.push(Observer::new(account, at));
    }
    let watcher = observers.pop().expect("one more observer than OBSERVERS");
    Ok(State {
        world: Arc::new(World {
            owner,
            checker,
            rooms,
            senders,
        }),
        members,
        observers,
        probes,
        watcher,
    })
}
