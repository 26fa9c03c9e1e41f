//! Each warm invocation's own time as the function logs it: its handler's time
//! minus its time in AWS calls (`fleetgate_api::call_time`), read from the
//! function's stdout. The API functions log both in their request's EMF document
//! (`Latency`, `aws_call_ms`); the provisioner in its action's (`handler_ms`); the
//! authorizer, dispatcher and deliverer in their per-invocation line's fields.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::ChildStdout;
use tokio::sync::mpsc;

pub struct TimingLines {
    own_times: mpsc::UnboundedReceiver<Duration>,
    /// Whether this function logs its timing at all (known after its first invocation).
    logs_timing: bool,
}

impl TimingLines {
    /// Reads `stdout` to its end in a task of its own (so the function never
    /// blocks on a full pipe), keeping each timing line's own time.
    pub fn follow(stdout: ChildStdout) -> TimingLines {
        let (sender, own_times) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(own) = own_time(&line) {
                    let _ = sender.send(own);
                }
            }
        });
        TimingLines { own_times, logs_timing: true }
    }

    /// The own time of the invocation just answered: its line is written before
    /// its response, so it is in the pipe or on its way. `None` for a function that
    /// logs no timing (after waiting once, on its first invocation).
    pub async fn next(&mut self) -> Option<Duration> {
        if !self.logs_timing {
            return None;
        }
        match tokio::time::timeout(Duration::from_secs(2), self.own_times.recv()).await {
            Ok(Some(own)) => Some(own),
            _ => {
                self.logs_timing = false;
                None
            }
        }
    }
}

/// Handler time minus AWS call time, from one log line, if it carries both.
fn own_time(line: &str) -> Option<Duration> {
    if !line.contains("aws_call_ms") {
        return None;
    }
    let doc: Value = serde_json::from_str(line).ok()?;
    // An API request's EMF document (`Latency`), the provisioner's (`handler_ms`),
    // or a tracing line's fields.
    let members = doc.get("fields").unwrap_or(&doc);
    let handler = members.get("Latency").or_else(|| members.get("handler_ms"))?.as_f64()?;
    let aws = members.get("aws_call_ms")?.as_f64()?;
    Some(Duration::from_secs_f64((handler - aws).max(0.0) / 1000.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_line_shapes_give_the_handler_time_less_the_aws_calls() {
        let emf = r#"{"Latency":6.5,"Requests":1.0,"aws_call_ms":5.25,"_aws":{}}"#;
        assert_eq!(own_time(emf), Some(Duration::from_secs_f64(0.00125)));
        let dispatched =
            r#"{"level":"INFO","fields":{"message":"events dispatched","handler_ms":9.0,"aws_call_ms":8.5}}"#;
        assert_eq!(own_time(dispatched), Some(Duration::from_secs_f64(0.0005)));
        let action = r#"{"ProvisionerActions":1.0,"handler_ms":4.0,"aws_call_ms":3.0,"_aws":{}}"#;
        assert_eq!(own_time(action), Some(Duration::from_secs_f64(0.001)));
        assert_eq!(own_time(r#"{"Latency":6.5,"Requests":1.0}"#), None, "no AWS time: not a timing line");
        assert_eq!(own_time(r#"{"level":"INFO","fields":{"message":"key allowed"}}"#), None);
    }
}
