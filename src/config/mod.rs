//! Configuration: defaults, then the TOML file, then environment variables,
//! then flags, each overriding the one before; the result is a plain
//! [`Settings`], which is all the library sees.

mod args;
pub mod example;
mod file;
mod settings;
pub mod values;

pub use args::{settings_from_args, SettingsArgs, FLAGS_WITHOUT_KEYS, FLAG_KEYS};
pub use file::parse as parse_file;
pub use settings::*;

/// Why the configuration could not be loaded; the message names the file and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}
