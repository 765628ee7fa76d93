//! `backup DIR --url URL --admin-token T`: asks a running server, through
//! the admin API, to write a consistent snapshot into DIR on its own host.
//!
//! The server writes the folder, not this command, because the snapshot is
//! taken on the store's writer and every generated response is one JSON
//! document: streaming gigabytes back would need a body the spec-first edge
//! does not describe. Run it on the server's host, or name a folder the
//! server's host mounts (a backup volume).

use crate::generated::api::AdminBackupResponse;
use crate::generated::client::Client;
use crate::generated::models;
use std::path::Path;

/// Runs `backup`.
pub async fn run(dir: &Path, url: &str, admin_token: &str) -> Result<(), String> {
    let dir = std::path::absolute(dir).map_err(|e| format!("cannot make {} absolute: {e}", dir.display()))?;
    let client = Client::new(url).with_access_token(admin_token);
    let body = models::AdminBackupBody {
        dir: dir.display().to_string(),
    };
    let answer = client
        .admin_backup(&body)
        .await
        .map_err(|e| format!("asking {url} for a backup failed: {e}"))?;
    let refused = |status: u16, e: models::Error| {
        format!(
            "{url} refused the backup: {status} {}: {}",
            e.errcode,
            e.error.unwrap_or_default()
        )
    };
    match answer {
        AdminBackupResponse::Ok(ok) => {
            println!(
                "backup written: {} ({} records, stream position {})",
                ok.file, ok.records, ok.stream_position
            );
            Ok(())
        }
        AdminBackupResponse::BadRequest(e) => Err(refused(400, e)),
        AdminBackupResponse::Unauthorized(e) => Err(refused(401, e)),
        AdminBackupResponse::Forbidden(e) => Err(refused(403, e)),
        AdminBackupResponse::PayloadTooLarge(e) => Err(refused(413, e)),
    }
}
