//! The binary's command line: `matrix-membership [FLAGS]` serves, and so does
//! `matrix-membership serve [FLAGS]`; every other subcommand is one variant
//! of [`Command`] with its own arguments, run by one arm in `main`.

use crate::config::{example::default_text, SettingsArgs, FLAG_KEYS};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// matrix-membership: a Matrix room-membership homeserver on an embedded sled database.
///
/// With no subcommand it serves, taking the flags of `serve`.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Cli {
    /// Serving flags, for when no subcommand is given.
    #[command(flatten)]
    pub serve: SettingsArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the binary is asked to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the Matrix API (what the binary does with no subcommand).
    Serve(Box<SettingsArgs>),
    /// The config file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Admin work on a stopped server's data folder, and backups of a running one.
    /// The settings flags (`--data-dir`, `--config`, …) come before it.
    #[command(flatten)]
    Admin(crate::admin::cli::Command),
}

/// `matrix-membership config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a sample config file with every key at its default.
    Example,
    /// Print the settings the other flags, the environment and `--config` add up to, as TOML.
    Show(Box<SettingsArgs>),
}

impl Cli {
    /// Parses the process's arguments; exits with clap's message on a bad one.
    /// Returns the command and the settings flags given before it.
    pub fn parse_args() -> (Command, SettingsArgs) {
        Self::parse_from_args(std::env::args_os())
    }

    /// Parses `args` (the program name first); exits with clap's message on a bad one.
    pub fn parse_from_args<I, T>(args: I) -> (Command, SettingsArgs)
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = with_defaults_in_help(Cli::command());
        let matches = command.clone().get_matches_from(args);
        let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        match cli.command {
            None => (Command::Serve(Box::new(cli.serve)), SettingsArgs::default()),
            // `serve` and `config show` take their own flags; ones before
            // them would be silently ignored.
            Some(Command::Serve(_) | Command::Config(_)) if flags_given(&matches) => command
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    "settings flags go after `serve` or `config show`, not before",
                )
                .exit(),
            Some(c) => (c, cli.serve),
        }
    }
}

/// Whether a settings flag was given on the command line before the
/// subcommand (the environment fills both levels, so it does not count).
fn flags_given(matches: &clap::ArgMatches) -> bool {
    matches
        .ids()
        .any(|id| matches.value_source(id.as_str()) == Some(clap::parser::ValueSource::CommandLine))
}

/// `--help` shows each settings flag's default. Clap's own `default_value`
/// would hide whether a flag was given, which decides whether the file's
/// value stands; so the defaults come from `Settings::default()`.
fn with_defaults_in_help(mut command: clap::Command) -> clap::Command {
    for (flag, _) in FLAG_KEYS {
        let Some(default) = default_text(flag) else { continue };
        if command.get_arguments().any(|a| a.get_id() == *flag) {
            command = command.mut_arg(*flag, |arg| {
                let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
                arg.help(format!("{help} [default: {default}]"))
            });
        }
    }
    let names: Vec<String> = command.get_subcommands().map(|s| s.get_name().to_string()).collect();
    for name in names {
        command = command.mut_subcommand(name, with_defaults_in_help);
    }
    command
}
