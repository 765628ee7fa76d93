//! The admin subcommands as clap parses them. The server's own flags
//! (`--data-dir`, `--server-name`, …) come before the subcommand.

use clap::Subcommand;
use std::path::PathBuf;

/// An admin command instead of serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Manage accounts in a stopped server's data folder.
    #[command(subcommand)]
    User(UserCommand),
    /// Inspect rooms in a stopped server's data folder.
    #[command(subcommand)]
    Room(RoomCommand),
    /// Write every account, room and event of a stopped server's data folder to FILE (JSON Lines).
    Export {
        /// The file to write; it must not exist.
        file: PathBuf,
    },
    /// Rebuild a database from an export or backup file, into an empty --data-dir.
    Import {
        /// An export file, or the `matrix-membership.jsonl` of a backup folder.
        file: PathBuf,
    },
    /// Ask a running server to write a consistent snapshot into DIR, on the server's host.
    Backup {
        /// The folder to write, new or empty; made absolute against this command's working folder.
        dir: PathBuf,
        /// The running server's base URL, e.g. http://127.0.0.1:8008.
        #[arg(long)]
        url: String,
        /// An access token of an admin account.
        #[arg(long, env = "MATRIX_MEMBERSHIP_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: String,
    },
}

/// `user …`.
#[derive(Debug, Clone, Subcommand)]
pub enum UserCommand {
    /// Create an account (registration's username rules; open or closed registration alike).
    Create {
        /// A localpart (`alice`) or a user id on --server-name (`@alice:example.org`).
        name: String,
        /// Read the password from the first line of standard input, instead of generating and printing one.
        #[arg(long)]
        password_stdin: bool,
        /// Make the account a server admin (it may call the admin API, e.g. `backup`).
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password, read from the first line of standard input; ends every session of the user.
    ResetPassword {
        name: String,
        /// Keep the user's sessions (access tokens) working.
        #[arg(long)]
        keep_sessions: bool,
    },
    /// Deactivate an account: revoke its tokens, refuse its logins, leave every room.
    Deactivate { name: String },
    /// List every account with its admin and deactivated flags.
    List,
}

/// `room …`.
#[derive(Debug, Clone, Subcommand)]
pub enum RoomCommand {
    /// List every room: id, name, aliases, member counts.
    List,
    /// Show a room's current state and members.
    Show {
        /// A room id or an alias.
        room: String,
    },
}
