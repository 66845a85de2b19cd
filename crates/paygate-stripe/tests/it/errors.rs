//! Typed errors, and keeping the secret key out of them.

use paygate_stripe::{ClientConfig, SecretString, StripeClient, StripeError};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{KEY, header, key, received, setup};

#[tokio::test]
async fn bad_request_is_a_typed_api_error_and_not_retried() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_missing"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {
                "type": "invalid_request_error",
                "code": "resource_missing",
                "message": "No such checkout.session: 'cs_missing'",
                "param": "session",
                "doc_url": "https://stripe.com/docs/error-codes/resource-missing"
            }
        })))
        .mount(&server)
        .await;

    let err = client
        .retrieve_checkout_session(&key(), "cs_missing")
        .await
        .expect_err("400");
    assert_eq!(received(&server).await.len(), 1, "a 400 is not retried");
    assert!(!err.is_retryable());
    match &err {
        StripeError::Api {
            status,
            error_type,
            code,
            message,
            param,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(error_type, "invalid_request_error");
            assert_eq!(code.as_deref(), Some("resource_missing"));
            assert_eq!(
                message.as_deref(),
                Some("No such checkout.session: 'cs_missing'")
            );
            assert_eq!(param.as_deref(), Some("session"));
        }
        other => panic!("expected Api error, got {other:?}"),
    }
    let shown = err.to_string();
    assert!(shown.contains("400"), "{shown}");
    assert!(shown.contains("resource_missing"), "{shown}");
    assert!(shown.contains("No such checkout.session"), "{shown}");
}

#[tokio::test]
async fn card_error_on_post_is_not_retried() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .respond_with(ResponseTemplate::new(402).set_body_json(json!({
            "error": { "type": "card_error", "code": "card_declined", "message": "Your card was declined." }
        })))
        .mount(&server)
        .await;

    let err = client
        .create_charge(
            &key(),
            &paygate_stripe::CreateCharge::default(),
            "idem-card",
        )
        .await
        .expect_err("402");
    assert_eq!(received(&server).await.len(), 1);
    assert!(matches!(
        &err,
        StripeError::Api { status: 402, error_type, code: Some(code), .. }
            if error_type == "card_error" && code == "card_declined"
    ));
}

#[tokio::test]
async fn bearer_key_is_sent_but_never_shown() {
    let (server, client) = setup().await;
    // A misbehaving server that echoes the whole key back in the error message.
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({
            "error": {
                "type": "invalid_request_error",
                "message": format!("Invalid API Key provided: {KEY}")
            }
        })))
        .mount(&server)
        .await;

    let err = client.retrieve_account(&key()).await.expect_err("401");

    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(
        header(&requests[0], "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );

    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(!display.contains(KEY), "{display}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(display.contains("[REDACTED]"), "{display}");
    assert_eq!(err.status(), Some(401));
    assert!(!format!("{client:?}").contains(KEY));
}

#[tokio::test]
async fn key_is_absent_from_network_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    let client = StripeClient::new(ClientConfig {
        max_retries: 0,
        ..crate::config(format!("http://{addr}"))
    })
    .expect("client builds");

    let err = client
        .retrieve_account(&key())
        .await
        .expect_err("nothing listens");
    assert!(!err.to_string().contains(KEY));
    assert!(!format!("{err:?}").contains(KEY));
}

#[tokio::test]
async fn key_that_is_not_a_header_value_is_rejected_locally() {
    let (server, client) = setup().await;
    let bad = SecretString::from("sk_test_abc\r\nX-Injected: 1");
    let err = client
        .retrieve_account(&bad)
        .await
        .expect_err("invalid key");
    assert!(received(&server).await.is_empty());
    assert!(matches!(
        &err,
        StripeError::Api { status: 401, code: Some(code), .. } if code == "invalid_api_key"
    ));
    assert!(!err.is_retryable());
    assert!(!format!("{err} {err:?}").contains("sk_test_abc"));
}

#[tokio::test]
async fn malformed_success_body_is_a_decode_error() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>not json</html>"))
        .mount(&server)
        .await;

    let err = client.retrieve_account(&key()).await.expect_err("not JSON");
    assert!(matches!(err, StripeError::Decode(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(received(&server).await.len(), 1);
}
