//! A loopback TCP proxy in front of the emulator that counts the connections a
//! function opens, so "exactly one connection reused" is measured, not assumed;
//! and clocks how long DynamoDB calls are in flight, so a function's own overhead
//! is its handler time minus that measured time (the emulator's round trips vary
//! by operation: a transaction costs more than a GetItem). Every connection past
//! the first is accounted for: the function gave up on a call mid-way (its SDK
//! attempt timeout drops that connection, since the answer can no longer be read
//! from it) or the emulator closed the connection.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub struct CountingProxy {
    pub address: String,
    accepted: Arc<AtomicUsize>,
    closes: Arc<Closes>,
    clock: Arc<Mutex<InFlight>>,
}

/// Why connections ended before the function did.
#[derive(Default)]
struct Closes {
    /// The function closed it with a request unanswered (it gave up on the call).
    abandoned: AtomicUsize,
    /// The emulator closed it first.
    by_upstream: AtomicUsize,
}

/// One connection: whether a request awaits its first answer byte, and whether
/// either side has closed yet.
#[derive(Default)]
struct Connection {
    awaiting_answer: AtomicBool,
    closed: AtomicBool,
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
        let closes = Arc::new(Closes::default());
        let clock = Arc::new(Mutex::new(InFlight::default()));
        let (counter, shared_closes, shared_clock) = (accepted.clone(), closes.clone(), clock.clone());
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let (upstream, closes, clock) = (upstream.clone(), shared_closes.clone(), shared_clock.clone());
                tokio::spawn(async move {
                    let _ = inbound.set_nodelay(true);
                    let Ok(outbound) = TcpStream::connect(&upstream).await else { return };
                    let _ = outbound.set_nodelay(true);
                    let (client_read, client_write) = inbound.into_split();
                    let (server_read, server_write) = outbound.into_split();
                    let connection = Connection::default();
                    let requests = async {
                        pump(client_read, server_write, &clock, |clock, now| {
                            connection.awaiting_answer.store(true, Ordering::SeqCst);
                            clock.request_bytes(now);
                        })
                        .await;
                        if !connection.closed.swap(true, Ordering::SeqCst)
                            && connection.awaiting_answer.load(Ordering::SeqCst)
                        {
                            closes.abandoned.fetch_add(1, Ordering::SeqCst);
                        }
                    };
                    let answers = async {
                        pump(server_read, client_write, &clock, |clock, now| {
                            connection.awaiting_answer.store(false, Ordering::SeqCst);
                            clock.answer_bytes(now);
                        })
                        .await;
                        if !connection.closed.swap(true, Ordering::SeqCst) {
                            closes.by_upstream.fetch_add(1, Ordering::SeqCst);
                        }
                    };
                    tokio::join!(requests, answers);
                });
            }
        });
        Ok(CountingProxy { address, accepted, closes, clock })
    }

    /// Connections the function closed with a request unanswered.
    pub fn abandoned(&self) -> usize {
        self.closes.abandoned.load(Ordering::SeqCst)
    }

    /// Connections the emulator closed before the function did.
    pub fn closed_by_upstream(&self) -> usize {
        self.closes.by_upstream.load(Ordering::SeqCst)
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
    clock: &Mutex<InFlight>,
    passed: impl Fn(&mut InFlight, Instant),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream that reads what it is sent and answers `answer` to each read
    /// (nothing, if empty), then closes if `close_after_answer`.
    async fn upstream(answer: &'static [u8], close_after_answer: bool) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buffer = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        if !answer.is_empty() {
                            let _ = socket.write_all(answer).await;
                        }
                        if close_after_answer {
                            break;
                        }
                    }
                });
            }
        });
        address
    }

    async fn settled<T>(read: impl Fn() -> T) -> T {
        // The proxy's tasks see the close a moment after the client makes it.
        tokio::time::sleep(Duration::from_millis(100)).await;
        read()
    }

    #[tokio::test]
    async fn a_connection_closed_with_a_request_unanswered_counts_as_abandoned() {
        let proxy = CountingProxy::start(upstream(b"", false).await).await.unwrap();
        let mut client = TcpStream::connect(&proxy.address).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(client);
        assert_eq!(settled(|| (proxy.connections(), proxy.abandoned(), proxy.closed_by_upstream())).await, (1, 1, 0));
    }

    #[tokio::test]
    async fn a_connection_closed_after_its_answer_is_not_abandoned() {
        let proxy = CountingProxy::start(upstream(b"HTTP/1.1 200 OK\r\n\r\n", false).await).await.unwrap();
        let mut client = TcpStream::connect(&proxy.address).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut answer = [0u8; 19];
        client.read_exact(&mut answer).await.unwrap();
        drop(client);
        assert_eq!(settled(|| (proxy.abandoned(), proxy.closed_by_upstream())).await, (0, 0));
    }

    #[tokio::test]
    async fn a_connection_the_emulator_closes_is_counted_as_such() {
        let proxy = CountingProxy::start(upstream(b"HTTP/1.1 200 OK\r\n\r\n", true).await).await.unwrap();
        let mut client = TcpStream::connect(&proxy.address).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert_eq!(settled(|| (proxy.abandoned(), proxy.closed_by_upstream())).await, (0, 1));
    }
}
