//! Real servers on port 0 that stand for a merchant's systems: an HTTP receiver of
//! notifications answering a script of statuses, a tarpit that takes requests and never
//! answers, and an SMTP sink that keeps every e-mail.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// Answers the n-th request with `script[n]`, and 200 once the script is used up.
#[derive(Clone, Debug)]
struct Script {
    statuses: Arc<Vec<u16>>,
    n: Arc<AtomicUsize>,
}

impl Respond for Script {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let i = self.n.fetch_add(1, Ordering::SeqCst);
        let code = self.statuses.get(i).copied().unwrap_or(200);
        ResponseTemplate::new(code).set_body_string(format!("answer {i}: {code}"))
    }
}

/// A notification receiver.
#[derive(Debug)]
pub struct Receiver {
    pub server: MockServer,
}

impl Receiver {
    /// Answers `statuses` in turn, then 200.
    pub async fn start(statuses: &[u16]) -> Self {
        Self::on(MockServer::start().await, statuses).await
    }

    /// The same on a given listener (to bring a receiver back on the address it had).
    pub async fn start_on(listener: std::net::TcpListener, statuses: &[u16]) -> Self {
        let server = MockServer::builder().listener(listener).start().await;
        Self::on(server, statuses).await
    }

    async fn on(server: MockServer, statuses: &[u16]) -> Self {
        Mock::given(method("POST"))
            .respond_with(Script {
                statuses: Arc::new(statuses.to_vec()),
                n: Arc::new(AtomicUsize::new(0)),
            })
            .mount(&server)
            .await;
        Self { server }
    }

    /// The URL to register.
    pub fn url(&self) -> String {
        format!("{}/hooks/paygate", self.server.uri())
    }

    /// Every request received so far.
    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }
}

/// An endpoint that accepts connections, reads each request's first line and never answers,
/// holding every connection open until [`Tarpit::release`] (or until it is dropped).
#[derive(Debug)]
pub struct Tarpit {
    pub addr: std::net::SocketAddr,
    held: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accepted: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Tarpit {
    /// Listens on 127.0.0.1, port 0.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("binding the tarpit: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("tarpit address: {e}"));
        let held: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let paths: Arc<Mutex<Vec<String>>> = Arc::default();
        let accepted = Arc::new(AtomicUsize::new(0));
        let (h, p, n) = (held.clone(), paths.clone(), accepted.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                n.fetch_add(1, Ordering::SeqCst);
                let p = p.clone();
                let conn = tokio::spawn(async move {
                    let mut r = BufReader::new(sock);
                    let mut line = String::new();
                    if r.read_line(&mut line).await.is_ok()
                        && let Some(path) = line.split_whitespace().nth(1)
                        && let Ok(mut p) = p.lock()
                    {
                        p.push(path.to_owned());
                    }
                    // Never answers: the connection stays open until released.
                    std::future::pending::<()>().await;
                });
                if let Ok(mut h) = h.lock() {
                    h.push(conn);
                }
            }
        });
        Self {
            addr,
            held,
            accepted,
            paths,
            accepting,
        }
    }

    /// A URL on the tarpit.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Connections accepted so far (each held open until released).
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The path of every request whose first line arrived, in order.
    pub fn paths(&self) -> Vec<String> {
        self.paths.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Stops accepting and closes every connection held: the waiting clients see it end.
    pub fn release(&self) {
        self.accepting.abort();
        if let Ok(mut h) = self.held.lock() {
            for c in h.drain(..) {
                c.abort();
            }
        }
    }
}

impl Drop for Tarpit {
    fn drop(&mut self) {
        self.release();
    }
}

/// An e-mail the sink received.
#[derive(Clone, Debug)]
pub struct SunkMail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (dot-unstuffed).
    pub data: String,
}

/// A minimal SMTP server that accepts everything and keeps it.
#[derive(Clone, Debug)]
pub struct SmtpSink {
    pub addr: std::net::SocketAddr,
    mails: Arc<Mutex<Vec<SunkMail>>>,
}

impl SmtpSink {
    /// Listens on 127.0.0.1, port 0.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("binding the SMTP sink: {e}"));
        Self::on(listener)
    }

    /// The same on a given listener (to bring an SMTP server up on an address that refused
    /// connections until now).
    pub fn start_on(listener: std::net::TcpListener) -> Self {
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("SMTP sink listener: {e}"));
        let listener = tokio::net::TcpListener::from_std(listener)
            .unwrap_or_else(|e| panic!("SMTP sink listener: {e}"));
        Self::on(listener)
    }

    fn on(listener: tokio::net::TcpListener) -> Self {
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("SMTP sink address: {e}"));
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = mails.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let _ = session(sock, kept).await;
                });
            }
        });
        Self { addr, mails }
    }

    /// `PAYGATE_SMTP_URL` for this sink.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Every e-mail received so far.
    pub fn mails(&self) -> Vec<SunkMail> {
        self.mails.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

async fn session(
    sock: tokio::net::TcpStream,
    kept: Arc<Mutex<Vec<SunkMail>>>,
) -> std::io::Result<()> {
    let (r, mut w) = sock.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink ESMTP\r\n").await?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            w.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..].trim().trim_matches(['<', '>']).to_owned();
            w.write_all(b"250 OK\r\n").await?;
        } else if upper.starts_with("RCPT TO:") {
            to.push(cmd[8..].trim().trim_matches(['<', '>']).to_owned());
            w.write_all(b"250 OK\r\n").await?;
        } else if upper == "DATA" {
            w.write_all(b"354 go ahead\r\n").await?;
            let mut data = String::new();
            loop {
                line.clear();
                if r.read_line(&mut line).await? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            if let Ok(mut m) = kept.lock() {
                m.push(SunkMail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
            }
            w.write_all(b"250 OK queued\r\n").await?;
        } else if upper == "QUIT" {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            w.write_all(b"250 OK\r\n").await?;
        }
    }
}
