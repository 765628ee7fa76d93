//! Reading the TOML config file. Every error names the file and, where one
//! is to blame, the key as `section.key`.

use super::args::FLAG_KEYS;
use super::settings::Settings;
use super::ConfigError;
use std::path::Path;

/// The settings the file at `path` sets, defaults for every key it leaves out.
pub fn read(path: &Path) -> Result<Settings, ConfigError> {
    let fail = |what: String| ConfigError(format!("config file {}: {what}", path.display()));
    let text = std::fs::read_to_string(path).map_err(|e| fail(format!("cannot be read: {e}")))?;
    parse(&text).map_err(fail)
}

/// The settings in `text`; the error says what is wrong and at which key.
pub fn parse(text: &str) -> Result<Settings, String> {
    let table: toml::Table = text.parse().map_err(|e| format!("is not valid TOML: {e}"))?;
    check_keys(&table)?;
    serde_path_to_error::deserialize(toml::Value::Table(table))
        .map_err(|e| format!("{}: {}", e.path(), e.inner().message()))
}

/// Every section a table and every key a known key, so that a misspelt key
/// fails the start instead of being silently ignored.
fn check_keys(table: &toml::Table) -> Result<(), String> {
    for (section, value) in table {
        let keys: Vec<&str> = FLAG_KEYS
            .iter()
            .filter_map(|(_, key)| key.strip_prefix(section.as_str())?.strip_prefix('.'))
            .collect();
        if keys.is_empty() {
            return Err(format!(
                "{section}: unknown section or key; every key belongs in one of [server], [database], [limits], \
                 [registration] and [logging]"
            ));
        }
        let Some(entries) = value.as_table() else {
            return Err(format!("{section}: must be a section ([{section}]), not a value"));
        };
        if let Some(unknown) = entries.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(format!(
                "{section}.{unknown}: unknown key; [{section}] has {}",
                keys.join(", ")
            ));
        }
    }
    Ok(())
}
