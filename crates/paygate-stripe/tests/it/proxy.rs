//! The client ignores the proxy variables of the environment: a proxy would see every secret key
//! Paygate sends. reqwest reads them once per process, so `proxy_variables_child` runs in a child
//! process of this test binary with them set.

use std::process::Command;

use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{key, received, setup};

const CHILD: &str = "PAYGATE_TEST_PROXY_CHILD";

/// With `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` naming a listener, a call reaches the
/// (fake) Stripe API directly and the listener receives nothing.
#[test]
fn proxy_variables_are_ignored() {
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").expect("a port for the proxy");
    let proxy_url = format!("http://{}", proxy.local_addr().expect("its address"));
    let mut cmd = Command::new(std::env::current_exe().expect("this test binary"));
    cmd.args(["--exact", "proxy::proxy_variables_child", "--nocapture"])
        .env(CHILD, "1")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy");
    for v in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env(v, &proxy_url);
    }
    let out = cmd.output().expect("the child runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "the child did not run: {text}");
    proxy.set_nonblocking(true).expect("non-blocking");
    assert!(
        proxy.accept().is_err(),
        "the proxy received a connection: {text}"
    );
}

/// The child of `proxy_variables_are_ignored` (passes at once when run on its own).
#[tokio::test]
async fn proxy_variables_child() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({ "id": "acct_1", "object": "account", "charges_enabled": true }),
            ),
        )
        .mount(&server)
        .await;
    let account = client.retrieve_account(&key()).await;
    assert!(account.is_ok(), "{account:?}");
    assert_eq!(received(&server).await.len(), 1);
}
