//! Retry behaviour: what is retried, how often, and with which idempotency key.

use std::collections::BTreeMap;
use std::time::Duration;

use paygate_stripe::{CreateCharge, StripeClient, StripeError};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{config, header, key, received, setup};

fn charge_params() -> CreateCharge {
    CreateCharge {
        amount: 500,
        currency: "eur".to_owned(),
        source: "src_1".to_owned(),
        description: Some("Order 1".to_owned()),
        metadata: BTreeMap::new(),
    }
}

fn charge_json() -> serde_json::Value {
    json!({ "id": "ch_1", "object": "charge", "status": "succeeded", "amount": 500, "currency": "eur", "paid": true })
}

fn account_json() -> serde_json::Value {
    json!({ "id": "acct_1", "object": "account", "charges_enabled": true })
}

#[tokio::test]
async fn post_500_then_200_is_retried_with_the_same_idempotency_key() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({
            "error": { "type": "api_error", "message": "Something went wrong" }
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_json(charge_json()))
        .expect(1)
        .mount(&server)
        .await;

    let charge = client
        .create_charge(&key(), &charge_params(), "idem-retry-1")
        .await
        .expect("second attempt succeeds");
    assert_eq!(charge.id, "ch_1");

    let requests = received(&server).await;
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!(header(request, "idempotency-key"), Some("idem-retry-1"));
    }
    assert_eq!(requests[0].body, requests[1].body);
}

#[tokio::test]
async fn rate_limited_429_is_retried() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(429).set_body_json(json!({
            "error": { "type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests" }
        })))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(200).set_body_json(account_json()))
        .expect(1)
        .mount(&server)
        .await;

    let account = client
        .retrieve_account(&key())
        .await
        .expect("retried after 429");
    assert_eq!(account.id, "acct_1");
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn gives_up_after_max_retries() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream unavailable"))
        .mount(&server)
        .await;

    let err = client
        .create_charge(&key(), &charge_params(), "idem-retry-2")
        .await
        .expect_err("always 503");
    // One attempt plus `max_retries` (2) retries.
    assert_eq!(received(&server).await.len(), 3);
    assert!(err.is_retryable());
    match err {
        StripeError::Api {
            status,
            error_type,
            message,
            ..
        } => {
            assert_eq!(status, 503);
            assert_eq!(error_type, "unknown");
            assert_eq!(message.as_deref(), Some("upstream unavailable"));
        }
        other => panic!("expected Api error, got {other:?}"),
    }
}

#[tokio::test]
async fn stripe_should_retry_false_is_honoured() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .respond_with(
            ResponseTemplate::new(500)
                .insert_header("Stripe-Should-Retry", "false")
                .set_body_json(
                    json!({ "error": { "type": "api_error", "message": "do not retry" } }),
                ),
        )
        .mount(&server)
        .await;

    let err = client
        .create_charge(&key(), &charge_params(), "idem-retry-3")
        .await
        .expect_err("500");
    assert_eq!(err.status(), Some(500));
    assert_eq!(received(&server).await.len(), 1);
}

#[tokio::test]
async fn stripe_should_retry_true_retries_a_409() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .respond_with(
            ResponseTemplate::new(409)
                .insert_header("Stripe-Should-Retry", "true")
                .set_body_json(
                    json!({ "error": { "type": "invalid_request_error", "code": "lock_timeout" } }),
                ),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(200).set_body_json(charge_json()))
        .mount(&server)
        .await;

    client
        .create_charge(&key(), &charge_params(), "idem-retry-4")
        .await
        .expect("retried after 409 with Stripe-Should-Retry: true");
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn timeout_is_retried() {
    let server = MockServer::start().await;
    let mut config = config(server.uri());
    config.request_timeout = Duration::from_millis(200);
    let client = StripeClient::new(config).expect("client builds");
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(account_json())
                .set_delay(Duration::from_secs(2)),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(200).set_body_json(account_json()))
        .mount(&server)
        .await;

    let account = client
        .retrieve_account(&key())
        .await
        .expect("second attempt succeeds");
    assert_eq!(account.id, "acct_1");
    assert_eq!(received(&server).await.len(), 2);
}

#[tokio::test]
async fn connection_refused_is_a_retryable_network_error() {
    // Reserve a free port, then close it so connecting is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);

    let client = StripeClient::new(config(format!("http://{addr}"))).expect("client builds");
    let err = client
        .retrieve_account(&key())
        .await
        .expect_err("nothing listens");
    assert!(matches!(err, StripeError::Network(_)), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(err.status(), None);
}

/// A client for calls a stranger can trigger (the shopper's landing page) gives a 429 back at
/// once, even when Stripe says to retry: retrying would only add to the account's load. Other
/// failures are retried as before, and the client it came from still retries its 429s.
#[tokio::test]
async fn a_429_is_not_retried_by_a_client_without_429_retries() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_busy"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Stripe-Should-Retry", "true")
                .set_body_json(json!({
                    "error": { "type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests" }
                })),
        )
        .mount(&server)
        .await;
    let shopper = client.without_429_retries();
    let err = shopper
        .retrieve_checkout_session(&key(), "cs_test_busy")
        .await
        .expect_err("429");
    assert_eq!(err.status(), Some(429));
    assert_eq!(
        received(&server).await.len(),
        1,
        "a 429 is answered at once"
    );

    let err = client
        .retrieve_checkout_session(&key(), "cs_test_busy")
        .await
        .expect_err("429");
    assert_eq!(err.status(), Some(429));
    assert_eq!(
        received(&server).await.len(),
        1 + 3,
        "the ordinary client still retries (max_retries 2)"
    );

    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(503).set_body_string("upstream unavailable"))
        .mount(&server)
        .await;
    shopper.retrieve_account(&key()).await.expect_err("503");
    assert_eq!(
        received(&server).await.len(),
        4 + 3,
        "other failures are retried as configured"
    );
}
