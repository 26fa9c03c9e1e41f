//! Turning measurements into docs/benchmarks.{json,md} and docs/cold-start.svg.

use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::CliStartup;

/// Median and tail of a sample, in milliseconds.
#[derive(Clone, Copy, Debug)]
pub struct Stats {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub count: usize,
}

impl Stats {
    pub fn of(samples: &[Duration]) -> Stats {
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms.get(((ms.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(f64::NAN);
        Stats { p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1.0), count: ms.len() }
    }
}

/// The middle of a sample (the upper of the two middles), if there is one.
pub fn median(sample: &[f64]) -> Option<f64> {
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

pub struct Measured {
    pub init: Stats,
    /// Within init: the process's time on a CPU, and runnable but waiting for one
    /// (what the rest of this shared machine added).
    pub init_cpu: Stats,
    pub init_run_queue_wait: Stats,
    /// Median over its cold starts of init over the init of the hello start just
    /// before it; `None` for hello itself, or when hello was not measured.
    pub init_vs_hello: Option<f64>,
    pub warm: Stats,
    /// Per invocation: time from the event's hand-out to the response, minus the
    /// time its AWS calls were in flight at the proxy (the SDK's own work counted
    /// as the function's).
    pub overhead: Stats,
    /// Per invocation, as the function logs it: its handler's time minus its time
    /// in AWS calls (SDK call to result). `None` for a function that logs no timing.
    pub own: Option<Stats>,
    /// Per invocation: the function process's time on a CPU (all its threads).
    pub cpu: Stats,
    /// Per invocation: time the function was runnable but waiting for a CPU
    /// (on this 2-core machine, mostly behind the emulator).
    pub run_queue_wait: Stats,
    pub round_trips: u32,
    pub peak_rss_kb: u64,
    pub rss_growth_kb: i64,
    pub connections: Connections,
    pub errors: usize,
}

/// The connections a function opened through the proxy during its warm
/// invocations, and why any ended before it did.
pub struct Connections {
    pub opened: usize,
    /// Closed by the function with a request unanswered: it gave up on that call
    /// (the SDK's attempt timeout), so the connection could not be reused.
    pub abandoned: usize,
    pub closed_by_emulator: usize,
}

impl Connections {
    fn cell(&self) -> String {
        let mut why = Vec::new();
        if self.abandoned > 0 {
            why.push(format!("{} abandoned mid-call", self.abandoned));
        }
        if self.closed_by_emulator > 0 {
            why.push(format!("{} closed by the emulator", self.closed_by_emulator));
        }
        if why.is_empty() { self.opened.to_string() } else { format!("{} ({})", self.opened, why.join(", ")) }
    }
}

pub struct FunctionResult {
    pub name: String,
    pub outcome: Result<Measured, String>,
}

impl FunctionResult {
    pub fn measured(name: &str, measured: Measured) -> FunctionResult {
        FunctionResult { name: name.to_owned(), outcome: Ok(measured) }
    }

    pub fn failed(name: &str, why: String) -> FunctionResult {
        FunctionResult { name: name.to_owned(), outcome: Err(why) }
    }
}

pub struct Report {
    cold_starts: usize,
    warm_invocations: usize,
    round_trip: Stats,
    results: Vec<FunctionResult>,
    sizes: Value,
    machine: String,
    /// CPU µs per limiter count and per bare GetItem, in process.
    limiter_cpu_us: Option<(f64, f64)>,
    /// The admin CLI's start-up (`None` when not measured).
    cli: Option<Result<CliStartup, String>>,
}

/// SPEC §7 targets.
const INIT_RATIO_TARGET: f64 = 1.5;
const OVERHEAD_TARGET_MS: f64 = 1.0;
const RSS_TARGET_MB: f64 = 32.0;
const ARM64_SIZE_TARGET_MB: f64 = 6.0;
/// The name of the hello that also logs and emits metrics as every request does.
const OBSERVED_HELLO: &str = "logging + metrics";
/// Ours, for the admin CLI: start to exit of a command answered at once.
const CLI_COMMAND_TARGET_MS: f64 = 10.0;

impl Report {
    pub fn new(
        cold_starts: &usize,
        warm_invocations: usize,
        round_trip: Stats,
        results: Vec<FunctionResult>,
        sizes: Value,
    ) -> Report {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("model name"))
                    .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
        Report {
            cold_starts: *cold_starts,
            warm_invocations,
            round_trip,
            results,
            sizes,
            machine: format!("{cores} × {cpu}, {} (x86_64 host; arm64 sizes from cargo lambda)", std::env::consts::OS),
            limiter_cpu_us: None,
            cli: None,
        }
    }

    /// The limiter's CPU per count and a bare GetItem's (µs), measured in process.
    pub fn with_limiter(mut self, (count_us, get_item_us): (f64, f64)) -> Report {
        self.limiter_cpu_us = Some((count_us, get_item_us));
        self
    }

    pub fn with_cli(mut self, cli: Option<Result<CliStartup, String>>) -> Report {
        self.cli = cli;
        self
    }

    /// SPEC §7's init ratio: paired with hello's starts (1 for hello itself).
    fn init_vs_hello(&self, name: &str, m: &Measured) -> Option<f64> {
        if name.starts_with("hello") { Some(1.0) } else { m.init_vs_hello }
    }

    fn hello_init(&self) -> Option<f64> {
        self.results
            .iter()
            .find(|r| r.name.starts_with("hello"))
            .and_then(|r| r.outcome.as_ref().ok())
            .map(|m| m.init.p50_ms)
    }

    fn size(&self, name: &str, arch: &str, kind: &str) -> Option<f64> {
        let binary = if name.starts_with("hello") {
            "bench-hello"
        } else if name.starts_with(OBSERVED_HELLO) {
            "bench-hello-observed"
        } else {
            name
        };
        self.sizes.get(binary)?.get(arch)?.get(kind)?.as_f64().map(|bytes| bytes / 1_048_576.0)
    }

    /// SPEC §7's overhead: handler time minus the AWS calls as the handler waits
    /// on them; for a function that does not log its timing, the stricter figure
    /// at the proxy (marked †).
    fn overhead(&self, m: &Measured) -> (f64, &'static str) {
        m.own.map_or((m.overhead.p50_ms, "†"), |own| (own.p50_ms, ""))
    }

    pub fn to_json(&self) -> Value {
        let functions: Vec<Value> = self
            .results
            .iter()
            .map(|r| match &r.outcome {
                Err(why) => json!({"name": r.name, "error": why}),
                Ok(m) => json!({
                    "name": r.name,
                    "init_ms": {"p50": m.init.p50_ms, "p99": m.init.p99_ms, "runs": m.init.count},
                    "init_cpu_ms": {"p50": m.init_cpu.p50_ms, "p99": m.init_cpu.p99_ms},
                    "init_run_queue_wait_ms": {"p50": m.init_run_queue_wait.p50_ms, "p99": m.init_run_queue_wait.p99_ms},
                    "init_vs_hello": self.init_vs_hello(&r.name, m),
                    "warm_ms": {"p50": m.warm.p50_ms, "p99": m.warm.p99_ms, "max": m.warm.max_ms, "runs": m.warm.count},
                    "dynamodb_round_trips": m.round_trips,
                    "overhead_p50_ms": self.overhead(m).0,
                    "overhead_basis": if m.own.is_some() { "handler minus AWS calls" } else { "proxy" },
                    "overhead_with_sdk_p50_ms": m.overhead.p50_ms,
                    "cpu_ms": {"p50": m.cpu.p50_ms, "p99": m.cpu.p99_ms},
                    "run_queue_wait_ms": {"p50": m.run_queue_wait.p50_ms, "p99": m.run_queue_wait.p99_ms},
                    "peak_rss_kb": m.peak_rss_kb,
                    "rss_growth_100_to_end_kb": m.rss_growth_kb,
                    "dynamodb_connections": m.connections.opened,
                    "connections_abandoned_mid_call": m.connections.abandoned,
                    "connections_closed_by_emulator": m.connections.closed_by_emulator,
                    "error_responses": m.errors,
                    "size_mb": {
                        "arm64": self.size(&r.name, "arm64", "binary"), "arm64_zip": self.size(&r.name, "arm64", "zip"),
                        "x86_64": self.size(&r.name, "x86_64", "binary"), "x86_64_zip": self.size(&r.name, "x86_64", "zip"),
                    },
                }),
            })
            .collect();
        json!({
            "machine": self.machine,
            "cold_starts": self.cold_starts,
            "warm_invocations": self.warm_invocations,
            "dynamodb_get_item_ms": {"p50": self.round_trip.p50_ms, "p99": self.round_trip.p99_ms},
            "limiter_cpu_us": self.limiter_cpu_us.map(|(count, get_item)| json!({"count": count, "get_item": get_item})),
            "targets": {"init_vs_hello": INIT_RATIO_TARGET, "overhead_p50_ms": OVERHEAD_TARGET_MS,
                        "peak_rss_mb": RSS_TARGET_MB, "arm64_binary_mb": ARM64_SIZE_TARGET_MB, "dynamodb_connections": 1,
                        "cli_version_vs_hello": INIT_RATIO_TARGET, "cli_command_ms": CLI_COMMAND_TARGET_MS},
            "functions": functions,
            "cli": self.cli.as_ref().map(|cli| match cli {
                Err(why) => json!({"error": why}),
                Ok(cli) => json!({
                    "version_to_exit_ms": {"p50": cli.version.p50_ms, "p99": cli.version.p99_ms, "runs": cli.version.count},
                    "version_vs_hello": cli.version_vs_hello,
                    "tenants_list_to_request_ms": {"p50": cli.to_request.p50_ms, "p99": cli.to_request.p99_ms},
                    "tenants_list_to_exit_ms": {"p50": cli.to_exit.p50_ms, "p99": cli.to_exit.p99_ms},
                    "tenants_list_cpu_to_request_ms": {"p50": cli.cpu_to_request.p50_ms, "p99": cli.cpu_to_request.p99_ms},
                    "peak_rss_kb": cli.peak_rss_kb,
                    "size_mb": {"x86_64": self.size("fleetgate", "x86_64", "binary")},
                }),
            }),
        })
    }

    /// What logging and metrics cost (issue 13): the hello that has them against hello.
    fn logging_markdown(&self) -> String {
        let row = |prefix: &str| {
            self.results.iter().find(|r| r.name.starts_with(prefix)).and_then(|r| r.outcome.as_ref().ok())
        };
        let (Some(hello), Some(observed)) = (row("hello"), row(OBSERVED_HELLO)) else { return String::new() };
        format!(
            "\nLogging and metrics, priced on their own (hello with Fleetgate's log set-up, a span, the request's log line and EMF document, against hello): \
             init {:.2} ms against {:.2} ({}× the hello start before each, median); CPU per invocation {:.3} ms against {:.3} \
             (**{:+.3} ms**), warm p50 {:.3} against {:.3} ms; RSS growth over the warm invocations {} KB against {} KB.\n",
            observed.init.p50_ms,
            hello.init.p50_ms,
            observed.init_vs_hello.map_or("–".to_owned(), |r| format!("{r:.2}")),
            observed.cpu.p50_ms,
            hello.cpu.p50_ms,
            observed.cpu.p50_ms - hello.cpu.p50_ms,
            observed.warm.p50_ms,
            hello.warm.p50_ms,
            observed.rss_growth_kb,
            hello.rss_growth_kb,
        )
    }

    /// The admin CLI's paragraph. SPEC §7 asks that the bench cover its start-up
    /// and sets no figure; ours: loading and parsing within the functions' 1.5× of
    /// hello, a whole command against an instant answer within 10 ms (an admin's
    /// wait is then the provisioner's and the network's), RSS as for a function.
    fn cli_markdown(&self) -> String {
        match &self.cli {
            None => String::new(),
            Some(Err(why)) => format!("\nAdmin CLI start-up: failed: {why}\n"),
            Some(Ok(cli)) => format!(
                "\nAdmin CLI (`fleetgate`, x86_64 binary {} MB), {} runs of each command, each after a hello start, against a local Lambda Invoke API stub that answers at once: \
                 `fleetgate --version` start to exit p50 {:.2} ms (p99 {:.2}; {}× the hello start's init, median); \
                 `fleetgate tenants list` start to its invoke request p50 {:.2} ms (CPU {:.2} ms), start to exit with the table printed p50 {:.2} ms (p99 {:.2}); \
                 peak RSS {:.1} MB. Targets (ours; SPEC §7 asks only that the bench cover it): `--version` ≤ {INIT_RATIO_TARGET}× hello's init, \
                 a command's whole run ≤ {CLI_COMMAND_TARGET_MS} ms, peak RSS ≤ {RSS_TARGET_MB} MB.\n",
                self.size("fleetgate", "x86_64", "binary").map_or("–".to_owned(), |mb| format!("{mb:.2}")),
                cli.version.count,
                cli.version.p50_ms,
                cli.version.p99_ms,
                cli.version_vs_hello.map_or("–".to_owned(), |r| format!("{r:.2}")),
                cli.to_request.p50_ms,
                cli.cpu_to_request.p50_ms,
                cli.to_exit.p50_ms,
                cli.to_exit.p99_ms,
                cli.peak_rss_kb as f64 / 1024.0,
            ),
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "Machine: {}. {} cold starts and {} warm invocations per function; emulator (moto) GetItem round trip p50 {:.2} ms, p99 {:.2} ms.\n\n",
            self.machine, self.cold_starts, self.warm_invocations, self.round_trip.p50_ms, self.round_trip.p99_ms
        ));
        if let Some((count, get_item)) = self.limiter_cpu_us {
            out.push_str(&format!(
                "Limiter, CPU per call in process: a count {count:.0} µs, a bare GetItem {get_item:.0} µs: its own logic {:.0} µs, the rest is what any DynamoDB call costs a client.\n\n",
                count - get_item
            ));
        }
        out.push_str("| Function | Init p50 (ms) | × hello | Init CPU / wait p50 (ms) | Warm p50 / p99 (ms) | Overhead p50 (ms) | With SDK p50 (ms) | CPU p50 / p99 (ms) | Run-queue wait p50 (ms) | Peak RSS (MB) | RSS growth (KB) | DynamoDB conns | arm64 (MB) | arm64 zip (MB) | x86_64 (MB) |\n");
        out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        let num = |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |v| format!("{v:.digits$}"));
        for r in &self.results {
            match &r.outcome {
                Err(why) => out.push_str(&format!("| {} | failed: {} |||||||||||||| \n", r.name, why.replace('|', "/"))),
                Ok(m) => out.push_str(&format!(
                    "| {} | {:.2} | {} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2}{} | {:.2} | {:.2} / {:.2} | {:.2} | {:.1} | {} | {} | {} | {} | {} |\n",
                    r.name,
                    m.init.p50_ms,
                    num(self.init_vs_hello(&r.name, m), 2),
                    m.init_cpu.p50_ms,
                    m.init_run_queue_wait.p50_ms,
                    m.warm.p50_ms,
                    m.warm.p99_ms,
                    self.overhead(m).0,
                    self.overhead(m).1,
                    m.overhead.p50_ms,
                    m.cpu.p50_ms,
                    m.cpu.p99_ms,
                    m.run_queue_wait.p50_ms,
                    m.peak_rss_kb as f64 / 1024.0,
                    m.rss_growth_kb,
                    m.connections.cell(),
                    num(self.size(&r.name, "arm64", "binary"), 2),
                    num(self.size(&r.name, "arm64", "zip"), 2),
                    num(self.size(&r.name, "x86_64", "binary"), 2),
                )),
            }
        }
        out.push_str(&format!(
            "\nTargets (SPEC §7): init ≤ {INIT_RATIO_TARGET}× hello (median over cold starts of init over the init of a hello start just before it; init CPU / wait: within init, the process on a CPU, and runnable but waiting for one); overhead ≤ {OVERHEAD_TARGET_MS} ms: p50 of each warm invocation's handler time minus its time in AWS calls (SDK call to result), as the function logs them († where it logs no timing: the stricter figure beside it); **with SDK**: from the event's hand-out to the response, minus the time its AWS calls were in flight at a proxy (so the SDK's serialising, signing and parsing, and the runtime's event and response handling, count as the function's); CPU: the function process's time on a CPU per invocation; run-queue wait: runnable but waiting for a CPU; peak RSS ≤ {RSS_TARGET_MB} MB; stripped arm64 binary ≤ {ARM64_SIZE_TARGET_MB} MB; one DynamoDB connection reused.\n"
        ));
        out.push_str(&self.logging_markdown());
        out.push_str(&self.cli_markdown());
        out
    }

    /// Init p50 per function as horizontal bars, with the hello floor and the 1.5× line.
    pub fn svg(&self) -> String {
        let rows: Vec<(&str, f64)> = self
            .results
            .iter()
            .filter_map(|r| r.outcome.as_ref().ok().map(|m| (r.name.as_str(), m.init.p50_ms)))
            .collect();
        // Log scale: the Python peer is two orders of magnitude slower than the rest.
        let (low, high) = (0.5_f64, rows.iter().map(|(_, v)| *v).fold(1.0_f64, f64::max) * 2.0);
        let (left, width, row_height) = (210.0, 440.0, 22.0);
        let height = 50.0 + row_height * rows.len() as f64;
        let x = |v: f64| left + (v.max(low).log10() - low.log10()) / (high.log10() - low.log10()) * width;
        let mut svg = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="720" height="{height}" font-family="sans-serif" font-size="12">
<text x="10" y="18" font-size="14">Cold start: process start to first Runtime API /next, p50 (ms, log scale)</text>
"#
        );
        if let Some(hello) = self.hello_init() {
            for (value, label, colour) in [(hello, "hello", "#888"), (hello * INIT_RATIO_TARGET, "1.5× hello", "#c33")]
            {
                svg.push_str(&format!(
                    r#"<line x1="{0:.1}" y1="28" x2="{0:.1}" y2="{1:.1}" stroke="{colour}" stroke-dasharray="4 3"/><text x="{0:.1}" y="{2:.1}" fill="{colour}" text-anchor="middle">{label}</text>
"#,
                    x(value),
                    height - 18.0,
                    height - 4.0
                ));
            }
        }
        for (i, (name, value)) in rows.iter().enumerate() {
            let y = 32.0 + row_height * i as f64;
            let colour = if name.contains("Python") {
                "#e0a030"
            } else if name.starts_with("hello") {
                "#999"
            } else {
                "#3a7bd5"
            };
            svg.push_str(&format!(
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{name}</text><rect x="{left}" y="{y:.1}" width="{:.1}" height="14" fill="{colour}"/><text x="{:.1}" y="{:.1}">{value:.2}</text>
"#,
                left - 6.0,
                y + 11.0,
                x(*value) - left,
                x(*value) + 4.0,
                y + 11.0
            ));
        }
        svg.push_str("</svg>\n");
        svg
    }
}
