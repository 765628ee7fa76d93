//! `matrix-membership config example`: a sample config file with every key
//! at its default, each commented with its flag's help, made from the same
//! table and defaults the server reads, so it cannot drift from them.

use super::args::{SettingsArgs, FLAG_KEYS};
use super::settings::Settings;
use clap::CommandFactory;

/// What each section is for, in the file's order.
const SECTIONS: &[(&str, &str)] = &[
    (
        "server",
        "Where the server listens, its name, and what one client may make it hold.",
    ),
    (
        "database",
        "The database: sled in a folder (the default), or PostgreSQL.",
    ),
    (
        "limits",
        "Rate limits (events per second, 0 turns one off; burst) and the password pool.",
    ),
    ("registration", "Who may register, and registration sessions."),
    ("logging", "Log lines go to stderr."),
];

/// Keys with no default value, commented out with a value to show their form.
const UNSET_EXAMPLES: &[(&str, &str)] = &[
    ("server.public_base_url", "\"https://matrix.example.org\""),
    ("server.metrics_bind", "\"127.0.0.1:9090\""),
    ("database.url", "\"postgres://matrix:secret@127.0.0.1:5432/matrix\""),
];

/// The defaults as TOML values, by section and key.
pub fn defaults() -> toml::Table {
    toml::Table::try_from(Settings::default()).expect("the settings are TOML")
}

/// The default of a flag as `--help` shows it (`127.0.0.1:8008`, `10s`), if it has one.
pub fn default_text(flag: &str) -> Option<String> {
    let (_, key) = FLAG_KEYS.iter().find(|(f, _)| *f == flag)?;
    let (section, key) = key.split_once('.')?;
    match defaults().get(section)?.get(key)? {
        toml::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// The sample config file.
pub fn example() -> String {
    let command = SettingsArgs::command();
    let defaults = defaults();
    let mut out = String::from(
        "# matrix-membership config file. Every key is optional and shown at its\n\
         # default. Precedence: flags, then environment variables, then this file,\n\
         # then the defaults. Start with: matrix-membership --config FILE\n",
    );
    for (section, about) in SECTIONS {
        out.push_str(&format!("\n# {about}\n[{section}]\n"));
        for (flag, key) in FLAG_KEYS {
            let Some(name) = key.strip_prefix(section).and_then(|k| k.strip_prefix('.')) else {
                continue;
            };
            let arg = command
                .get_arguments()
                .find(|a| a.get_id() == *flag)
                .expect("every key's flag exists");
            let help = arg
                .get_long_help()
                .or(arg.get_help())
                .map(|h| h.to_string())
                .unwrap_or_default();
            for line in wrap(&help, 76) {
                out.push_str(&format!("# {line}\n"));
            }
            let env = arg.get_env().map(|e| e.to_string_lossy().into_owned());
            out.push_str(&format!(
                "# (flag --{}{})\n",
                arg.get_long().unwrap_or(flag),
                env.map(|e| format!(", environment {e}")).unwrap_or_default()
            ));
            match defaults.get(*section).and_then(|s| s.get(name)) {
                Some(value) => out.push_str(&format!("{name} = {value}\n")),
                None => {
                    let shown = UNSET_EXAMPLES.iter().find(|(k, _)| k == key).map_or("\"\"", |(_, v)| v);
                    out.push_str(&format!("# {name} = {shown}\n"));
                }
            }
        }
    }
    out
}

/// `text` in lines of at most `width` characters, broken between words.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for paragraph in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            if !line.is_empty() && line.len() + 1 + word.len() > width {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}
