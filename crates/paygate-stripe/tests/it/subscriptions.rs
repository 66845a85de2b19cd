//! The subscription calls and the customer portal: what each sends (method, path, idempotency
//! key, form) and what it parses; and the `subscription`-mode Checkout parameters.

use std::collections::BTreeMap;

use paygate_stripe::{
    CancelSubscription, CreateBillingPortalSession, CreateCheckoutSession, LineItemParam,
    ResumeSubscription, Subscription, UpdateSubscription,
};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{KEY, decode_form, key, received, setup};

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A subscription as a current API version sends it: the period on the items.
fn subscription(status: &str, cancel_at_period_end: bool) -> Value {
    json!({
        "id": "sub_1",
        "object": "subscription",
        "status": status,
        "customer": {"id": "cus_1", "object": "customer"},
        "cancel_at_period_end": cancel_at_period_end,
        "cancel_at": if cancel_at_period_end { json!(1_702_000_000) } else { Value::Null },
        "canceled_at": null,
        "ended_at": null,
        "pause_collection": null,
        "latest_invoice": "in_1",
        "livemode": false,
        "created": 1_699_000_000,
        "items": {"object": "list", "has_more": false, "data": [{
            "id": "si_1", "object": "subscription_item", "quantity": 1,
            "current_period_start": 1_699_400_000, "current_period_end": 1_702_000_000,
            "price": {"id": "price_m", "object": "price", "product": "prod_1", "unit_amount": 900,
                      "currency": "eur", "recurring": {"interval": "month"}}
        }]}
    })
}

#[tokio::test]
async fn cancel_at_period_end_posts_the_flag_with_our_idempotency_key() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions/sub_1"))
        .and(header("idempotency-key", "idem-sub-1"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription("active", true)))
        .expect(1)
        .mount(&server)
        .await;

    let params = UpdateSubscription {
        cancel_at_period_end: Some(true),
        ..UpdateSubscription::default()
    };
    let sub = client
        .update_subscription(&key(), "sub_1", &params, "idem-sub-1")
        .await
        .expect("subscription updated");

    assert!(sub.cancel_at_period_end);
    assert_eq!(sub.cancel_at, Some(1_702_000_000));
    assert_eq!(sub.customer.as_deref(), Some("cus_1"));
    assert_eq!(sub.latest_invoice.as_deref(), Some("in_1"));
    // Read from the first item on API versions that moved the period there.
    assert_eq!(sub.current_period_start, Some(1_699_400_000));
    assert_eq!(sub.current_period_end, Some(1_702_000_000));
    let requests = received(&server).await;
    assert_eq!(
        decode_form(&requests[0].body),
        pairs(&[("cancel_at_period_end", "true")])
    );
}

#[tokio::test]
async fn cancel_now_is_a_delete_without_a_body() {
    let (server, client) = setup().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/subscriptions/sub_1"))
        .and(header("idempotency-key", "idem-cancel-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "sub_1", "object": "subscription", "status": "canceled",
            "customer": "cus_1", "cancel_at_period_end": false,
            "canceled_at": 1_700_000_100, "ended_at": 1_700_000_100,
            "current_period_start": 1_699_400_000, "current_period_end": 1_702_000_000,
            "livemode": false, "created": 1_699_000_000
        })))
        .expect(1)
        .mount(&server)
        .await;

    let sub = client
        .cancel_subscription(
            &key(),
            "sub_1",
            &CancelSubscription::default(),
            "idem-cancel-1",
        )
        .await
        .expect("subscription canceled");
    assert_eq!(sub.status, "canceled");
    assert_eq!(sub.ended_at, Some(1_700_000_100));
    // The subscription's own period (older API versions) is read first.
    assert_eq!(sub.current_period_end, Some(1_702_000_000));
    let requests = received(&server).await;
    assert!(requests[0].body.is_empty());
    assert!(requests[0].headers.get("content-type").is_none());
}

#[tokio::test]
async fn cancel_now_sends_its_options_when_set() {
    let (server, client) = setup().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription("canceled", false)))
        .mount(&server)
        .await;
    let params = CancelSubscription {
        invoice_now: Some(true),
        prorate: Some(false),
    };
    client
        .cancel_subscription(&key(), "sub_1", &params, "idem-cancel-2")
        .await
        .expect("subscription canceled");
    let requests = received(&server).await;
    assert_eq!(
        decode_form(&requests[0].body),
        pairs(&[("invoice_now", "true"), ("prorate", "false")])
    );
}

#[tokio::test]
async fn resume_posts_to_the_resume_path() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions/sub_1/resume"))
        .and(header("idempotency-key", "idem-resume-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription("active", false)))
        .expect(2)
        .mount(&server)
        .await;
    let sub = client
        .resume_subscription(
            &key(),
            "sub_1",
            &ResumeSubscription::default(),
            "idem-resume-1",
        )
        .await
        .expect("subscription resumed");
    assert_eq!(sub.status, "active");

    let params = ResumeSubscription {
        billing_cycle_anchor: Some("unchanged".into()),
        proration_behavior: Some("none".into()),
    };
    client
        .resume_subscription(&key(), "sub_1", &params, "idem-resume-1")
        .await
        .expect("subscription resumed");
    let requests = received(&server).await;
    assert!(requests[0].body.is_empty());
    assert_eq!(
        decode_form(&requests[1].body),
        pairs(&[
            ("billing_cycle_anchor", "unchanged"),
            ("proration_behavior", "none")
        ])
    );
}

#[tokio::test]
async fn subscription_ids_cannot_escape_their_path_segment() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(subscription("active", false)))
        .mount(&server)
        .await;
    client
        .update_subscription(
            &key(),
            "sub_1/../../v1/charges",
            &UpdateSubscription::default(),
            "idem-x",
        )
        .await
        .expect("answered");
    let requests = received(&server).await;
    assert_eq!(
        requests[0].url.path(),
        "/v1/subscriptions/sub_1%2F..%2F..%2Fv1%2Fcharges"
    );
}

#[tokio::test]
async fn billing_portal_session_sends_customer_and_return_url() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .and(header("idempotency-key", "idem-portal-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "bps_1", "object": "billing_portal.session", "customer": "cus_1",
            "return_url": "https://shop.example/account", "livemode": false,
            "url": "https://billing.stripe.com/p/session/test_abc", "created": 1_700_000_000
        })))
        .expect(1)
        .mount(&server)
        .await;
    let params = CreateBillingPortalSession {
        customer: "cus_1".into(),
        return_url: Some("https://shop.example/account".into()),
        locale: Some("it".into()),
    };
    let session = client
        .create_billing_portal_session(&key(), &params, "idem-portal-1")
        .await
        .expect("portal session created");
    assert_eq!(session.url, "https://billing.stripe.com/p/session/test_abc");
    assert_eq!(session.customer, "cus_1");
    assert_eq!(
        session.return_url.as_deref(),
        Some("https://shop.example/account")
    );
    let requests = received(&server).await;
    assert_eq!(
        decode_form(&requests[0].body),
        pairs(&[
            ("customer", "cus_1"),
            ("return_url", "https://shop.example/account"),
            ("locale", "it"),
        ])
    );
}

#[test]
fn subscription_mode_checkout_encodes_prices_customer_and_subscription_metadata() {
    let params = CreateCheckoutSession {
        mode: "subscription".into(),
        line_items: vec![
            LineItemParam {
                price: Some("price_monthly".into()),
                price_data: None,
                quantity: 2,
            },
            LineItemParam {
                price: Some("price_seat".into()),
                price_data: None,
                quantity: 1,
            },
        ],
        success_url: Some("https://pay.example/ok".into()),
        customer: Some("cus_1".into()),
        metadata: BTreeMap::from([("paygate_order_id".into(), "ord_1".into())]),
        subscription_metadata: BTreeMap::from([("plan".into(), "pro".into())]),
        ..CreateCheckoutSession::default()
    };
    assert_eq!(
        params.to_form().into_pairs(),
        pairs(&[
            ("mode", "subscription"),
            ("line_items[0][price]", "price_monthly"),
            ("line_items[0][quantity]", "2"),
            ("line_items[1][price]", "price_seat"),
            ("line_items[1][quantity]", "1"),
            ("success_url", "https://pay.example/ok"),
            ("customer", "cus_1"),
            ("metadata[paygate_order_id]", "ord_1"),
            ("subscription_data[metadata][plan]", "pro"),
        ])
    );
}

#[test]
fn paused_collection_and_null_fields_deserialize() {
    let sub: Subscription = serde_json::from_value(json!({
        "id": "sub_2", "object": "subscription", "status": "active",
        "customer": null, "cancel_at_period_end": null,
        "pause_collection": {"behavior": "keep_as_draft", "resumes_at": null},
        "latest_invoice": {"id": "in_9", "object": "invoice"},
        "items": null, "livemode": true, "created": 5
    }))
    .expect("subscription deserializes");
    assert_eq!(sub.pause_collection.as_deref(), Some("keep_as_draft"));
    assert_eq!(sub.latest_invoice.as_deref(), Some("in_9"));
    assert_eq!(sub.customer, None);
    assert!(!sub.cancel_at_period_end);
    assert_eq!(sub.current_period_end, None);
    assert!(sub.livemode);
}
