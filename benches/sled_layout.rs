//! How sled 0.34's memory grows with the key layout, on the server's write
//! pattern without the server: per membership op one new event under
//! (room, position) and one state-history entry under (room, user, position),
//! a flush every 500 ops, a 32 MiB cache, sled's background thread every
//! 2 ms as the server runs it. It prints VmRSS and the folder's size as the
//! database grows.
//!
//! sled keeps an in-memory page-table entry and a list of fragment locations
//! for every page it has written, paged out or not, and a leaf splits at 16
//! keys, so RSS follows the number of keys ever written. The layouts:
//!
//! - `single`: the server's layout today, two fresh keys per op;
//! - `history-lists`: the state history of a (room, user) as keys holding
//!   bounded lists of `--list` positions, the newest rewritten on each
//!   change, a new one started when it is full;
//! - `event-chunks`: events as single keys, the oldest `--chunk` of a room's
//!   events moved into one chunk key once 2 × chunk of them are single;
//! - `both`: event chunks and history lists.
//!
//! `cargo bench --bench sled_layout -- [--ops N] [--chunk K] [--list L] [--gc-ms MS]
//! [--rooms N] [--users N] [--event-bytes B] [--segment-kib K] [LAYOUT ...]`
//! (defaults: 200 rooms, 50 users per room, 400-byte events, 512 KiB segments).

#![allow(dead_code)] // the membership benchmark's server module, of which this uses the /proc reader

#[path = "membership/server.rs"]
mod server;

use std::collections::HashMap;
use std::time::Instant;

const FLUSH_EVERY: u64 = 500;
const REPORT_EVERY: u64 = 250_000;

fn vm_rss_mib() -> u64 {
    server::memory_kib(std::process::id()).map_or(0, |(_, rss)| rss / 1024)
}

fn key(tag: u8, parts: &[u64]) -> Vec<u8> {
    let mut k = vec![tag];
    for p in parts {
        k.extend_from_slice(&p.to_be_bytes());
    }
    k
}

struct Layout {
    event_chunks: bool,
    history_lists: bool,
    chunk: usize,
    /// Entries a history list holds before a new one starts (9 bytes each).
    list: usize,
    /// sled's background period (segment reclaim); `None`: off.
    gc_ms: Option<u64>,
    rooms: u64,
    users: u64,
    event_bytes: usize,
    segment_kib: usize,
}

struct Run {
    tree: sled::Tree,
    layout: Layout,
    singles: HashMap<u64, usize>,
    /// Per (room, user): the first position of its newest history list.
    lists: HashMap<(u64, u64), u64>,
}

impl Run {
    fn write_op(&mut self, i: u64) -> sled::Result<()> {
        let l = &self.layout;
        let (room, user, pos) = ((i * 7919) % l.rooms, (i / 3) % l.users, i);
        self.tree.insert(key(b'E', &[room, pos]), vec![b'x'; l.event_bytes])?;
        if self.layout.event_chunks {
            self.maybe_chunk(room)?;
        }
        if self.layout.history_lists {
            let first = *self.lists.entry((room, user)).or_insert(pos);
            let mut list = self
                .tree
                .get(key(b'H', &[room, user, first]))?
                .map(|v| v.to_vec())
                .unwrap_or_default();
            let first = if list.len() >= 9 * self.layout.list {
                list.clear();
                self.lists.insert((room, user), pos);
                pos
            } else {
                first
            };
            list.extend_from_slice(&pos.to_be_bytes());
            list.push(1);
            self.tree.insert(key(b'H', &[room, user, first]), list)?;
        } else {
            self.tree.insert(key(b'H', &[room, user, pos]), vec![1])?;
        }
        Ok(())
    }

    /// Moves a room's oldest `chunk` single events into one key.
    fn maybe_chunk(&mut self, room: u64) -> sled::Result<()> {
        let chunk = self.layout.chunk;
        let singles = self.singles.entry(room).or_default();
        *singles += 1;
        if *singles < 2 * chunk {
            return Ok(());
        }
        *singles -= chunk;
        let prefix = key(b'E', &[room]);
        let oldest: Vec<_> = self.tree.scan_prefix(&prefix).take(chunk).collect::<Result<_, _>>()?;
        let value: Vec<u8> = oldest.iter().flat_map(|(_, v)| v.iter().copied()).collect();
        let first = u64::from_be_bytes(oldest[0].0[prefix.len()..].try_into().expect("event key"));
        self.tree.insert(key(b'K', &[room, first]), value)?;
        for (k, _) in oldest {
            self.tree.remove(k)?;
        }
        Ok(())
    }
}

fn run(name: &str, layout: Layout, ops: u64) -> sled::Result<()> {
    let dir = std::env::temp_dir().join(format!("mm-sled-layout-{name}-{}", std::process::id()));
    let db = sled::Config::new()
        .path(&dir)
        .cache_capacity(32 << 20)
        .segment_size(layout.segment_kib * 1024)
        .flush_every_ms(layout.gc_ms)
        .open()?;
    let mut r = Run {
        tree: db.open_tree("t")?,
        layout,
        singles: HashMap::new(),
        lists: HashMap::new(),
    };
    let start = Instant::now();
    let event_bytes = r.layout.event_bytes as u64;
    println!("{name}:");
    for i in 1..=ops {
        r.write_op(i)?;
        if i % FLUSH_EVERY == 0 {
            db.flush()?;
        }
        if i % REPORT_EVERY == 0 {
            let folder = folder_bytes(&dir)? as f64;
            let logical = (i * (event_bytes + 9)) as f64;
            println!(
                "  {i:>9} ops  VmRSS {:>4} MiB  {:>5.1} s  folder {:>6.1} MiB = {:.2} x logical",
                vm_rss_mib(),
                start.elapsed().as_secs_f64(),
                folder / (1 << 20) as f64,
                folder / logical
            );
        }
    }
    drop(r);
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Bytes the files below `path` take on disk.
fn folder_bytes(path: &std::path::Path) -> std::io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            folder_bytes(&entry.path())?
        } else {
            meta.blocks() * 512
        };
    }
    Ok(total)
}

fn main() -> sled::Result<()> {
    let mut ops = 1_500_000;
    let mut chunk = 16;
    let mut list = 16;
    let mut gc_ms = 2;
    let (mut rooms, mut users, mut event_bytes, mut segment_kib) = (200, 50, 400, 512);
    let mut layouts = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ops" => ops = args.next().and_then(|v| v.parse().ok()).expect("--ops N"),
            "--chunk" => chunk = args.next().and_then(|v| v.parse().ok()).expect("--chunk K"),
            "--list" => list = args.next().and_then(|v| v.parse().ok()).expect("--list L"),
            "--gc-ms" => gc_ms = args.next().and_then(|v| v.parse().ok()).expect("--gc-ms MS"),
            "--rooms" => rooms = args.next().and_then(|v| v.parse().ok()).expect("--rooms N"),
            "--users" => users = args.next().and_then(|v| v.parse().ok()).expect("--users N"),
            "--event-bytes" => event_bytes = args.next().and_then(|v| v.parse().ok()).expect("--event-bytes B"),
            "--segment-kib" => segment_kib = args.next().and_then(|v| v.parse().ok()).expect("--segment-kib K"),
            "--bench" => {}
            l => layouts.push(l.to_string()),
        }
    }
    if layouts.is_empty() {
        layouts = ["single", "history-lists", "event-chunks", "both"]
            .map(String::from)
            .to_vec();
    }
    for name in layouts {
        let (event_chunks, history_lists) = match name.as_str() {
            "single" => (false, false),
            "history-lists" => (false, true),
            "event-chunks" => (true, false),
            "both" => (true, true),
            other => panic!("unknown layout {other}"),
        };
        // Each layout in its own process, so one's heap does not count for the next.
        if std::env::var_os("MM_SLED_LAYOUT_CHILD").is_some() {
            return run(
                &name,
                Layout {
                    event_chunks,
                    history_lists,
                    chunk,
                    list,
                    gc_ms: (gc_ms > 0).then_some(gc_ms),
                    rooms,
                    users,
                    event_bytes,
                    segment_kib,
                },
                ops,
            );
        }
        let status = std::process::Command::new(std::env::current_exe()?)
            .args(["--ops", &ops.to_string(), "--chunk", &chunk.to_string()])
            .args(["--list", &list.to_string(), "--gc-ms", &gc_ms.to_string()])
            .args(["--rooms", &rooms.to_string(), "--users", &users.to_string()])
            .args([
                "--event-bytes",
                &event_bytes.to_string(),
                "--segment-kib",
                &segment_kib.to_string(),
                &name,
            ])
            .env("MM_SLED_LAYOUT_CHILD", "1")
            .status()?;
        assert!(status.success(), "{name}: {status}");
    }
    Ok(())
}
