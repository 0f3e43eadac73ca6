//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`),
//! as text or, with `CALSCAN_LOG_FORMAT=json`, one JSON object a line for
//! log collectors.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing. An unknown
/// `CALSCAN_LOG_FORMAT` is said, and text is used.
pub fn init() {
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let format = std::env::var("CALSCAN_LOG_FORMAT").unwrap_or_default();
    match format.trim().to_ascii_lowercase().as_str() {
        "json" => {
            let _ = tracing_subscriber::fmt()
                .json()
                .with_current_span(true)
                .with_env_filter(filter())
                .with_writer(std::io::stderr)
                .try_init();
        }
        text => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter())
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .try_init();
            if !matches!(text, "" | "text") {
                tracing::warn!(
                    "CALSCAN_LOG_FORMAT={text:?} is neither text nor json; logging as text"
                );
            }
        }
    }
}
