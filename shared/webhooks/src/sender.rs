//! The deliverer's HTTP client: one POST per attempt, to checked addresses only.
//!
//! - The host is resolved once per connection by [`CheckedResolver`], which
//!   refuses the delivery when any address it gets is not public; hyper then
//!   connects to exactly those addresses. There is no second lookup between the
//!   check and the connection, so a host that changes its answer (DNS
//!   rebinding) cannot slip a private address in. An address written in the
//!   URL is checked before anything is sent.
//! - https with the public web PKI's roots (compiled in: no file read at init);
//!   http only where the local stack's switch allows loopback.
//! - Redirects are not followed (a 3xx is a failed attempt); the whole attempt
//!   has 10 seconds; at most 4 KiB of the answer is read and kept.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::TokioExecutor;

use crate::outbound::{AddressClass, refusal};
use crate::target_url::UrlPolicy;

/// How long one attempt may take, connection and answer included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of an answer is read and logged.
pub const ANSWER_EXCERPT_BYTES: usize = 4096;

/// Looks a host name up (the system resolver in production; tests pass their own).
pub type Lookup = Arc<dyn Fn(String) -> BoxFuture<'static, io::Result<Vec<IpAddr>>> + Send + Sync>;

fn system_lookup() -> Lookup {
    Arc::new(|host: String| {
        Box::pin(async move { Ok(tokio::net::lookup_host((host.as_str(), 0)).await?.map(|a| a.ip()).collect()) })
    })
}

/// Whether `address` may be connected to under `policy`: `Err` names its class.
fn allowed(policy: UrlPolicy, address: IpAddr) -> Result<(), AddressClass> {
    match refusal(address) {
        None => Ok(()),
        Some(AddressClass::Loopback) if policy.allow_loopback => Ok(()),
        Some(class) => Err(class),
    }
}

/// The resolver hyper connects through: every address of the host is checked.
#[derive(Clone)]
pub struct CheckedResolver {
    policy: UrlPolicy,
    lookup: Lookup,
}

impl tower_service::Service<Name> for CheckedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = BoxFuture<'static, io::Result<Self::Response>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let (policy, lookup) = (self.policy, self.lookup.clone());
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses = lookup(host.clone()).await?;
            if addresses.is_empty() {
                return Err(io::Error::new(io::ErrorKind::NotFound, format!("{host} has no address")));
            }
            // All or nothing: a host with one private address among public ones is refused.
            for address in &addresses {
                if let Err(class) = allowed(policy, *address) {
                    return Err(io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!("refused: {host} resolves to a {} address ({address})", class.as_str()),
                    ));
                }
            }
            Ok(addresses.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect::<Vec<_>>().into_iter())
        })
    }
}

/// What one attempt gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// The answer's status; `None` when there was no answer (refused, unreachable, timed out).
    pub status: Option<u16>,
    pub latency: Duration,
    /// The first 4 KiB of the answer (lossy UTF-8), or why there was none.
    pub excerpt: String,
    /// The answer's `Retry-After` header, as sent.
    pub retry_after: Option<String>,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector<CheckedResolver>>, Full<Bytes>>;

#[derive(Clone)]
pub struct Sender {
    /// Built on the first delivery, not at init: loading the web PKI's roots into
    /// rustls costs about a millisecond of CPU, which SPEC §7's cold-start bar
    /// (1.5× a hello-world binary) does not leave.
    client: std::sync::OnceLock<HttpsClient>,
    lookup: Lookup,
    policy: UrlPolicy,
    timeout: Duration,
}

impl Sender {
    pub fn new(policy: UrlPolicy) -> Sender {
        Sender::with_lookup(policy, system_lookup(), ATTEMPT_TIMEOUT)
    }

    /// With another resolver and timeout (tests).
    pub fn with_lookup(policy: UrlPolicy, lookup: Lookup, timeout: Duration) -> Sender {
        Sender { client: std::sync::OnceLock::new(), lookup, policy, timeout }
    }

    fn client(&self) -> &HttpsClient {
        self.client.get_or_init(|| {
            let resolver = CheckedResolver { policy: self.policy, lookup: self.lookup.clone() };
            let mut http = HttpConnector::new_with_resolver(resolver);
            http.enforce_http(false);
            http.set_connect_timeout(Some(self.timeout));
            let https = hyper_rustls::HttpsConnectorBuilder::new()
                .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
                .expect("ring supports the default TLS versions")
                .https_or_http()
                .enable_http1()
                .wrap_connector(http);
            Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(https)
        })
    }

    /// POSTs `body` to `url` with `headers`, within the attempt timeout.
    pub async fn post(&self, url: &str, headers: &[(&str, String)], body: Bytes) -> Attempt {
        let started = Instant::now();
        let failed = |excerpt: String| Attempt { status: None, latency: started.elapsed(), excerpt, retry_after: None };
        let uri: http::Uri = match url.parse() {
            Ok(uri) => uri,
            Err(err) => return failed(format!("refused: not a URL ({err})")),
        };
        // hyper connects to an address written in the URL without asking the resolver: check it here.
        if let Some(host) = uri.host() {
            let literal = host.trim_start_matches('[').trim_end_matches(']');
            if let Ok(address) = literal.parse::<IpAddr>()
                && let Err(class) = allowed(self.policy, address)
            {
                return failed(format!("refused: {address} is a {} address", class.as_str()));
            }
        }
        let scheme_allowed =
            uri.scheme_str() == Some("https") || (self.policy.allow_loopback && uri.scheme_str() == Some("http"));
        if !scheme_allowed {
            return failed("refused: only https URLs are delivered to".into());
        }
        let mut request = http::Request::post(uri);
        for (name, value) in headers {
            request = request.header(*name, value.as_str());
        }
        let request = match request.body(Full::new(body)) {
            Ok(request) => request,
            Err(err) => return failed(format!("refused: {err}")),
        };
        let exchange = async {
            let response = self.client().request(request).await?;
            let status = response.status().as_u16();
            let retry_after =
                response.headers().get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).map(str::to_owned);
            let mut body = response.into_body();
            let mut excerpt = Vec::new();
            while excerpt.len() < ANSWER_EXCERPT_BYTES {
                match body.frame().await {
                    Some(Ok(frame)) => {
                        if let Some(data) = frame.data_ref() {
                            excerpt.extend_from_slice(&data[..data.len().min(ANSWER_EXCERPT_BYTES - excerpt.len())]);
                        }
                    }
                    // An answer cut short still counts by its status.
                    Some(Err(_)) | None => break,
                }
            }
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after, excerpt))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((status, retry_after, excerpt))) => Attempt {
                status: Some(status),
                latency: started.elapsed(),
                excerpt: String::from_utf8_lossy(&excerpt).into_owned(),
                retry_after,
            },
            Ok(Err(err)) => failed(describe(&err)),
            Err(_) => failed(format!("timed out after {} s", self.timeout.as_secs_f64())),
        }
    }
}

/// A client error as one line, its innermost cause included (a refusal by the resolver reads as such).
fn describe(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const LOCAL: UrlPolicy = UrlPolicy { allow_loopback: true };
    const LIVE: UrlPolicy = UrlPolicy { allow_loopback: false };

    /// A receiver on 127.0.0.1 that answers every request with `answer` (raw
    /// HTTP, or silence when `None`) and keeps the requests it got.
    async fn receiver(answer: Option<String>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let (answer, log) = (answer.clone(), log.clone());
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 4096];
                    // Head, then as many body bytes as Content-Length says.
                    loop {
                        let n = socket.read(&mut buffer).await.unwrap_or(0);
                        request.extend_from_slice(&buffer[..n]);
                        let text = String::from_utf8_lossy(&request).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if request.len() >= end + 4 + length || n == 0 {
                                break;
                            }
                        } else if n == 0 {
                            break;
                        }
                    }
                    log.lock().unwrap().push(String::from_utf8_lossy(&request).to_string());
                    match answer {
                        Some(answer) => {
                            let _ = socket.write_all(answer.as_bytes()).await;
                            let _ = socket.shutdown().await;
                        }
                        None => tokio::time::sleep(Duration::from_secs(30)).await,
                    }
                });
            }
        });
        (address, received)
    }

    fn answer(status: &str, headers: &str, body: &str) -> Option<String> {
        Some(format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n{headers}\r\n{body}", body.len()))
    }

    /// A resolver answering `addresses` for every host, counting its calls.
    fn resolving(addresses: Vec<IpAddr>) -> (Lookup, Arc<Mutex<Vec<String>>>) {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let lookup: Lookup = Arc::new(move |host: String| {
            log.lock().unwrap().push(host);
            let addresses = addresses.clone();
            Box::pin(async move { Ok(addresses) })
        });
        (lookup, asked)
    }

    fn sender(policy: UrlPolicy, lookup: Lookup) -> Sender {
        Sender::with_lookup(policy, lookup, Duration::from_millis(500))
    }

    #[tokio::test]
    async fn a_2xx_is_delivered_with_our_headers_and_body() {
        let (address, received) = receiver(answer("204 No Content", "", "")).await;
        let (lookup, _) = resolving(vec![]);
        let url = format!("http://{address}/hook");
        let attempt =
            sender(LOCAL, lookup).post(&url, &[("webhook-id", "evt_1".into())], Bytes::from_static(b"{\"a\":1}")).await;
        assert_eq!(attempt.status, Some(204), "{attempt:?}");
        let request = received.lock().unwrap()[0].clone();
        assert!(request.starts_with("POST /hook HTTP/1.1"), "{request}");
        assert!(request.contains("webhook-id: evt_1") && request.ends_with("{\"a\":1}"), "{request}");
    }

    #[tokio::test]
    async fn on_a_live_stack_loopback_is_refused_before_any_connection() {
        let (address, received) = receiver(answer("200 OK", "", "")).await;
        let (lookup, asked) = resolving(vec![address.ip()]);
        let live = sender(LIVE, lookup);
        for url in [
            format!("http://{address}/"),
            format!("https://{address}/"),
            format!("https://[::ffff:127.0.0.1]:{}/", address.port()),
        ] {
            let attempt = live.post(&url, &[], Bytes::new()).await;
            assert_eq!(attempt.status, None);
            assert!(attempt.excerpt.contains("refused"), "{url}: {}", attempt.excerpt);
        }
        // A host name that resolves to loopback: the answer used to connect is the one checked.
        let attempt = live.post(&format!("https://hooks.example.com:{}/", address.port()), &[], Bytes::new()).await;
        assert!(
            attempt.excerpt.contains("refused: hooks.example.com resolves to a loopback address"),
            "{}",
            attempt.excerpt
        );
        assert_eq!(asked.lock().unwrap().as_slice(), ["hooks.example.com"], "one lookup, no second one to connect");
        assert!(received.lock().unwrap().is_empty(), "nothing reached the receiver");
    }

    #[tokio::test]
    async fn a_host_with_any_non_public_address_is_refused_whatever_else_it_has() {
        for (addresses, class) in [
            (vec!["93.184.215.14", "10.0.0.7"], "private"),
            (vec!["169.254.169.254"], "link-local"),
            (vec!["100.64.0.9"], "shared address space"),
            (vec!["2606:4700::1111", "fd00::1"], "unique local"),
            (vec!["fe80::1"], "link-local"),
            (vec!["::ffff:10.1.1.1"], "private"),
        ] {
            let (lookup, _) = resolving(addresses.iter().map(|a| a.parse().unwrap()).collect());
            // The local switch allows loopback only, nothing else.
            let attempt = sender(LOCAL, lookup).post("http://rebinding.example.com:9/", &[], Bytes::new()).await;
            assert_eq!(attempt.status, None);
            assert!(attempt.excerpt.contains(class), "{addresses:?}: {}", attempt.excerpt);
        }
    }

    #[tokio::test]
    async fn a_redirect_is_a_failed_attempt_and_is_not_followed() {
        let (elsewhere, reached) = receiver(answer("200 OK", "", "")).await;
        let location = format!("location: http://{elsewhere}/\r\n");
        let (address, _) = receiver(answer("302 Found", &location, "")).await;
        let (lookup, _) = resolving(vec![]);
        let attempt = sender(LOCAL, lookup).post(&format!("http://{address}/"), &[], Bytes::new()).await;
        assert_eq!(attempt.status, Some(302));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(reached.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_silent_receiver_times_out_and_a_long_answer_is_cut_at_4_kib() {
        let (silent, _) = receiver(None).await;
        let (lookup, _) = resolving(vec![]);
        let attempt = sender(LOCAL, lookup.clone()).post(&format!("http://{silent}/"), &[], Bytes::new()).await;
        assert_eq!(attempt.status, None);
        assert!(attempt.excerpt.starts_with("timed out"), "{}", attempt.excerpt);
        assert!(attempt.latency < Duration::from_secs(2));

        let long = "x".repeat(10_000);
        let (chatty, _) = receiver(answer("429 Too Many Requests", "retry-after: 120\r\n", &long)).await;
        let attempt = sender(LOCAL, lookup).post(&format!("http://{chatty}/"), &[], Bytes::new()).await;
        assert_eq!(
            (attempt.status, attempt.excerpt.len(), attempt.retry_after.as_deref()),
            (Some(429), ANSWER_EXCERPT_BYTES, Some("120"))
        );
    }
}
