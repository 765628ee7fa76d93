//! Opening a stopped server's data folder for an admin command.

use crate::config::Settings;
use crate::service::Service;
use std::path::Path;

/// Whether the command may start from a folder that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Create,
    Refuse,
}

/// The service over `--data-dir` (or `--database-url`). A folder a running server holds is
/// refused with a sentence that says what to do instead.
pub fn open(config: &Settings, missing: Missing) -> Result<Service, String> {
    let dir = &config.database.data_dir;
    if missing == Missing::Refuse && config.database.url.is_none() && !dir.exists() {
        return Err(format!(
            "there is no data folder at {}; name the server's with --data-dir (before the subcommand)",
            dir.display()
        ));
    }
    Service::open(config).map_err(|e| e.to_string())
}

/// Whether `dir` is missing or an empty folder.
pub fn is_missing_or_empty(dir: &Path) -> Result<bool, String> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(format!("cannot read {}: {e}", dir.display())),
    }
}
