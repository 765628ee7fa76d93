//! The logical data the server holds, read back after the run: every event of
//! every room the benchmark created, paged forwards through `/messages` by an
//! account that has been in the room since its creation, each counted as the
//! compact JSON of the event (`unsigned`, which the server derives, left out).

use super::client::{self, Account, Conn, Target};
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;

/// The most events one page asks for (the server's cap).
const PAGE: usize = 1000;
/// Connections the read-back uses; rooms are read in parallel.
const READERS: usize = 8;

/// Events read back and their JSON size.
#[derive(Default)]
pub struct Events {
    pub rooms: usize,
    pub count: u64,
    pub bytes: u64,
}

pub async fn read_back(target: &Target, rooms: Vec<(String, Account)>) -> Result<Events, String> {
    let started = Instant::now();
    let n_rooms = rooms.len();
    let queue = Arc::new(std::sync::Mutex::new(rooms));
    let mut tasks = Vec::new();
    for _ in 0..READERS.min(n_rooms) {
        let (queue, target) = (queue.clone(), target.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(&target);
            let mut mine = Events::default();
            loop {
                let next = queue.lock().expect("queue").pop();
                let Some((room, reader)) = next else {
                    return Ok::<_, String>(mine);
                };
                let (count, bytes) = read_room(&mut conn, &room, &reader).await?;
                mine.rooms += 1;
                mine.count += count;
                mine.bytes += bytes;
            }
        }));
    }
    let mut all = Events::default();
    for t in tasks {
        let mine = t.await.map_err(|e| format!("read-back: {e}"))??;
        all.rooms += mine.rooms;
        all.count += mine.count;
        all.bytes += mine.bytes;
    }
    println!(
        "read back {} events ({:.1} MiB of event JSON) from {} rooms in {:.1} s",
        all.count,
        all.bytes as f64 / MIB,
        all.rooms,
        started.elapsed().as_secs_f64()
    );
    Ok(all)
}

const MIB: f64 = 1024.0 * 1024.0;

/// (events, bytes) of one room, oldest first.
async fn read_room(conn: &mut Conn, room: &str, reader: &Account) -> Result<(u64, u64), String> {
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut from: Option<String> = None;
    loop {
        let path = client::messages_path(room, "f", PAGE, from.as_deref());
        let mut page = conn
            .get(&path, &reader.token)
            .await
            .map_err(|e| format!("/messages of {room}: {e}"))?
            .body;
        let end = page.get("end").and_then(Value::as_str).map(str::to_string);
        let chunk = match page.get_mut("chunk").map(Value::take) {
            Some(Value::Array(chunk)) => chunk,
            _ => return Err(format!("/messages of {room}: no chunk in the answer")),
        };
        let last_page = chunk.is_empty();
        for mut event in chunk {
            if let Some(fields) = event.as_object_mut() {
                fields.remove("unsigned");
            }
            bytes += serde_json::to_vec(&event).expect("JSON").len() as u64;
            count += 1;
        }
        match end {
            Some(end) if !last_page => from = Some(end),
            _ => return Ok((count, bytes)),
        }
    }
}
