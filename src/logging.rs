//! Where log lines go and in what form. The request line itself is written
//! by the edge (`http::server`); this decides text or JSON, the filter, and
//! that writing never waits on the output.

use crate::config::{LogFormat, LoggingSettings};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Lines buffered for the writer thread (tracing-appender's default).
const BUFFERED_LINES: usize = 128_000;

/// Installs the global subscriber writing to `output` through a writer
/// thread; keep the guard alive as long as lines should be written (its drop
/// flushes what is buffered).
///
/// A request hands its line to a bounded queue and goes on; a thread writes
/// the queue out. The queue is not lossy: should the output stall for longer
/// than 128,000 lines take to log, requests wait rather than lose lines, since
/// an operator reading the log of an incident needs every line of it.
pub fn install<W>(settings: &LoggingSettings, output: W, ansi: bool) -> Result<WorkerGuard, String>
where
    W: std::io::Write + Send + 'static,
{
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("log-writer")
        .finish(output);
    let filter = EnvFilter::builder()
        .parse(&settings.filter)
        .map_err(|e| format!("logging.filter {:?}: {e}", settings.filter))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let installed = match settings.format {
        LogFormat::Text => builder.with_ansi(ansi).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
    };
    installed.map_err(|e| format!("a log subscriber is already installed: {e}"))?;
    Ok(guard)
}
