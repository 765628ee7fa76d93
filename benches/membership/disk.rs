//! The server's data folder against what it was asked to keep: bytes on disk
//! per acknowledged write, and the folder as a multiple of the logical data.

use super::ledger::Ledger;
use super::logical::Events;
use std::path::Path;

const MIB: f64 = 1024.0 * 1024.0;

/// Bytes a folder takes on disk (allocated blocks, as `du` counts) and its
/// files' apparent length, summed over everything below it.
pub fn folder_bytes(path: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (mut allocated, mut apparent) = (0, 0);
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            let (a, b) = folder_bytes(&entry.path())?;
            allocated += a;
            apparent += b;
        } else {
            allocated += meta.blocks() * 512;
            apparent += meta.len();
        }
    }
    Ok((allocated, apparent))
}

/// Logical bytes: the events' JSON, plus what each account and alias is.
pub fn logical_bytes(events: &Events, ledger: &Ledger) -> u64 {
    events.bytes + ledger.account_bytes() + ledger.alias_bytes()
}

/// Prints the disk figures; returns folder / logical.
pub fn report(folder: Option<&Path>, events: &Events, ledger: &Ledger) -> Option<f64> {
    let logical = logical_bytes(events, ledger);
    println!(
        "logical data:  {:.1} MiB = {} events as compact JSON ({:.1} MiB, {:.0} bytes each) + {} accounts' user id, access token and device id ({:.1} MiB) + aliases ({} bytes)",
        logical as f64 / MIB,
        events.count,
        events.bytes as f64 / MIB,
        events.bytes as f64 / events.count.max(1) as f64,
        ledger.accounts(),
        ledger.account_bytes() as f64 / MIB,
        ledger.alias_bytes()
    );
    println!(
        "acknowledged writes: {} (registrations, room creations, membership changes and messages answered 2xx, warm-ups and set-up included)",
        ledger.writes()
    );
    // Every acknowledged write but a registration adds one event at least
    // (createRoom several), so fewer events than that means the read-back missed some.
    let event_writes = ledger.writes().saturating_sub(ledger.accounts());
    if events.count < event_writes {
        println!(
            "warning:       {} events read back, fewer than the {event_writes} acknowledged writes that each add one: the logical figure is short",
            events.count
        );
    }
    let Some(folder) = folder else {
        println!("data folder:   not measured (give --data-dir PATH with --url)");
        return None;
    };
    let (allocated, apparent) = match folder_bytes(folder) {
        Ok(sizes) => sizes,
        Err(e) => {
            println!("data folder:   could not be measured: {}: {e}", folder.display());
            return None;
        }
    };
    println!(
        "data folder:   {:.1} MiB on disk (allocated blocks), {:.1} MiB apparent, {}",
        allocated as f64 / MIB,
        apparent as f64 / MIB,
        folder.display()
    );
    println!(
        "bytes on disk: {:.0} per acknowledged write, {:.0} per event held",
        allocated as f64 / ledger.writes().max(1) as f64,
        allocated as f64 / events.count.max(1) as f64
    );
    let ratio = allocated as f64 / logical.max(1) as f64;
    println!("folder / logical data: {ratio:.2}×");
    Some(ratio)
}
