//! `import FILE`: rebuilds a database from an export into an empty data
//! folder. The file is checked as it is read: a header of a known version
//! first, an end record counting every line last, each room's events in
//! increasing stream order and at or below the header's stream end.

use super::data_dir::{self, Missing};
use crate::config::Settings;
use crate::store::export::{Record, FORMAT, VERSION};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

/// Records handed to the store per write.
const CHUNK: usize = 1000;

/// Checks each record against the ones before it.
#[derive(Default)]
struct Checker {
    lines: u64,
    stream_end: Option<u64>,
    last_pos: HashMap<String, u64>,
    ended: bool,
}

impl Checker {
    fn check(&mut self, record: &Record) -> Result<(), String> {
        self.lines += 1;
        if self.ended {
            return Err("a record follows the end record".into());
        }
        match (record, self.stream_end) {
            (Record::Header { format, version, .. }, None) if format != FORMAT || *version != VERSION => Err(format!(
                "the file is {format:?} version {version}; this server reads {FORMAT:?} version {VERSION}"
            )),
            (Record::Header { stream_end, .. }, None) => {
                self.stream_end = Some(*stream_end);
                Ok(())
            }
            (_, None) => Err("the first line is not a header; is this an export file?".into()),
            (Record::Header { .. }, Some(_)) => Err("a second header".into()),
            (
                Record::Event {
                    room_id, stream_pos, ..
                },
                Some(end),
            ) => {
                if *stream_pos > end || *stream_pos == 0 {
                    return Err(format!("event at position {stream_pos} is outside 1..={end}"));
                }
                let last = self.last_pos.entry(room_id.clone()).or_insert(0);
                if *stream_pos <= *last {
                    return Err(format!("the events of {room_id} are not in stream order"));
                }
                *last = *stream_pos;
                Ok(())
            }
            (Record::End { records }, Some(_)) => {
                self.ended = true;
                if *records != self.lines {
                    return Err(format!(
                        "the end record counts {records} lines, the file has {}",
                        self.lines
                    ));
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// Every record of `file`, checked, handed to `each` in order.
async fn read_records<F, Fut>(file: &Path, mut each: F) -> Result<u64, String>
where
    F: FnMut(Record) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let input = std::fs::File::open(file).map_err(|e| format!("cannot open {}: {e}", file.display()))?;
    let mut checker = Checker::default();
    for (n, line) in std::io::BufReader::new(input).lines().enumerate() {
        let at = |what: String| format!("{} line {}: {what}", file.display(), n + 1);
        let line = line.map_err(|e| at(e.to_string()))?;
        let record: Record = serde_json::from_str(&line).map_err(|e| at(e.to_string()))?;
        checker.check(&record).map_err(at)?;
        each(record).await?;
    }
    if !checker.ended {
        return Err(format!(
            "{} ends without its end record: it is truncated",
            file.display()
        ));
    }
    Ok(checker.lines)
}

/// Runs `import`: the whole file is checked first, so a bad or truncated
/// one leaves the data folder untouched.
pub async fn run(file: &Path, config: &Settings) -> Result<(), String> {
    read_records(file, |_| async { Ok(()) }).await?;
    if config.database.url.is_none() && !data_dir::is_missing_or_empty(&config.database.data_dir)? {
        return Err(format!(
            "the data folder {} is not empty; import only into a new or empty folder",
            config.database.data_dir.display()
        ));
    }
    let service = data_dir::open(config, Missing::Create)?;
    let store = service.store();
    if !store.is_empty().await.map_err(|e| e.to_string())? {
        return Err(match &config.database.url {
            Some(url) => format!(
                "the database {} is not empty; import only into an empty database",
                crate::store::pg::redacted(url)
            ),
            None => format!(
                "the data folder {} already holds data",
                config.database.data_dir.display()
            ),
        });
    }
    let chunk = std::cell::RefCell::new(Vec::with_capacity(CHUNK));
    let lines = read_records(file, |record| {
        // One borrow for both: a shared one held across the take panicked
        // ("already borrowed") on the CHUNK-th record, so any file that long.
        let full = {
            let mut pending = chunk.borrow_mut();
            pending.push(record);
            (pending.len() == CHUNK).then(|| std::mem::take(&mut *pending))
        };
        async move {
            match full {
                Some(records) => store.import(records).await.map_err(|e| e.to_string()),
                None => Ok(()),
            }
        }
    })
    .await
    .map_err(|e| match &config.database.url {
        Some(url) => format!(
            "{e}; the database {} holds a partial import: drop and recreate it",
            crate::store::pg::redacted(url)
        ),
        None => format!(
            "{e}; the data folder {} holds a partial import: delete it",
            config.database.data_dir.display()
        ),
    })?;
    store.import(chunk.take()).await.map_err(|e| e.to_string())?;
    super::users::finish(&service)?;
    match &config.database.url {
        Some(url) => println!("imported {lines} records into {}", crate::store::pg::redacted(url)),
        None => println!("imported {lines} records into {}", config.database.data_dir.display()),
    }
    Ok(())
}
