//! The checks after each restart, all through the client API: what was
//! acknowledged is there, what syncs showed is still there at the same token
//! range, a resumed sync misses nothing, and the position did not go back.

use crate::cycle;
use crate::history::{self, Event};
use crate::http::{enc, token, Account, Conn, Req, V3};
use crate::load::{self, Ctx};
use crate::model::{MsgLog, PairLog, World, M};
use crate::observer::{self, Observer};
use crate::server::Process;
use crate::setup::State;
use crate::tally::Tally;
use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// What the checks need to know about the cycle that ended in the kill.
pub struct Ended<'a> {
    pub cycle: u32,
    /// The position when its load began.
    pub start: u64,
    /// The highest token a sync of the cycle handed out.
    pub shown_max: u64,
    pub log: &'a cycle::Log,
}

/// Everything checked after a restart, in the order that makes each check meaningful.
pub async fn after_restart(
    process: &Arc<Process>,
    state: &mut State,
    ended: Ended<'_>,
    rng: &mut StdRng,
    tally: &mut Tally,
) -> Result<(), String> {
    let world = state.world.clone();
    let mut conn = Conn::new(&process.authority);
    // Before anything is written: the position the crash left.
    let now = position(&mut conn, &world, ended.shown_max, tally).await?;
    future_token(&mut conn, &world, now, tally).await?;
    let after = other_clients_write(&world, process, ended.cycle, rng, tally).await;
    resume_all(&mut conn, state, tally).await?;
    let mut hist = Histories::new(&process.authority, &world.owner);
    let sent: Vec<MsgLog> = ended.log.messages.iter().chain(&after).cloned().collect();
    messages(&mut hist, &world, &sent, ended.start, tally).await?;
    let members_now = memberships(&mut conn, &mut hist, &world, &ended.log.pairs, ended.start, tally).await?;
    state.adopt(&members_now);
    let observers: Vec<&Observer> = state.observers.iter().chain([&state.watcher]).collect();
    syncs(&mut conn, &mut hist, &world, &observers, now, tally).await?;
    accounts(&mut conn, &state.accounts(), &ended.log.registered, tally).await
}

/// Messages written right after the restart, before any observer resumes:
/// the writes a real server gets from its other clients, which take any
/// position a crash gave back.
async fn other_clients_write(
    world: &Arc<World>,
    process: &Arc<Process>,
    cycle: u32,
    rng: &mut StdRng,
    tally: &mut Tally,
) -> Vec<MsgLog> {
    let ctx = Ctx::new(world.clone(), process.clone(), 0.0);
    let mut conns = (ctx.conn(), ctx.conn());
    let mut logs = Vec::new();
    for (i, sender) in world.senders.iter().enumerate() {
        for n in 0..2 {
            let room = rng.gen_range(0..world.rooms.len());
            let body = format!("c{cycle}.after.s{i}.{n}");
            logs.push(load::message(&ctx, &mut conns, sender, room, body, None, || {}).await.0);
        }
    }
    for p in ctx.take_problems() {
        tally.problem(p);
    }
    logs
}

/// Every observer syncs from its last token; one whose token is refused starts afresh.
async fn resume_all(conn: &mut Conn, state: &mut State, tally: &mut Tally) -> Result<(), String> {
    for obs in state.all_observers() {
        if let Err(e) = observer::resume(conn, obs).await {
            tally.problem(format!(
                "{} could not resume from s{}: {e}",
                obs.account.user_id, obs.token
            ));
            obs.token = observer::position(conn, &obs.account).await?;
        }
    }
    Ok(())
}

/// How far beyond the position the made-up future token lies.
const FUTURE: u64 = 1_000_000;

/// Room histories from a position to now, read once per check phase.
struct Histories {
    conn: Conn,
    reader: Account,
    read: HashMap<(String, u64), Arc<Vec<Event>>>,
}

impl Histories {
    /// `reader` must have been joined to every room from its creation (the owner).
    fn new(authority: &str, reader: &Account) -> Histories {
        Histories {
            conn: Conn::new(authority),
            reader: reader.clone(),
            read: HashMap::new(),
        }
    }

    /// Events of `room` after position `from`, oldest first.
    async fn after(&mut self, room: &str, from: u64) -> Result<Arc<Vec<Event>>, String> {
        let key = (room.to_string(), from);
        if let Some(events) = self.read.get(&key) {
            return Ok(events.clone());
        }
        let events = Arc::new(history::read(&mut self.conn, &self.reader, room, from, None).await?);
        self.read.insert(key, events.clone());
        Ok(events)
    }
}

/// The position right after the restart; a regression when a client was shown more.
async fn position(conn: &mut Conn, world: &World, shown_max: u64, tally: &mut Tally) -> Result<u64, String> {
    let now = observer::position(conn, &world.checker).await?;
    if now < shown_max {
        tally.stream_regressions += 1;
        tally.detail("stream went back", || {
            format!("the position after the restart is s{now}, but syncs had handed out tokens up to s{shown_max}")
        });
    }
    Ok(now)
}

/// A sync from a token the server never handed out must not be answered as if it had.
async fn future_token(conn: &mut Conn, world: &World, now: u64, tally: &mut Tally) -> Result<(), String> {
    let since = token(now + FUTURE);
    let resp = conn
        .send(&Req::get(
            format!("{V3}/sync?since={since}&timeout=0"),
            &world.checker.token,
        ))
        .await
        .map_err(|e| format!("sync from a future token: {e}"))?;
    if resp.ok() {
        tally.future_tokens_accepted += 1;
        let next = resp.str_field("next_batch").unwrap_or_default();
        tally.detail("future token accepted", || {
            format!(
                "/sync?since={since} (position s{now}) was answered {} with next_batch {next}",
                resp.status
            )
        });
    } else if !(400..500).contains(&resp.status) {
        tally.problem(format!("/sync?since={since} was answered {}", resp.describe()));
    }
    Ok(())
}

/// Every acknowledged message exists exactly once, with its event id.
async fn messages(
    hist: &mut Histories,
    world: &World,
    logs: &[MsgLog],
    from: u64,
    tally: &mut Tally,
) -> Result<(), String> {
    for log in logs {
        let events = hist.after(&world.rooms[log.room].id, from).await?;
        let found: Vec<&Event> = events
            .iter()
            .filter(|e| e.kind == "m.room.message" && e.body.as_deref() == Some(log.body.as_str()))
            .collect();
        match &log.event_id {
            Some(id) => {
                tally.acked_ops += 1;
                tally.retry_acks += u64::from(log.by_retry);
                if found.is_empty() {
                    tally.lost_acked_ops += 1;
                    tally.retry_acks_lost += u64::from(log.by_retry);
                    let how = if log.by_retry {
                        "its repeat was acknowledged"
                    } else {
                        "acknowledged"
                    };
                    tally.detail("lost message", || {
                        format!("{} ({id}, {how}) is not in room {}", log.body, log.room)
                    });
                } else if found.len() > 1 {
                    tally.problem(format!("message {} exists {} times", log.body, found.len()));
                } else if &found[0].id != id {
                    tally.problem(format!(
                        "message {} was acknowledged as {id} but exists as {}",
                        log.body, found[0].id
                    ));
                }
            }
            None if found.len() > 1 || (found.len() == 1 && !log.in_doubt) => {
                tally.problem(format!(
                    "message {} was not acknowledged yet exists {} times",
                    log.body,
                    found.len()
                ));
            }
            None => {}
        }
    }
    Ok(())
}

/// Current memberships of every room as `/members` reports them.
async fn members(conn: &mut Conn, world: &World) -> Result<HashMap<(usize, String), M>, String> {
    let mut now = HashMap::new();
    for (r, room) in world.rooms.iter().enumerate() {
        let resp = conn
            .call(&Req::get(
                format!("{V3}/rooms/{}/members", enc(&room.id)),
                &world.owner.token,
            ))
            .await?;
        for e in resp.body.get("chunk").and_then(Value::as_array).into_iter().flatten() {
            let user = e.get("state_key").and_then(Value::as_str);
            let m = e
                .pointer("/content/membership")
                .and_then(Value::as_str)
                .and_then(M::parse);
            if let (Some(user), Some(m)) = (user, m) {
                now.insert((r, user.to_string()), m);
            }
        }
    }
    Ok(now)
}

/// Every acknowledged membership change is one member event, in order, and
/// `/members` agrees with the last; returns the memberships now.
async fn memberships(
    conn: &mut Conn,
    hist: &mut Histories,
    world: &World,
    pairs: &[PairLog],
    from: u64,
    tally: &mut Tally,
) -> Result<HashMap<(usize, String), M>, String> {
    let now = members(conn, world).await?;
    for pair in pairs {
        let events = hist.after(&world.rooms[pair.room].id, from).await?;
        let seq: Vec<M> = events
            .iter()
            .filter(|e| e.kind == "m.room.member" && e.state_key.as_deref() == Some(pair.user.as_str()))
            .filter_map(|e| e.membership)
            .collect();
        let acked: Vec<M> = pair.acked.iter().map(|a| a.action.result()).collect();
        let kept = seq.iter().zip(&acked).take_while(|(a, b)| a == b).count();
        tally.acked_ops += acked.len() as u64;
        tally.retry_acks += pair.acked.iter().filter(|a| a.by_retry).count() as u64;
        let lost = &pair.acked[kept..];
        if !lost.is_empty() {
            tally.lost_acked_ops += lost.len() as u64;
            tally.retry_acks_lost += lost.iter().filter(|a| a.by_retry).count() as u64;
            tally.detail("lost membership", || {
                let names: Vec<String> = lost
                    .iter()
                    .map(|a| {
                        format!(
                            "{}{}",
                            a.action.name(),
                            if a.by_retry { " (repeat acknowledged)" } else { "" }
                        )
                    })
                    .collect();
                format!(
                    "{} in room {}: acknowledged {} missing; the history since s{from} has {seq:?}",
                    pair.user,
                    pair.room,
                    names.join(", ")
                )
            });
        } else {
            let extra = &seq[kept..];
            let doubtful = extra.len() == 1 && Some(extra[0]) == pair.in_doubt;
            if !extra.is_empty() && !doubtful {
                tally.problem(format!(
                    "{} in room {}: member events {extra:?} beyond the acknowledged {acked:?}",
                    pair.user, pair.room
                ));
            }
        }
        let current = now.get(&(pair.room, pair.user.clone())).copied().unwrap_or(M::Never);
        let last = seq.last().copied().unwrap_or(pair.start);
        if current != last {
            tally.problem(format!(
                "{} in room {}: /members says {current:?} but the history ends with {last:?}",
                pair.user, pair.room
            ));
        }
    }
    Ok(now)
}

/// Phantoms, changed ranges and undelivered events, per observer and room.
/// `restarted_at` is the position the crash left: when it lies below an
/// observer's first token, everything above it was written after the restart.
async fn syncs(
    conn: &mut Conn,
    hist: &mut Histories,
    world: &World,
    observers: &[&Observer],
    restarted_at: u64,
    tally: &mut Tally,
) -> Result<(), String> {
    let mut phantoms = HashSet::new();
    let mut undelivered = HashSet::new();
    for obs in observers {
        let from = obs.first_since.min(restarted_at);
        for room in &world.rooms {
            let events = hist.after(&room.id, from).await?;
            let exists: HashSet<&str> = events.iter().map(|e| e.id.as_str()).collect();
            for (_, id) in obs.seen().filter(|(r, _)| *r == room.id) {
                if !exists.contains(id) && phantoms.insert(id.to_string()) {
                    tally.detail("phantom", || {
                        format!(
                            "{} was shown {id} in {}; it no longer exists",
                            obs.account.user_id, room.id
                        )
                    });
                }
            }
            let received = obs.received(&room.id);
            for e in events.iter().filter(|e| !received.contains(e.id.as_str())) {
                if undelivered.insert(e.id.clone()) {
                    tally.detail("undelivered", || {
                        format!(
                            "{} ({}) exists after s{from} in {} but {} never received it, resuming from s{}",
                            e.id,
                            e.kind,
                            room.id,
                            obs.account.user_id,
                            obs.windows.last().map_or(obs.first_since, |w| w.next)
                        )
                    });
                }
            }
            tally.changed_windows += changed_windows(conn, world, &room.id, obs, tally).await?;
        }
    }
    tally.phantom_events += phantoms.len() as u64;
    tally.undelivered_events += undelivered.len() as u64;
    Ok(())
}

/// How many of the observer's answers for `room` name other events now:
/// `/messages` over the whole cycle's range first, then answer by answer
/// from where the two part.
async fn changed_windows(
    conn: &mut Conn,
    world: &World,
    room: &str,
    obs: &Observer,
    tally: &mut Tally,
) -> Result<u64, String> {
    let (Some(first), Some(last)) = (obs.windows.first(), obs.windows.last()) else {
        return Ok(0);
    };
    let empty = Vec::new();
    let shown = |w: &observer::Window| w.rooms.get(room).unwrap_or(&empty).clone();
    let expected: Vec<String> = obs.windows.iter().flat_map(shown).collect();
    let actual = observer::range(conn, &world.owner, room, first.since, Some(last.next)).await?;
    if actual == expected {
        return Ok(0);
    }
    let same = expected.iter().zip(&actual).take_while(|(a, b)| a == b).count();
    let mut changed = 0;
    let mut offset = 0;
    for w in &obs.windows {
        let ids = shown(w);
        // An empty answer between two unchanged events is still empty.
        let suspect = if ids.is_empty() {
            offset >= same
        } else {
            offset + ids.len() > same
        };
        offset += ids.len();
        if !suspect {
            continue;
        }
        let now = observer::range(conn, &world.owner, room, w.since, Some(w.next)).await?;
        if now != ids {
            changed += 1;
            tally.detail("changed window", || {
                format!(
                    "{room} (s{}, s{}]: {} was shown {ids:?}, /messages now returns {now:?}",
                    w.since, w.next, obs.account.user_id
                )
            });
        }
    }
    Ok(changed)
}

/// Every token still names its user; `registered` are this cycle's new accounts.
async fn accounts(
    conn: &mut Conn,
    fixed: &[&Account],
    registered: &[Account],
    tally: &mut Tally,
) -> Result<(), String> {
    tally.acked_ops += registered.len() as u64;
    for (account, new) in fixed
        .iter()
        .map(|a| (*a, false))
        .chain(registered.iter().map(|a| (a, true)))
    {
        let resp = conn
            .send(&Req::get(format!("{V3}/account/whoami"), &account.token))
            .await
            .map_err(|e| format!("whoami: {e}"))?;
        let who = resp.str_field("user_id");
        if resp.ok() && who.as_deref() == Some(account.user_id.as_str()) {
            continue;
        }
        if new {
            tally.lost_acked_ops += 1;
            tally.detail("lost account", || {
                format!("{}: whoami answered {}", account.user_id, resp.describe())
            });
        } else {
            tally.problem(format!(
                "{}: the set-up account's token is refused: {}",
                account.user_id,
                resp.describe()
            ));
        }
    }
    Ok(())
}
