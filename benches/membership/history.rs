//! Read latency vs history length: `/messages`, `/rooms/{id}/initialSync`
//! and `/initialSync` on a room with 100 messages and on one with
//! `--history-events`, each read by its creator, who is in no other room.

use super::args::Args;
use super::client::{self, Account, Conn, Target};
use super::memory::MemoryLog;
use super::progress::Progress;
use super::setup::register_many;
use super::stats::{ms, percentile, Errors};
use http::Method;
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// Messages in the short-history room.
pub const SHORT: usize = 100;

/// The reads timed in each room, with their path.
const READS: [&str; 3] = [
    "/messages?dir=b&limit=10",
    "/rooms/{id}/initialSync",
    "/initialSync?limit=10",
];

fn read_path(read: usize, room: &str) -> String {
    match read {
        0 => client::messages_path(room, "b", 10, None),
        1 => client::room_initial_sync_path(room),
        _ => client::initial_sync_path(10),
    }
}

/// p50 of each read in both rooms, and the rooms (with their creator) for the read-back.
pub struct ReadCost {
    pub long: usize,
    /// (read, short-room p50 µs, long-room p50 µs)
    pub p50s: Vec<(&'static str, u64, u64)>,
    pub rooms: Vec<(String, Account)>,
}

pub async fn run(args: &Args, target: &Target, tag: &str, memory: &mut MemoryLog) -> Result<ReadCost, String> {
    let long = args.history_events;
    println!("\n-- read latency: {SHORT}-message room vs {long}-message room");
    let readers = register_many(target, &format!("b{tag}-h"), 2, 2, None).await?;
    let mut conn = Conn::new(target);
    let mut rooms = Vec::new();
    for (reader, count) in readers.iter().zip([SHORT, long]) {
        let room = conn
            .create_room(reader, "private_chat", None)
            .await
            .map_err(|e| format!("createRoom (history): {e}"))?;
        let started = Instant::now();
        fill(target, &room, reader, count, args.connections).await?;
        let took = started.elapsed().as_secs_f64();
        println!(
            "sent {count} messages into {room} over {} connections in {took:.1} s ({:.0} messages/s)",
            args.connections.min(count),
            count as f64 / took
        );
        rooms.push((room, reader.clone()));
    }
    memory.mark("sending the history");
    let samples = args.read_samples;
    let mut lat: Vec<[Vec<u64>; 2]> = READS.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    let mut errors = Errors::default();
    for i in 0..samples {
        // Alternate which room goes first so drift affects both alike.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for r in order {
            let (room, reader) = &rooms[r];
            for (read, name) in READS.iter().enumerate() {
                let (took, res) = conn.timed_get(&read_path(read, room), &reader.token).await;
                match res {
                    Ok(_) => lat[read][r].push(took.as_micros() as u64),
                    Err(f) => errors.add(format!("{name}: {}", f.key()), || f.to_string()),
                }
            }
        }
    }
    println!("{samples} sequential rounds of each read in each room, one connection, by the room's creator:");
    let mut p50s = Vec::new();
    for (read, name) in READS.iter().enumerate() {
        let [short, long_] = &mut lat[read];
        if short.is_empty() || long_.is_empty() {
            return Err(format!("no successful {name} reads in the history test"));
        }
        let (a, b) = (percentile(short, 0.5), percentile(long_, 0.5));
        println!(
            "  {name:<26} {SHORT}: p50 {:>9}  p99 {:>9}   {long}: p50 {:>9}  p99 {:>9}   p50 ratio {:.2}×",
            ms(a),
            ms(percentile(short, 0.99)),
            ms(b),
            ms(percentile(long_, 0.99)),
            b as f64 / a.max(1) as f64
        );
        p50s.push((*name, a, b));
    }
    errors.print("  ");
    Ok(ReadCost { long, p50s, rooms })
}

/// Sends `count` messages from `sender` into `room` over up to `conns` connections.
async fn fill(target: &Target, room: &str, sender: &Account, count: usize, conns: usize) -> Result<(), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..conns.min(count) {
        let (next, done, failed, target) = (next.clone(), done.clone(), failed.clone(), target.clone());
        let (room, sender) = (room.to_string(), sender.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(&target);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count || failed.load(Ordering::Relaxed) {
                    return Ok::<_, String>(());
                }
                let body = json!({ "msgtype": "m.text", "body": format!("history message {i}") });
                let path = client::send_path(&room, &format!("h{i}"));
                if let Err(e) = conn.call(Method::PUT, &path, Some(&sender.token), &body).await {
                    failed.store(true, Ordering::Relaxed);
                    return Err(format!("send message {i}: {e}"));
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let _progress = Progress::start(done, count, "messages");
    for t in tasks {
        t.await.map_err(|e| format!("sender: {e}"))??;
    }
    Ok(())
}
