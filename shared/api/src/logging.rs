//! Log set-up for every function: Lambda's JSON format and level (as the runtime's
//! own default subscriber reads them), with one difference. Whatever level is
//! configured, code that is not Fleetgate's logs at INFO at most: the Lambda
//! runtime logs whole events at TRACE (headers, so API keys), and the AWS SDK and
//! hyper log whole requests (key hashes, items). An operator turning the level up
//! to debug a function must not turn on those.

use std::str::FromStr;

use lambda_http::tracing::subscriber::filter::{EnvFilter, LevelFilter};

/// Crates whose logs follow the configured level (ours; each function adds its own).
const OWN_TARGETS: [&str; 3] = ["fleetgate_api", "fleetgate_fleet", "fleetgate_scopes"];

/// Installs the subscriber. `own_target` is the function crate's name
/// (`env!("CARGO_CRATE_NAME")`), whose logs follow the configured level too.
pub fn init(own_target: &str) {
    let level = configured_level();
    let collector = lambda_http::tracing::subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_env_filter(filter(level, own_target));
    if std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json")) {
        collector.json().init();
    } else {
        collector.init();
    }
}

/// `AWS_LAMBDA_LOG_LEVEL` (Lambda's logging config), else `RUST_LOG` read as one
/// level, else INFO. Per-target directives in `RUST_LOG` are not honoured: they
/// could lift the runtime's own targets.
fn configured_level() -> LevelFilter {
    let text = std::env::var("AWS_LAMBDA_LOG_LEVEL").or_else(|_| std::env::var("RUST_LOG")).unwrap_or_default();
    level_named(&text)
}

/// A level's name, INFO for anything else. Not `LevelFilter::from_str` alone: it
/// reads an empty string as ERROR, which silenced every INFO line (one per
/// request) wherever no level was set (the local stack, `make bench`).
fn level_named(text: &str) -> LevelFilter {
    let text = text.trim();
    if text.is_empty() {
        return LevelFilter::INFO;
    }
    LevelFilter::from_str(text).unwrap_or(LevelFilter::INFO)
}

/// Everything at `level` capped to INFO, our own targets at `level`.
pub fn filter(level: LevelFilter, own_target: &str) -> EnvFilter {
    let others = level.min(LevelFilter::INFO);
    let mut filter = EnvFilter::default().add_directive(others.into());
    for target in OWN_TARGETS.iter().copied().chain([own_target]) {
        if let Ok(directive) = format!("{target}={level}").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_http::tracing::subscriber::fmt;
    use lambda_http::tracing::subscriber::layer::SubscriberExt;
    use std::sync::{Arc, Mutex};

    /// Whether `emit` writes anything through a subscriber with `filter`.
    fn logged(filter: EnvFilter, emit: impl FnOnce()) -> bool {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let subscriber = lambda_http::tracing::subscriber::registry()
            .with(filter)
            .with(fmt::layer().with_writer(move || Capture(sink.clone())));
        tracing::subscriber::with_default(subscriber, emit);
        !seen.lock().unwrap().is_empty()
    }

    struct Capture(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn no_level_or_an_unknown_one_means_info() {
        assert_eq!(level_named(""), LevelFilter::INFO);
        assert_eq!(level_named("  "), LevelFilter::INFO);
        assert_eq!(level_named("loud"), LevelFilter::INFO);
        assert_eq!(level_named("DEBUG"), LevelFilter::DEBUG);
        assert_eq!(level_named(" warn "), LevelFilter::WARN);
    }

    #[test]
    fn at_trace_only_fleetgates_own_code_logs_below_info() {
        let trace = || filter(LevelFilter::TRACE, "whoami");
        assert!(logged(trace(), || tracing::trace!(target: "fleetgate_api::http", "ours")));
        assert!(logged(trace(), || tracing::trace!(target: "whoami", "the function's own")));
        // The runtime logs whole events (headers, so keys) at TRACE; the SDK whole requests.
        assert!(!logged(trace(), || tracing::trace!(target: "lambda_runtime::layers::trace", "event")));
        assert!(!logged(trace(), || tracing::trace!(target: "lambda_http", "event")));
        assert!(!logged(trace(), || tracing::debug!(target: "aws_smithy_runtime::client::http", "request")));
        assert!(!logged(trace(), || tracing::trace!(target: "hyper::proto", "bytes")));
        assert!(logged(trace(), || tracing::info!(target: "lambda_runtime", "info passes")));
        // A level below INFO lowers everything.
        assert!(!logged(filter(LevelFilter::WARN, "whoami"), || tracing::info!(target: "fleetgate_api", "x")));
        assert!(logged(filter(LevelFilter::WARN, "whoami"), || tracing::warn!(target: "lambda_runtime", "x")));
    }
}
