//! Join latency into a 10-member room vs a `--large-room-members` one.

use super::args::Args;
use super::client::{self, Account, Conn, Target};
use super::memory::MemoryLog;
use super::setup::register_many;
use super::stats::{ms, percentile, Errors};
use serde_json::json;
use std::time::Instant;

/// The p50 join latencies of both rooms, and the rooms (with their creator) for the read-back.
pub struct JoinCost {
    pub members: usize,
    pub ratio: f64,
    pub rooms: Vec<(String, Account)>,
}

pub async fn run(
    args: &Args,
    target: &Target,
    tag: &str,
    owner: &Account,
    memory: &mut MemoryLog,
) -> Result<JoinCost, String> {
    let big = args.large_room_members;
    println!("\n-- join latency: 10-member room vs {big}-member room");
    let mut conn = Conn::new(target);
    let small_room = conn
        .create_room(owner, "public_chat", Some(&format!("b{tag}-small")))
        .await
        .map_err(|e| format!("createRoom (small): {e}"))?;
    register_many(target, &format!("b{tag}-s"), 9, args.connections, Some(&small_room)).await?;
    let large_room = conn
        .create_room(owner, "public_chat", Some(&format!("b{tag}-large")))
        .await
        .map_err(|e| format!("createRoom (large): {e}"))?;
    let populate = Instant::now();
    let others = big.saturating_sub(1);
    register_many(
        target,
        &format!("b{tag}-l"),
        others,
        args.connections,
        Some(&large_room),
    )
    .await?;
    let took = populate.elapsed().as_secs_f64();
    println!(
        "populated the large room: {others} users registered and joined (plus its creator) over {} connections in {took:.1} s ({:.0} users/s)",
        args.connections,
        others as f64 / took
    );
    memory.mark("populating the large room");
    let samples = args.join_samples;
    let fresh = register_many(target, &format!("b{tag}-f"), samples, args.connections, None).await?;
    let rooms = [("10-member", &small_room), ("large", &large_room)];
    let mut join: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let mut leave: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let mut errors = Errors::default();
    for (i, user) in fresh.iter().enumerate() {
        // Alternate which room goes first so drift affects both alike.
        let order = if i % 2 == 0 { [0, 1] } else { [1, 0] };
        for r in order {
            let room = rooms[r].1;
            let (lat, res) = conn.timed(&client::join_room_path(room), &user.token, &json!({})).await;
            match res {
                Ok(_) => join[r].push(lat.as_micros() as u64),
                Err(f) => errors.add(format!("join {}: {}", rooms[r].0, f.key()), || f.to_string()),
            }
            let (lat, res) = conn.timed(&client::leave_path(room), &user.token, &json!({})).await;
            match res {
                Ok(_) => leave[r].push(lat.as_micros() as u64),
                Err(f) => errors.add(format!("leave {}: {}", rooms[r].0, f.key()), || f.to_string()),
            }
        }
    }
    println!("{samples} sequential join+leave cycles by fresh users into each room, one connection:");
    let labels = ["10-member room".to_string(), format!("{big}-member room")];
    for r in 0..2 {
        let (j, l) = (&mut join[r], &mut leave[r]);
        println!(
            "  {:<22} join  p50 {:>9}  p99 {:>9}  max {:>9}   leave p50 {:>9}  p99 {:>9}",
            labels[r],
            ms(percentile(j, 0.5)),
            ms(percentile(j, 0.99)),
            ms(percentile(j, 1.0)),
            ms(percentile(l, 0.5)),
            ms(percentile(l, 0.99))
        );
    }
    errors.print("  ");
    if join[0].is_empty() || join[1].is_empty() {
        return Err("no successful joins in the room-size test".into());
    }
    let (small_p50, large_p50) = (percentile(&mut join[0], 0.5), percentile(&mut join[1], 0.5));
    let ratio = large_p50 as f64 / small_p50.max(1) as f64;
    println!("  join p50 ratio, {big}-member / 10-member: {ratio:.2}×");
    Ok(JoinCost {
        members: big,
        ratio,
        rooms: vec![(small_room, owner.clone()), (large_room, owner.clone())],
    })
}
