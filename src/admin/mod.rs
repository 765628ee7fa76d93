//! The admin command line: subcommands of the server binary that work on a
//! stopped server's data folder (users, rooms, export, import), and
//! `backup`, which asks a running server for a snapshot.
//!
//! Everything goes through the service and the `Store` trait, as the
//! server's own requests do; nothing here reads or writes keys.

pub mod backup;
pub mod cli;
pub mod data_dir;
pub mod export;
pub mod import;
pub mod rooms;
pub mod users;

use crate::config::Settings;
use cli::Command;

/// Runs one admin command; the `Err` is the sentence to print.
pub async fn run(command: Command, config: &Settings) -> Result<(), String> {
    match command {
        Command::User(command) => users::run(command, config).await,
        Command::Room(command) => rooms::run(command, config).await,
        Command::Export { file } => export::run(&file, config).await,
        Command::Import { file } => import::run(&file, config).await,
        Command::Backup { dir, url, admin_token } => backup::run(&dir, &url, &admin_token).await,
    }
}
