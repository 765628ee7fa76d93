//! Online backup (`POST /_matrix/membership/admin/v1/backup`) and export
//! files: a consistent snapshot of the store, written in the export format
//! into a file that appears under its final name only once it is complete
//! and on disk.
//!
//! The snapshot is taken by the store's writer between two batches
//! ([`crate::store::Store::export`]): every write acknowledged before the
//! request arrived was applied in an earlier batch, so it is in; a write
//! is applied whole or not at all, so none is in half. Reads go on while
//! it is read; writes wait.

use super::error::{ServiceError, ServiceResult};
use super::Service;
use crate::ids::UserId;
use crate::store::ExportSummary;
use std::path::{Path, PathBuf};

/// The file a backup writes inside its folder.
pub const BACKUP_FILE: &str = "matrix-membership.jsonl";

/// What a backup wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupWritten {
    pub file: PathBuf,
    pub summary: ExportSummary,
}

fn io_error(what: String) -> impl FnOnce(std::io::Error) -> ServiceError {
    move |e| ServiceError::internal(format!("{what}: {e}"))
}

/// A new or empty folder to back up into, created if missing.
fn prepare_backup_dir(dir: &Path) -> ServiceResult<()> {
    if !dir.is_absolute() {
        return Err(ServiceError::invalid_param(format!(
            "dir {} is not an absolute path; name the folder from the root of the server's file system",
            dir.display()
        )));
    }
    if dir.exists() && !dir.is_dir() {
        return Err(ServiceError::invalid_param(format!(
            "dir {} is not a folder",
            dir.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(io_error(format!("cannot create {}", dir.display())))?;
    let mut entries = std::fs::read_dir(dir).map_err(io_error(format!("cannot read {}", dir.display())))?;
    if entries.next().is_some() {
        return Err(ServiceError::invalid_param(format!(
            "dir {} is not empty; name a new or empty folder",
            dir.display()
        )));
    }
    Ok(())
}

/// Makes a rename inside `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

impl Service {
    /// Writes an export of everything to `path`, which must not exist: the
    /// data goes to `path.partial` first and is renamed once synced.
    pub async fn export_to_file(&self, path: &Path) -> ServiceResult<ExportSummary> {
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        let partial = PathBuf::from(partial);
        if path.exists() {
            return Err(ServiceError::invalid_param(format!(
                "{} exists already; name a new file",
                path.display()
            )));
        }
        let file =
            std::fs::File::create_new(&partial).map_err(io_error(format!("cannot create {}", partial.display())))?;
        let summary = match self.store.export(file).await {
            Ok(summary) => summary,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e.into());
            }
        };
        std::fs::rename(&partial, path).map_err(io_error(format!("cannot rename {}", partial.display())))?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            sync_dir(parent).map_err(io_error(format!("cannot sync {}", parent.display())))?;
        }
        Ok(summary)
    }

    /// The admin API's backup: `caller` must be a server admin, `dir` an
    /// absolute, new or empty folder on this host.
    pub async fn backup(&self, caller: &UserId, dir: &str) -> ServiceResult<BackupWritten> {
        self.require_admin(caller).await?;
        let dir = PathBuf::from(dir);
        prepare_backup_dir(&dir)?;
        let file = dir.join(BACKUP_FILE);
        let summary = self.export_to_file(&file).await?;
        tracing::info!(
            file = %file.display(),
            records = summary.records,
            stream_position = summary.stream_position,
            "backup written"
        );
        Ok(BackupWritten { file, summary })
    }
}
