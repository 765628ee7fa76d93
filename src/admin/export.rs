//! `export FILE`: everything in a stopped server's data folder, as JSON Lines.

use super::data_dir::{self, Missing};
use crate::config::Settings;
use std::path::Path;

/// Runs `export`.
pub async fn run(file: &Path, config: &Settings) -> Result<(), String> {
    let service = data_dir::open(config, Missing::Refuse)?;
    let summary = service.export_to_file(file).await.map_err(|e| e.message)?;
    println!(
        "exported {} records up to stream position {} to {}",
        summary.records,
        summary.stream_position,
        file.display()
    );
    Ok(())
}
