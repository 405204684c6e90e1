//! What both binaries (the worker and the operator) do the same way as processes: log format and the
//! shutdown signal.

/// Log format: `text` for a terminal, `json` for a log pipeline.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Logs to stderr at the level `RUST_LOG` asks for (default `info`). Colours only on a terminal: a pod's log,
/// a file or a pipe gets plain text that `grep` and log pipelines read as written.
pub fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Logs to `file` instead, at the same level and without colours: for a command whose terminal shows
/// something else (the demo's progress line).
pub fn init_logging_to_file(format: LogFormat, file: std::fs::File) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter())
        .with_writer(std::sync::Mutex::new(file))
        .with_ansi(false);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn env_filter() -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())
}

/// Resolves on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
    }
}
