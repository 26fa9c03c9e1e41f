//! A loopback TCP proxy in front of the emulator that counts the connections a
//! function opens, so "exactly one connection reused" is measured, not assumed;
//! and clocks how long DynamoDB calls are in flight, so a function's own overhead
//! is its handler time minus that measured time (the emulator's round trips vary
//! by operation: a transaction costs more than a GetItem).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct CountingProxy {
    pub address: String,
    accepted: Arc<AtomicUsize>,
    clock: Arc<Mutex<InFlight>>,
}

/// Time from a request's first byte to its answer's last byte, summed over
/// requests (HTTP/1.1 without pipelining: a request starts after the last answer).
#[derive(Default)]
struct InFlight {
    total: Duration,
    request_started: Option<Instant>,
    last_answer_byte: Option<Instant>,
}

impl InFlight {
    fn request_bytes(&mut self, now: Instant) {
        if let (Some(started), Some(answered)) = (self.request_started, self.last_answer_byte) {
            self.total += answered.saturating_duration_since(started);
            self.request_started = None;
            self.last_answer_byte = None;
        }
        self.request_started.get_or_insert(now);
    }

    fn answer_bytes(&mut self, now: Instant) {
        self.last_answer_byte = Some(now);
    }

    fn so_far(&self) -> Duration {
        let pending = match (self.request_started, self.last_answer_byte) {
            (Some(started), Some(answered)) => answered.saturating_duration_since(started),
            _ => Duration::ZERO,
        };
        self.total + pending
    }
}

impl CountingProxy {
    pub async fn start(upstream: String) -> std::io::Result<CountingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let clock = Arc::new(Mutex::new(InFlight::default()));
        let (counter, shared_clock) = (accepted.clone(), clock.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let (upstream, clock) = (upstream.clone(), shared_clock.clone());
                tokio::spawn(async move {
                    let _ = inbound.set_nodelay(true);
                    let Ok(outbound) = TcpStream::connect(&upstream).await else { return };
                    let _ = outbound.set_nodelay(true);
                    let (client_read, client_write) = inbound.into_split();
                    let (server_read, server_write) = outbound.into_split();
                    let requests = pump(client_read, server_write, clock.clone(), InFlight::request_bytes);
                    let answers = pump(server_read, client_write, clock, InFlight::answer_bytes);
                    let _ = tokio::join!(requests, answers);
                });
            }
        });
        Ok(CountingProxy { address, accepted, clock })
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Total time DynamoDB requests have been in flight through this proxy.
    pub fn in_flight(&self) -> Duration {
        self.clock.lock().unwrap().so_far()
    }
}

/// Copies `from` to `to`, telling the clock when bytes pass.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    clock: Arc<Mutex<InFlight>>,
    passed: fn(&mut InFlight, Instant),
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buffer[..n]).await.is_err() {
            break;
        }
        passed(&mut clock.lock().unwrap(), Instant::now());
    }
    let _ = to.shutdown().await;
}
