//! The server binary: parse configuration, open the store, serve until a signal.

use clap::Parser;
use matrix_membership::config::Config;
use matrix_membership::http::server::{serve, Edge, EdgeConfig};
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
        EdgeConfig {
            body_limit: config.body_limit,
        },
    ));
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
