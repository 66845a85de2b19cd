//! A minimal keep-alive HTTP/1.1 client for plain `http://` URLs.
//!
//! Each request is serialised once, before the clock starts; sending it is one `write` and
//! reading the answer is usually one `read`. This keeps the load generator's own CPU cost per
//! request a few microseconds, so that on a small machine it does not compete with the server it
//! measures (a general-purpose client costs ~100 µs per request).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where to connect and what to put in the request line.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` to connect to.
    pub addr: String,
    /// `Host` header value.
    pub host: String,
    /// Path and query.
    pub path: String,
}

impl Target {
    /// Parses an `http://host[:port]/path` URL; `None` for any other scheme.
    pub fn parse(url: &str) -> Option<Self> {
        let rest = url.strip_prefix("http://")?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return None;
        }
        let addr = if authority.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && !authority.ends_with(']')
        }) {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Some(Self {
            addr,
            host: authority.to_owned(),
            path: path.to_owned(),
        })
    }

    /// The whole request: request line, headers and body.
    pub fn request(&self, signature: &str, body: &[u8]) -> Vec<u8> {
        let head = format!(
            "POST {} HTTP/1.1\r\nhost: {}\r\nuser-agent: paygate-bench\r\ncontent-type: application/json; charset=utf-8\r\nstripe-signature: {}\r\ncontent-length: {}\r\n\r\n",
            self.path,
            self.host,
            signature,
            body.len()
        );
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
        out
    }
}

/// One keep-alive connection.
pub struct Conn {
    addr: String,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

impl Conn {
    pub fn new(addr: &str) -> Self {
        Self {
            addr: addr.to_owned(),
            stream: None,
            buf: Vec::with_capacity(4096),
        }
    }

    /// Opens the connection now (before a run's clock starts) if it is not open yet.
    pub async fn connect(&mut self) -> io::Result<()> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        Ok(())
    }

    /// Sends `request` and returns the answer's status. Reconnects once if a kept-alive
    /// connection turns out to be closed before any byte of the answer arrived.
    pub async fn send(&mut self, request: &[u8]) -> io::Result<u16> {
        self.drop_if_stale();
        let reused = self.stream.is_some();
        match self.try_send(request).await {
            Ok(s) => Ok(s),
            Err(e) if reused && self.buf.is_empty() => {
                let _ = e;
                self.stream = None;
                self.try_send(request).await
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    /// Forgets a kept-alive connection on which the server has already spoken unasked: a
    /// server answers 408 and closes a connection that sent no request within its timeout
    /// (actix-web: 10 s), and closes one idle beyond its keep-alive. Sending on it would read
    /// that 408 as our answer, so an open-loop run longer than the timeout, whose pool keeps
    /// some connections unused until a latency spike, would count refusals the server never
    /// made to a request.
    fn drop_if_stale(&mut self) {
        if let Some(stream) = &self.stream {
            let mut probe = [0u8; 512];
            match stream.try_read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                _ => self.stream = None,
            }
        }
    }

    async fn try_send(&mut self, request: &[u8]) -> io::Result<u16> {
        if self.stream.is_none() {
            let s = TcpStream::connect(&self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
        }
        let stream = self.stream.as_mut().ok_or_else(|| bad("no connection"))?;
        stream.write_all(request).await?;
        self.buf.clear();
        // Read until the head is complete.
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > 64 * 1024 {
                return Err(bad("response head too large"));
            }
            read_more(stream, &mut self.buf).await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).map_err(|_| bad("head not UTF-8"))?;
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| bad("no status"))?;
        let mut length = None;
        let mut chunked = false;
        let mut close = head.starts_with("HTTP/1.0");
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        if chunked {
            // Read until the last chunk's terminator.
            while find(&self.buf[head_end..], b"0\r\n\r\n").is_none() {
                read_more(stream, &mut self.buf).await?;
            }
        } else if let Some(n) = length {
            while self.buf.len() < head_end + n {
                read_more(stream, &mut self.buf).await?;
            }
        } else {
            close = true;
        }
        if close {
            self.stream = None;
        }
        self.buf.clear();
        Ok(status)
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_http_urls_only() {
        let t =
            Target::parse("http://127.0.0.1:18080/callbacks/v1.0/stripe/acme").expect("http URL");
        assert_eq!(t.addr, "127.0.0.1:18080");
        assert_eq!(t.host, "127.0.0.1:18080");
        assert_eq!(t.path, "/callbacks/v1.0/stripe/acme");
        let t = Target::parse("http://shop.example").expect("http URL");
        assert_eq!(t.addr, "shop.example:80");
        assert_eq!(t.path, "/");
        assert!(Target::parse("https://shop.example/hook").is_none());
    }

    #[test]
    fn a_connection_the_server_timed_out_is_not_read_as_the_answer() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr").to_string();
            let server = tokio::spawn(async move {
                // The first connection: no request came in time (as actix-web after 10 s).
                let (mut s, _) = listener.accept().await.expect("accept");
                s.write_all(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .expect("write");
                drop(s);
                // The second: a request, answered.
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = Vec::new();
                while find(&buf, b"{}").is_none() {
                    read_more(&mut s, &mut buf).await.expect("request");
                }
                s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .expect("write");
            });
            let mut conn = Conn::new(&addr);
            conn.connect().await.expect("connect");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            let t = Target::parse(&format!("http://{addr}/hook")).expect("http URL");
            let status = conn.send(&t.request("t=1,v1=ab", b"{}")).await.expect("answer");
            assert_eq!(status, 200);
            server.await.expect("server");
        });
    }

    #[test]
    fn a_request_carries_the_signature_and_exact_length() {
        let t = Target::parse("http://h:1/p").expect("http URL");
        let r = String::from_utf8(t.request("t=1,v1=ab", b"{\"a\":1}")).expect("ASCII");
        assert!(r.starts_with("POST /p HTTP/1.1\r\nhost: h:1\r\n"));
        assert!(r.contains("stripe-signature: t=1,v1=ab\r\n"));
        assert!(r.ends_with("content-length: 7\r\n\r\n{\"a\":1}"));
    }
}
