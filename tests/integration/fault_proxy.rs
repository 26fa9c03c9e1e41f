//! A loopback TCP proxy in front of DynamoDB Local that breaks on command, so
//! the functions meet real network faults: refused connections (DynamoDB
//! stopped), silence (a black hole), throttling, and answers lost after
//! DynamoDB acted.
//! Every change of fault cuts the connections already open, as a restart would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    None,
    /// Nothing listens: connections are refused, as with DynamoDB stopped.
    Down,
    /// Connections are accepted and requests read, but nothing ever answers.
    Silent,
    /// Every request is answered with DynamoDB's throttling error, as a table over capacity is.
    Throttled,
    /// Every TransactWriteItems is cancelled with `ThrottlingError` (DynamoDB's answer
    /// when an item's table or index is over capacity); other requests pass.
    ThrottledTransactions,
    /// Requests whose `X-Amz-Target` names `operation` (of DynamoDB or SQS) reach the emulator, but the
    /// next `count` of their answers are lost (the connection drops instead).
    LoseAnswers { operation: &'static str, count: usize },
}

pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`, for a DynamoDB client.
    pub endpoint: String,
    address: String,
    upstream: String,
    fault: watch::Sender<Fault>,
    /// Answers still to lose under `Fault::LoseAnswers`.
    to_lose: Arc<Mutex<usize>>,
    /// Client connections currently open (watched, so a switch waits for them to close).
    open: Arc<watch::Sender<usize>>,
    /// Whether the listener is up (it is dropped under `Fault::Down`).
    listening: Arc<watch::Sender<bool>>,
    /// Requests forwarded without fault, by DynamoDB operation.
    forwarded: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl FaultProxy {
    /// A proxy to `upstream` (`http://host:port`) that starts without fault.
    pub async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let address = listener.local_addr().unwrap().to_string();
        let (fault, _) = watch::channel(Fault::None);
        let proxy = FaultProxy {
            endpoint: format!("http://{address}"),
            address,
            upstream: upstream.trim_start_matches("http://").to_owned(),
            fault,
            to_lose: Arc::new(Mutex::new(0)),
            forwarded: Arc::new(Mutex::new(BTreeMap::new())),
            open: Arc::new(watch::channel(0).0),
            listening: Arc::new(watch::channel(false).0),
        };
        proxy.serve(listener);
        proxy
    }

    /// Switches to `fault`, cutting every open connection, and returns once they
    /// are closed and the clients' connection tasks have seen them close (as after
    /// a restart). Event-driven, no sleeps: it waits for the open-connection count
    /// to reach zero, then yields so the runtime's I/O driver hands the FINs to the
    /// client side before the next request picks a pooled connection.
    pub async fn set(&self, fault: Fault) {
        let was_down = *self.fault.borrow() == Fault::Down;
        if let Fault::LoseAnswers { count, .. } = fault {
            *self.to_lose.lock().unwrap() = count;
        }
        self.fault.send_replace(fault.clone());
        let mut open = self.open.subscribe();
        let mut listening = self.listening.subscribe();
        let down = fault == Fault::Down;
        let closed = async {
            open.wait_for(|n| *n == 0).await.expect("watched");
            listening.wait_for(|up| !(down && *up)).await.expect("watched");
        };
        tokio::time::timeout(Duration::from_secs(5), closed)
            .await
            .expect("the proxy's connections (and under Down its listener) close within 5 s of a fault switch");
        // tokio's yield_now wakes the task only after the I/O driver has been polled.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        if was_down && fault != Fault::Down {
            // Listen again on the same port, as a restarted DynamoDB would. The old
            // listener is gone (its task returned on the switch to Down), so this binds.
            let listener = TcpListener::bind(&self.address).await.expect("the proxy's port is free again");
            self.serve(listener);
        }
    }

    /// How many `operation` requests (`GetItem`, `Query`, …) went through without fault.
    pub fn forwarded(&self, operation: &str) -> usize {
        self.forwarded.lock().unwrap().get(operation).copied().unwrap_or(0)
    }

    /// Requests of any operation that went through without fault.
    pub fn forwarded_total(&self) -> usize {
        self.forwarded.lock().unwrap().values().sum()
    }

    /// Answers `Fault::LoseAnswers` has yet to lose (0 once it has struck `count` times).
    pub fn answers_left_to_lose(&self) -> usize {
        *self.to_lose.lock().unwrap()
    }

    fn serve(&self, listener: TcpListener) {
        let mut faults = self.fault.subscribe();
        let upstream = self.upstream.clone();
        let to_lose = self.to_lose.clone();
        let forwarded = self.forwarded.clone();
        let open = self.open.clone();
        let listening = self.listening.clone();
        listening.send_replace(true);
        tokio::spawn(async move {
            // Marks the listener gone however this task ends (it owns the listener).
            let _down = ListenerGuard(listening);
            // Declared after the guard, so dropped (port released) before it reports.
            let listener = listener;
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((inbound, _)) = accepted else { return };
                        let fault = faults.borrow().clone();
                        open.send_modify(|n| *n += 1);
                        let open = open.clone();
                        let connection = connection(
                            inbound,
                            upstream.clone(),
                            fault,
                            faults.clone(),
                            to_lose.clone(),
                            forwarded.clone(),
                        );
                        tokio::spawn(async move {
                            connection.await;
                            open.send_modify(|n| *n -= 1);
                        });
                    }
                    changed = faults.changed() => {
                        // Down: drop the listener so connections are refused.
                        if changed.is_err() || *faults.borrow() == Fault::Down {
                            return;
                        }
                    }
                }
            }
        });
    }
}

struct ListenerGuard(Arc<watch::Sender<bool>>);

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        self.0.send_replace(false);
    }
}

/// One client connection under `fault`, until it ends or the fault changes.
async fn connection(
    mut inbound: TcpStream,
    upstream: String,
    fault: Fault,
    mut faults: watch::Receiver<Fault>,
    to_lose: Arc<Mutex<usize>>,
    forwarded: Arc<Mutex<BTreeMap<String, usize>>>,
) {
    faults.mark_unchanged();
    let work = async {
        match fault {
            Fault::Down => {}
            Fault::Silent => {
                let mut sink = [0u8; 16 * 1024];
                while matches!(inbound.read(&mut sink).await, Ok(n) if n > 0) {}
            }
            Fault::Throttled => answer_throttled(inbound).await,
            Fault::ThrottledTransactions => {
                let Ok(outbound) = TcpStream::connect(&upstream).await else { return };
                throttle_transactions(inbound, outbound).await;
            }
            Fault::None => {
                if let Ok(outbound) = TcpStream::connect(&upstream).await {
                    forward_counting(inbound, outbound, forwarded).await;
                }
            }
            Fault::LoseAnswers { operation, .. } => {
                let Ok(outbound) = TcpStream::connect(&upstream).await else { return };
                lose_answers(inbound, outbound, operation, to_lose).await;
            }
        }
    };
    tokio::select! {
        _ = work => {}
        _ = faults.changed() => {} // dropping the streams cuts the connection
    }
}

/// Answers each request (headers, then `Content-Length` bytes of body) with
/// `ProvisionedThroughputExceededException`, on a kept-alive connection.
async fn answer_throttled(mut inbound: TcpStream) {
    const BODY: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#;
    let mut buffer = Vec::new();
    while read_request(&mut inbound, &mut buffer).await.is_some() {
        if inbound.write_all(answer(BODY).as_bytes()).await.is_err() {
            return;
        }
    }
}

/// A 400 answer with DynamoDB's JSON error `body`.
fn answer(body: &str) -> String {
    format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/x-amz-json-1.0\r\nx-amzn-RequestId: fault-proxy\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

/// The next whole request (headers, then `Content-Length` bytes of body) read from
/// `inbound` into `buffer` and taken off it; `None` when the connection ends.
async fn read_request<R: AsyncReadExt + Unpin>(inbound: &mut R, buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let headers = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let body_len = headers
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buffer.len() >= end + 4 + body_len {
                return Some(buffer.drain(..end + 4 + body_len).collect());
            }
        }
        match inbound.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Forwards everything, counting requests by their `X-Amz-Target` operation.
async fn forward_counting(inbound: TcpStream, outbound: TcpStream, forwarded: Arc<Mutex<BTreeMap<String, usize>>>) {
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut upstream_read, mut upstream_write) = outbound.into_split();
    let requests = async move {
        let mut buffer = Vec::new();
        while let Some(request) = read_request(&mut client_read, &mut buffer).await {
            let head = String::from_utf8_lossy(&request);
            if let Some(operation) = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("x-amz-target")
                    .then(|| value.trim().rsplit('.').next().unwrap_or("").to_owned())
            }) {
                *forwarded.lock().unwrap().entry(operation).or_default() += 1;
            }
            if upstream_write.write_all(&request).await.is_err() {
                return;
            }
        }
    };
    let answers = async move {
        let _ = tokio::io::copy(&mut upstream_read, &mut client_write).await;
    };
    tokio::select! {
        _ = requests => {}
        _ = answers => {}
    }
}

/// Forwards every request but TransactWriteItems, which is answered as cancelled
/// by throttling. The client sends one request at a time (no pipelining), so no
/// upstream answer is under way when a cancellation is written.
async fn throttle_transactions(inbound: TcpStream, outbound: TcpStream) {
    const BODY: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled, please refer cancellation reasons for specific reasons [ThrottlingError, None]","CancellationReasons":[{"Code":"ThrottlingError","Message":"Throughput exceeds the current capacity for one or more global secondary indexes. DynamoDB is automatically scaling your index so please try again shortly."},{"Code":"None"}]}"#;
    let (mut client_read, client_write) = inbound.into_split();
    let (mut upstream_read, mut upstream_write) = outbound.into_split();
    let client_write = Arc::new(tokio::sync::Mutex::new(client_write));
    let requests = {
        let client_write = client_write.clone();
        async move {
            let mut buffer = Vec::new();
            while let Some(request) = read_request(&mut client_read, &mut buffer).await {
                if contains(&request, b"DynamoDB_20120810.TransactWriteItems\r\n") {
                    if client_write.lock().await.write_all(answer(BODY).as_bytes()).await.is_err() {
                        return;
                    }
                } else if upstream_write.write_all(&request).await.is_err() {
                    return;
                }
            }
        }
    };
    let answers = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match upstream_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if client_write.lock().await.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = requests => {}
        _ = answers => {}
    }
}

/// Forwards requests; once a request for `operation` went upstream (and while
/// answers remain to lose), the answer that follows is swallowed and the
/// connection dropped, so the client cannot tell whether DynamoDB acted.
async fn lose_answers(inbound: TcpStream, outbound: TcpStream, operation: &str, to_lose: Arc<Mutex<usize>>) {
    let (mut client_read, mut client_write) = inbound.into_split();
    let (mut upstream_read, mut upstream_write) = outbound.into_split();
    // `DynamoDB_20120810.GetItem`, `AmazonSQS.SendMessageBatch`: the emulator serves both on one port.
    let target = format!(".{operation}\r\n");
    let (doomed_tx, doomed_rx) = watch::channel(false);
    let requests = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match client_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            // The SDK writes a request's headers in one piece, so the target is in one read.
            if contains(&buffer[..n], target.as_bytes()) {
                let mut left = to_lose.lock().unwrap();
                if *left > 0 {
                    *left -= 1;
                    doomed_tx.send_replace(true);
                }
            }
            if upstream_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    let answers = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = match upstream_read.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if *doomed_rx.borrow() {
                return; // DynamoDB answered; the client never hears it
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = requests => {}
        _ = answers => {}
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle))
}
