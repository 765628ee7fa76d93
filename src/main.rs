//! The server binary: parse the command line; to serve, load the settings,
//! open the store and serve until a signal.

use matrix_membership::admin;
use matrix_membership::cli::{Cli, Command, ConfigCommand};
use matrix_membership::config::{example, Settings, SettingsArgs};
use matrix_membership::http::server::{serve, Edge, EdgeConfig};
use matrix_membership::metrics;
use matrix_membership::service::Service;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// jemalloc rather than glibc's malloc: glibc kept what each of its
/// per-thread arenas ever grew to, so the server's RSS crept up over a soak
/// while its live heap stayed level (heaptrack), and the mixed run spent more
/// CPU per op. See README, "Memory over time".
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, read once when it starts (`_RJEM_MALLOC_CONF` in the
/// environment overrides them). Its background thread purges freed pages
/// over about a second (`dirty_decay_ms`) and hands them straight back to the
/// kernel (`muzzy_decay_ms:0`), so RSS follows the live heap. Two arenas, not
/// four per core: in 5-minute soaks minute 2's mean RSS was 99.6 MiB with two
/// and 108.6 MiB with jemalloc's defaults.
#[cfg(not(target_env = "msvc"))]
#[export_name = "_rjem_malloc_conf"]
pub static MALLOC_CONF: Option<&'static u8> =
    Some(&b"background_thread:true,narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0\0"[0]);

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Raises the soft limit on open files to the hard one, as servers do: the
/// soft default (often 1,024) is below the connection cap. Warns when the cap
/// still does not fit; accept then backs off at the limit instead.
fn check_descriptors(max_connections: usize) {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct we pass.
        let soft = unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return;
            }
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
            limit.rlim_cur
        };
        // The database, the runtime and the listener need some descriptors too.
        let spare = 64;
        if (max_connections as u64).saturating_add(spare) > soft {
            tracing::warn!(
                "--max-connections {max_connections} is above what the open-file limit of {soft} leaves \
                 for connections; accept will back off at that limit"
            );
        }
    }
}

fn main() -> ExitCode {
    let (command, before) = Cli::parse_args();
    match command {
        Command::Serve(args) => run_serve(&args),
        Command::Admin(command) => run_admin(command, &before),
        Command::Config(ConfigCommand::Example) => {
            print!("{}", example::example());
            ExitCode::SUCCESS
        }
        Command::Config(ConfigCommand::Show(args)) => match args.settings() {
            Ok(settings) => {
                print!("{}", toml::to_string(&settings).expect("the settings are TOML"));
                ExitCode::SUCCESS
            }
            Err(e) => fail(&e),
        },
    }
}

/// Runs an admin command with the settings flags given before it.
fn run_admin(command: admin::cli::Command, args: &SettingsArgs) -> ExitCode {
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(e) => return fail(&e),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(admin::run(command, &settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(why) => fail(&why),
    }
}

/// The async runtime, or the exit code after saying why there is none.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Runtime::new().map_err(|e| fail(&format!("cannot start the async runtime: {e}")))
}

/// Reports a start-up failure on stderr; exit status 1.
fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("matrix-membership: {error}");
    ExitCode::FAILURE
}

/// Loads the settings, starts logging, and serves until SIGINT or SIGTERM.
fn run_serve(args: &SettingsArgs) -> ExitCode {
    let settings = match args.settings() {
        Ok(settings) => settings,
        Err(e) => return fail(&e),
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Held to the end of main: dropping it flushes the lines still queued.
    let _log_guard = match matrix_membership::logging::install(&settings.logging, std::io::stderr(), ansi) {
        Ok(guard) => guard,
        Err(e) => return fail(&e),
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(serve_until_signal(settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn serve_until_signal(mut settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    matrix_membership::service::registration::warn_if_registration_is_exposed(&settings);
    check_descriptors(settings.server.max_connections);
    let listener = TcpListener::bind(settings.server.bind).await?;
    if settings.server.public_base_url.is_none() {
        // The address really bound (a port of 0 picks a free one).
        settings.server.public_base_url = Some(format!("http://{}", listener.local_addr()?));
    }
    let service = Arc::new(Service::open(&settings)?);
    let data = match &settings.database.url {
        Some(url) => format!("database {}", matrix_membership::store::pg::redacted(url)),
        None => format!("data in {}", settings.database.data_dir.display()),
    };
    println!(
        "matrix-membership listening on http://{} (server name {}, {data})",
        listener.local_addr()?,
        settings.server.server_name,
    );
    let edge = Arc::new(Edge::new(
        service.clone(),
        EdgeConfig::from(&settings.server),
        service.metrics().clone(),
    ));
    if let Some(addr) = settings.server.metrics_bind {
        let metrics_listener = TcpListener::bind(addr).await?;
        println!(
            "metrics on http://{}{}",
            metrics_listener.local_addr()?,
            metrics::endpoint::PATH
        );
        // Served until the process ends: scrapes during shutdown still answer.
        let metrics = service.metrics().clone();
        tokio::spawn(metrics::endpoint::serve(
            metrics_listener,
            metrics,
            std::future::pending(),
        ));
    }
    let stopping = {
        let service = service.clone();
        async move {
            shutdown_signal().await;
            service.end_waiting_syncs();
        }
    };
    serve(listener, edge, stopping, Duration::from_secs(10)).await;
    service.flush()?;
    tracing::info!("stopped; database flushed");
    Ok(())
}
