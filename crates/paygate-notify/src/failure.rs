//! What kind of failure a recorded delivery error is, so a page can say it in plain, translated
//! words and keep the technical text (an error chain in English) behind a disclosure.
//!
//! The worker records errors as text (`attempt_log[].error`, `last_error`); this reads them
//! back. Unknown texts are [`FailureKind::Other`], never an error.

/// The kind of a failed delivery attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// No (complete) answer in time.
    Timeout,
    /// The endpoint's host refused the connection (nothing listens on the port).
    ConnectionRefused,
    /// The host name could not be resolved.
    Dns,
    /// The TLS handshake or the certificate failed.
    Tls,
    /// Refused by Paygate's policy: the URL reaches a private, loopback or link-local address.
    PrivateAddress,
    /// Another connection failure (reset, unreachable network …).
    Connect,
    /// The endpoint answered with a non-2xx HTTP status.
    HttpStatus(u16),
    /// Sending the e-mail failed, or no mail server is configured.
    Email,
    /// Anything else.
    Other,
}

impl FailureKind {
    /// Classifies a recorded error and the attempt's HTTP status, if any.
    pub fn of(error: &str, status_code: Option<i32>) -> Self {
        let e = error.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| e.contains(w));
        if has(&[
            "private address",
            "no public address",
            "link-local",
            "loopback",
        ]) {
            FailureKind::PrivateAddress
        } else if has(&[
            "dns error",
            "failed to lookup address",
            "name or service not known",
            "no such host",
            "nodename nor servname",
            "name resolution",
            "does not resolve",
        ]) {
            FailureKind::Dns
        } else if has(&["timed out", "timeout", "deadline has elapsed"]) {
            FailureKind::Timeout
        } else if has(&["connection refused"]) {
            FailureKind::ConnectionRefused
        } else if has(&["certificate", "tls", "ssl", "handshake"]) {
            FailureKind::Tls
        } else if has(&["smtp", "e-mail", "mail server"]) {
            FailureKind::Email
        } else if has(&[
            "could not connect",
            "connection reset",
            "unreachable",
            "connect error",
        ]) {
            FailureKind::Connect
        } else if let Some(code) = status_code
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| !(200..300).contains(c))
        {
            FailureKind::HttpStatus(code)
        } else {
            FailureKind::Other
        }
    }

    /// A stable name of the kind (`timeout`, `http_status` …), e.g. for a catalogue key.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::Timeout => "timeout",
            FailureKind::ConnectionRefused => "connection_refused",
            FailureKind::Dns => "dns",
            FailureKind::Tls => "tls",
            FailureKind::PrivateAddress => "private_address",
            FailureKind::Connect => "connect",
            FailureKind::HttpStatus(_) => "http_status",
            FailureKind::Email => "email",
            FailureKind::Other => "other",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::FailureKind::{self, *};

    #[test]
    fn recorded_errors_are_classified() {
        let cases: &[(&str, Option<i32>, FailureKind)] = &[
            ("timed out", None, Timeout),
            ("timed out: no complete answer within 20 s", None, Timeout),
            (
                "could not connect: error sending request for url (http://127.0.0.1:9/x): client error (Connect): tcp connect error: Connection refused (os error 111)",
                None,
                ConnectionRefused,
            ),
            (
                "could not connect: error sending request for url (https://x.invalid/): client error (Connect): dns error: failed to lookup address information: Name or service not known",
                None,
                Dns,
            ),
            (
                "could not connect: error sending request: client error (Connect): dns error: localhost resolves to no public address",
                None,
                PrivateAddress,
            ),
            (
                "refused: the URL points to a private address (10.0.0.8)",
                None,
                PrivateAddress,
            ),
            (
                "could not connect: client error (Connect): invalid peer certificate: UnknownIssuer",
                None,
                Tls,
            ),
            ("the endpoint answered 503", Some(503), HttpStatus(503)),
            ("SMTP is not configured (PAYGATE_SMTP_URL)", None, Email),
            (
                "could not connect: client error (Connect): Connection reset by peer",
                None,
                Connect,
            ),
            ("the endpoint's secret is unreadable", None, Other),
        ];
        for (error, code, kind) in cases {
            assert_eq!(FailureKind::of(error, *code), *kind, "{error}");
        }
        assert_eq!(HttpStatus(500).name(), "http_status");
    }
}
