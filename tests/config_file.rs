//! The config file: precedence (flags, environment, file, defaults), an
//! error naming the key and the file for every kind of bad value, the sample
//! `config example` prints, and the `serve` / no-subcommand structure.

mod common;

use clap::CommandFactory;
use matrix_membership::config::example::{defaults, example};
use matrix_membership::config::{
    parse_file, settings_from_args, LogFormat, RegistrationMode, Settings, SettingsArgs, FLAGS_WITHOUT_KEYS, FLAG_KEYS,
};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_matrix-membership");

/// The binary with none of our variables inherited from the test's environment.
fn binary() -> Command {
    let mut command = Command::new(BIN);
    for (name, _) in std::env::vars() {
        if name.starts_with("MATRIX_MEMBERSHIP_") || name == "RUST_LOG" {
            command.env_remove(name);
        }
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.stdin(Stdio::null()).output().expect("run the binary")
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "exit {:?}, stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

/// A config file holding `text`, in its own folder.
fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("matrix-membership.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The error loading `text` as the config file gives; it must name the file.
fn file_error(text: &str) -> String {
    let (_dir, path) = config_file(text);
    let err = settings_from_args(["matrix-membership".as_ref(), "--config".as_ref(), path.as_os_str()])
        .expect_err(&format!("{text:?} must be refused"))
        .to_string();
    assert!(
        err.contains(&path.display().to_string()),
        "the error names the file: {err}"
    );
    err
}

#[test]
fn the_sample_config_parses_back_to_the_defaults() {
    let sample = example();
    assert_eq!(parse_file(&sample).expect("the sample parses"), Settings::default());
    // And it is what the binary prints.
    assert_eq!(stdout(&run(binary().args(["config", "example"]))), sample);
}

#[test]
fn every_flag_has_a_key_and_every_key_is_in_the_sample() {
    let command = SettingsArgs::command();
    let flags: BTreeSet<&str> = command
        .get_arguments()
        .map(|a| a.get_id().as_str())
        .filter(|id| !["help", "version"].contains(id))
        .collect();
    let mapped: BTreeSet<&str> = FLAG_KEYS.iter().map(|(flag, _)| *flag).collect();
    let without: BTreeSet<&str> = FLAGS_WITHOUT_KEYS.iter().copied().collect();
    assert_eq!(
        flags,
        mapped.union(&without).copied().collect(),
        "every flag mirrors a key, or is listed as having none"
    );
    for id in FLAGS_WITHOUT_KEYS.iter().filter(|id| **id != "config") {
        let arg = command.get_arguments().find(|a| a.get_id() == *id).unwrap();
        assert!(arg.is_hide_set(), "--{id} has no key, so it must be a hidden test hook");
    }

    // Every field of the settings is a key of the table, so no setting lacks a flag.
    let mut all_set = Settings::default();
    all_set.server.public_base_url = Some("https://matrix.example.org".into());
    all_set.server.metrics_bind = Some("127.0.0.1:9090".parse().unwrap());
    all_set.database.url = Some("postgres://matrix@127.0.0.1/matrix".into());
    let table = toml::Table::try_from(&all_set).unwrap();
    let fields: BTreeSet<String> = table
        .iter()
        .flat_map(|(section, keys)| keys.as_table().unwrap().keys().map(move |k| format!("{section}.{k}")))
        .collect();
    let keys: BTreeSet<String> = FLAG_KEYS.iter().map(|(_, key)| key.to_string()).collect();
    assert_eq!(fields, keys);

    let sample = example();
    let defaults = defaults();
    for (_, key) in FLAG_KEYS {
        let (section, name) = key.split_once('.').unwrap();
        let body = sample
            .split(&format!("[{section}]\n"))
            .nth(1)
            .expect("section in sample");
        let body = body.split("\n[").next().unwrap();
        let line = if defaults[section].get(name).is_some() {
            format!("\n{name} = ")
        } else {
            format!("\n# {name} = ")
        };
        assert!(body.contains(&line), "{key} is in the sample under [{section}]");
    }
}

#[test]
fn flags_beat_the_environment_which_beats_the_file_which_beats_the_defaults() {
    let (_dir, path) = config_file(
        r#"
[server]
server_name = "file.example"
[limits]
join_rate = 1.0
join_burst = 11
no_rate_limits = true
[registration]
mode = "closed"
[logging]
format = "json"
"#,
    );
    let out = stdout(&run(binary()
        .args([
            "config",
            "show",
            "--join-burst",
            "33",
            "--no-rate-limits=false",
            "--config",
        ])
        .arg(&path)
        .env("MATRIX_MEMBERSHIP_JOIN_RATE", "2.5")
        .env("MATRIX_MEMBERSHIP_JOIN_BURST", "22")
        .env("MATRIX_MEMBERSHIP_REGISTRATION", "open")));
    let shown: Settings = toml::from_str(&out).expect("config show prints settings");
    assert_eq!(shown.server.server_name, "file.example", "the file over the default");
    assert_eq!(shown.limits.join_rate, 2.5, "the environment over the file");
    assert_eq!(
        shown.limits.join_burst, 33,
        "the flag over the environment and the file"
    );
    assert!(!shown.limits.no_rate_limits, "--no-rate-limits=false over the file");
    assert_eq!(
        shown.registration.mode,
        RegistrationMode::Open,
        "the environment over the file"
    );
    assert_eq!(shown.logging.format, LogFormat::Json, "the file over the default");
    assert_eq!(
        shown.database,
        Settings::default().database,
        "untouched keys keep their defaults"
    );
    assert_eq!(shown.server.bind, Settings::default().server.bind);

    // The file itself may be named by the environment.
    let out = stdout(&run(binary()
        .args(["config", "show"])
        .env("MATRIX_MEMBERSHIP_CONFIG", &path)));
    let shown: Settings = toml::from_str(&out).unwrap();
    assert_eq!(shown.limits.join_burst, 11);
}

#[test]
fn durations_and_every_section_are_read_from_the_file() {
    let (_dir, path) = config_file(
        r#"
[server]
bind = "0.0.0.0:9000"
header_timeout = "500ms"
max_connections = 7
[database]
data_dir = "/var/lib/mm"
cache_mib = 128
[registration]
session_ttl = 60
[logging]
filter = "warn,matrix_membership=debug"
"#,
    );
    let s = settings_from_args(["matrix-membership".as_ref(), "--config".as_ref(), path.as_os_str()]).unwrap();
    assert_eq!(s.server.bind.to_string(), "0.0.0.0:9000");
    assert_eq!(s.server.header_timeout, Duration::from_millis(500));
    assert_eq!(s.server.max_connections, 7);
    assert_eq!(s.database.data_dir, Path::new("/var/lib/mm"));
    assert_eq!(s.database.cache_mib, 128);
    assert_eq!(s.registration.session_ttl, 60);
    assert_eq!(s.logging.filter, "warn,matrix_membership=debug");
}

#[test]
fn an_unknown_key_is_named_with_its_section() {
    let err = file_error("[server]\nbnd = \"127.0.0.1:8008\"\n");
    assert!(err.contains("server.bnd: unknown key") && err.contains("bind"), "{err}");
}

#[test]
fn an_unknown_section_or_top_level_key_is_named() {
    let err = file_error("[srever]\nbind = \"127.0.0.1:8008\"\n");
    assert!(err.contains("srever: unknown section or key"), "{err}");
    let err = file_error("bind = \"127.0.0.1:8008\"\n");
    assert!(err.contains("bind: unknown section or key"), "{err}");
}

#[test]
fn a_value_of_the_wrong_type_is_named() {
    let err = file_error("[limits]\njoin_burst = \"ten\"\n");
    assert!(err.contains("limits.join_burst: invalid type: string \"ten\""), "{err}");
    let err = file_error("[database]\ncache_mib = 1.5\n");
    assert!(err.contains("database.cache_mib: invalid type"), "{err}");
}

#[test]
fn a_bind_that_is_not_an_address_is_named() {
    let err = file_error("[server]\nbind = \"localhost\"\n");
    assert!(err.contains("server.bind: invalid socket address"), "{err}");
}

#[test]
fn a_negative_rate_is_named() {
    let err = file_error("[limits]\njoin_rate = -1.0\n");
    assert!(err.contains("limits.join_rate: -1 is not a rate"), "{err}");
    let err = file_error("[limits]\nlogin_failed_rate = nan\n");
    assert!(err.contains("limits.login_failed_rate: NaN is not a rate"), "{err}");
}

#[test]
fn a_zero_cache_is_named() {
    let err = file_error("[database]\ncache_mib = 0\n");
    assert!(
        err.contains("database.cache_mib: 0 is out of range: use 1 to 65536"),
        "{err}"
    );
}

#[test]
fn an_unparsable_or_zero_timeout_is_named() {
    let err = file_error("[server]\nheader_timeout = \"soon\"\n");
    assert!(
        err.contains("server.header_timeout: \"soon\" is not a duration"),
        "{err}"
    );
    let err = file_error("[server]\nidle_timeout = \"0s\"\n");
    assert!(err.contains("server.idle_timeout: \"0s\" must be more than 0"), "{err}");
}

#[test]
fn head_limits_out_of_range_are_named() {
    let err = file_error("[server]\nmax_header_bytes = 10\n");
    assert!(err.contains("server.max_header_bytes: 10 is out of range"), "{err}");
    let err = file_error("[server]\nmax_connections = -5\n");
    assert!(
        err.contains("server.max_connections: invalid value: integer `-5`"),
        "{err}"
    );
}

#[test]
fn an_unknown_enum_value_or_log_filter_is_named() {
    let err = file_error("[logging]\nformat = \"xml\"\n");
    assert!(err.contains("logging.format: unknown variant `xml`"), "{err}");
    let err = file_error("[registration]\nmode = \"invite\"\n");
    assert!(err.contains("registration.mode: unknown variant `invite`"), "{err}");
    let err = file_error("[logging]\nfilter = \"info,[\"\n");
    assert!(err.contains("logging.filter: \"info,[\" is not a log filter"), "{err}");
}

#[test]
fn a_file_that_is_not_toml_or_not_there_is_named() {
    let err = file_error("[server\nbind = 1\n");
    assert!(err.contains("is not valid TOML"), "{err}");
    let err = file_error("server = 1\n");
    assert!(err.contains("server: must be a section"), "{err}");
    let missing = Path::new("/nonexistent/matrix-membership.toml");
    let err = settings_from_args(["matrix-membership".as_ref(), "--config".as_ref(), missing.as_os_str()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("/nonexistent/matrix-membership.toml: cannot be read"),
        "{err}"
    );
}

#[test]
fn a_bad_config_file_stops_the_server_before_it_starts() {
    let (dir, path) = config_file("[limits]\njoin_rate = -1.0\n");
    let output = run(binary()
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .arg("--config")
        .arg(&path));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&path.display().to_string()) && stderr.contains("limits.join_rate"),
        "{stderr}"
    );
    assert!(!dir.path().join("data").exists(), "no database was opened");
}

#[test]
fn a_bad_flag_or_variable_value_is_refused_naming_the_flag() {
    let output = run(binary().args(["config", "show", "--join-rate=-1"]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--join-rate") && stderr.contains("is not a rate"),
        "{stderr}"
    );
    let output = run(binary()
        .args(["config", "show"])
        .env("MATRIX_MEMBERSHIP_CACHE_MIB", "0"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--cache-mib") && stderr.contains("out of range"),
        "{stderr}"
    );
}

#[test]
fn help_shows_each_default() {
    let help = stdout(&run(binary().arg("--help")));
    assert!(help.contains("[default: 127.0.0.1:8008]"), "{help}");
    assert!(help.contains("[default: 10s]"), "{help}");
    let help = stdout(&run(binary().args(["serve", "--help"])));
    assert!(help.contains("[default: ./data]"), "{help}");
}

/// Starts the binary with `args`, waits for its start-up line, stops it.
fn serves(args: &[&str]) -> String {
    let data = tempfile::tempdir().unwrap();
    let mut child = binary()
        .args(args)
        .args(["--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .args(common::database_args(data.path()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    line
}

#[test]
fn serve_is_the_default_and_an_explicit_subcommand() {
    assert!(serves(&[]).contains("listening on http://127.0.0.1:"));
    assert!(serves(&["serve"]).contains("listening on http://127.0.0.1:"));
    // Serving flags go after `serve`, not before it.
    let output = run(binary().args(["--bind", "127.0.0.1:0", "serve"]));
    assert!(!output.status.success());
}
