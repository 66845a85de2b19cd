//! Integration tests for `paygate-stripe`, run against a wiremock fake of the
//! Stripe API on 127.0.0.1 (random port).

mod checkout;
mod disputes;
mod errors;
mod proxy;
mod requests;
mod retries;
mod subscriptions;

use std::time::Duration;

use paygate_stripe::{ClientConfig, StripeClient};
use secrecy::SecretString;
use wiremock::{MockServer, Request};

/// The secret key used by the tests. Assertions check that it never leaks.
pub const KEY: &str = "sk_test_51SuperSecretKeyValue0123456789";

pub fn key() -> SecretString {
    SecretString::from(KEY)
}

/// A config pointing at `api_base`, with short timeouts and millisecond backoff.
pub fn config(api_base: String) -> ClientConfig {
    ClientConfig {
        files_base: api_base.clone(),
        api_base,
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(5),
        max_retries: 2,
        initial_backoff: Duration::from_millis(2),
    }
}

/// A fake Stripe server and a client pointed at it.
pub async fn setup() -> (MockServer, StripeClient) {
    let server = MockServer::start().await;
    let client = StripeClient::new(config(server.uri())).expect("client builds");
    (server, client)
}

/// The requests the fake server received, in order.
pub async fn received(server: &MockServer) -> Vec<Request> {
    server
        .received_requests()
        .await
        .expect("request recording is enabled")
}

/// The value of header `name` of `request`, as a string.
pub fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
    request.headers.get(name).and_then(|v| v.to_str().ok())
}

/// The value of query parameter `name` of `request`.
pub fn query(request: &Request, name: &str) -> Option<String> {
    request
        .url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Decodes an `application/x-www-form-urlencoded` body into ordered pairs.
pub fn decode_form(body: &[u8]) -> Vec<(String, String)> {
    let body = std::str::from_utf8(body).expect("form body is UTF-8");
    body.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).expect("ascii hex");
                out.push(u8::from_str_radix(hex, 16).expect("valid percent escape"));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).expect("decoded form value is UTF-8")
}
