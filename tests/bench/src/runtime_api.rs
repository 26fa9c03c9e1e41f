//! A local Lambda Runtime API: the four endpoints a function process talks to,
//! with the real headers, instrumented so the harness knows when the process
//! asked for work (init done) and when each answer arrived.

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

/// One invocation to hand out.
pub struct Invocation {
    pub request_id: String,
    pub payload: String,
}

/// What the function process did.
#[derive(Debug)]
pub enum Event {
    /// `GET /next` arrived (the first one ends init).
    NextRequested(Instant),
    /// An invocation was written to the process.
    HandedOut { request_id: String, at: Instant },
    /// `POST …/response`.
    Responded { request_id: String, body: String, at: Instant },
    /// `POST …/error` or `POST /init/error`.
    Failed { body: String },
}

/// The stub: a listener plus the channels the harness drives it with.
pub struct RuntimeApi {
    pub address: String,
    invocations: mpsc::Sender<Invocation>,
    pub events: mpsc::UnboundedReceiver<Event>,
}

impl RuntimeApi {
    pub async fn start() -> std::io::Result<RuntimeApi> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let (invocations, pending) = mpsc::channel::<Invocation>(1);
        let (events_tx, events) = mpsc::unbounded_channel();
        let pending = Arc::new(Mutex::new(pending));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_connection(stream, pending.clone(), events_tx.clone()));
            }
        });
        Ok(RuntimeApi { address, invocations, events })
    }

    /// Queues one invocation; it is handed out on the process's next `GET /next`.
    pub async fn invoke(&self, invocation: Invocation) {
        self.invocations.send(invocation).await.expect("stub running");
    }

    /// The next event, skipping none.
    pub async fn event(&mut self) -> Event {
        self.events.recv().await.expect("stub running")
    }
}

async fn serve_connection(
    stream: TcpStream,
    pending: Arc<Mutex<mpsc::Receiver<Invocation>>>,
    events: mpsc::UnboundedSender<Event>,
) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; content_length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).into_owned();
        let mut parts = request_line.split_whitespace();
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));

        let reply = if method == "GET" && path.ends_with("/runtime/invocation/next") {
            let _ = events.send(Event::NextRequested(Instant::now()));
            let Some(invocation) = pending.lock().await.recv().await else { return };
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 30_000)
                .unwrap_or_default();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
                 Lambda-Runtime-Aws-Request-Id: {}\r\nLambda-Runtime-Deadline-Ms: {deadline}\r\n\
                 Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:123456789012:function:bench\r\n\
                 Lambda-Runtime-Trace-Id: Root=1-00000000-000000000000000000000000;Sampled=0\r\n\r\n",
                invocation.payload.len(),
                invocation.request_id,
            );
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(invocation.payload.as_bytes());
            if write.write_all(&bytes).await.is_err() {
                return;
            }
            let _ = events.send(Event::HandedOut { request_id: invocation.request_id, at: Instant::now() });
            continue;
        } else if method == "POST" && path.ends_with("/response") {
            let request_id = path.split('/').rev().nth(1).unwrap_or_default().to_owned();
            let _ = events.send(Event::Responded { request_id, body, at: Instant::now() });
            "HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n"
        } else if method == "POST" && (path.ends_with("/error")) {
            let _ = events.send(Event::Failed { body });
            "HTTP/1.1 202 Accepted\r\nContent-Length: 16\r\n\r\n{\"status\":\"OK\"}\n"
        } else {
            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
