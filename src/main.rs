//! The server binary: parse configuration, open the store, serve until a signal.

use clap::Parser;
use matrix_membership::config::Config;
use matrix_membership::http::server::{serve, Edge, EdgeConfig};
use matrix_membership::metrics;
use matrix_membership::service::Service;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

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

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = Config::parse();
    matrix_membership::service::registration::warn_if_registration_is_exposed(&config);
    check_descriptors(config.max_connections);
    let listener = TcpListener::bind(config.bind).await?;
    if config.public_base_url.is_none() {
        // The address really bound (a port of 0 picks a free one).
        config.public_base_url = Some(format!("http://{}", listener.local_addr()?));
    }
    let service = Arc::new(Service::open(&config)?);
    println!(
        "matrix-membership listening on http://{} (server name {}, data in {})",
        listener.local_addr()?,
        config.server_name,
        config.data_dir.display()
    );
    let edge = Arc::new(Edge::new(
        service.clone(),
        EdgeConfig::from(&config),
        service.metrics().clone(),
    ));
    if let Some(addr) = config.metrics_bind {
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
