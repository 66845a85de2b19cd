//! What each call sends (method, path, headers, form encoding) and what it parses.

use std::collections::BTreeMap;

use paygate_stripe::{
    CreateCharge, CreateCheckoutSession, LineItemParam, ListEvents, PriceData, ProductData,
};
use serde_json::json;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::{KEY, decode_form, key, received, setup};

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn create_checkout_session_form_encodes_nested_params() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .and(header("idempotency-key", "idem-create-1"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_new",
            "object": "checkout.session",
            "status": "open",
            "payment_status": "unpaid",
            "mode": "payment",
            "url": "https://checkout.stripe.com/c/pay/cs_test_new",
            "payment_intent": null,
            "expires_at": 1_700_086_400
        })))
        .expect(1)
        .mount(&server)
        .await;

    let params = CreateCheckoutSession {
        mode: "payment".to_owned(),
        line_items: vec![
            LineItemParam {
                price: None,
                price_data: Some(PriceData {
                    currency: "eur".to_owned(),
                    unit_amount: 1250,
                    product_data: ProductData {
                        name: "Ticket & Co".to_owned(),
                        description: Some("Row 5, seat 12".to_owned()),
                    },
                }),
                quantity: 2,
            },
            LineItemParam {
                price: Some("price_123".to_owned()),
                price_data: None,
                quantity: 1,
            },
        ],
        success_url: Some("https://shop.example/ok?session={CHECKOUT_SESSION_ID}".to_owned()),
        cancel_url: Some("https://shop.example/cancel".to_owned()),
        customer_email: Some("ada+test@example.com".to_owned()),
        client_reference_id: Some("order-42".to_owned()),
        metadata: BTreeMap::from([
            ("order_id".to_owned(), "42".to_owned()),
            ("tenant".to_owned(), "acme".to_owned()),
        ]),
        ..CreateCheckoutSession::default()
    };
    let session = client
        .create_checkout_session(&key(), &params, "idem-create-1")
        .await
        .expect("session created");
    assert_eq!(session.id, "cs_test_new");
    assert_eq!(
        session.url.as_deref(),
        Some("https://checkout.stripe.com/c/pay/cs_test_new")
    );
    assert_eq!(session.payment_intent, None);

    let requests = received(&server).await;
    assert_eq!(requests.len(), 1);
    let body = &requests[0].body;
    let raw = std::str::from_utf8(body).expect("UTF-8 body");
    // Brackets in keys stay literal, as in Stripe's own libraries.
    assert!(
        raw.contains("line_items[0][price_data][currency]=eur"),
        "{raw}"
    );
    assert!(raw.contains("metadata[order_id]=42"), "{raw}");
    assert!(
        raw.contains("customer_email=ada%2Btest%40example.com"),
        "{raw}"
    );

    assert_eq!(
        decode_form(body),
        pairs(&[
            ("mode", "payment"),
            ("line_items[0][price_data][currency]", "eur"),
            ("line_items[0][price_data][unit_amount]", "1250"),
            (
                "line_items[0][price_data][product_data][name]",
                "Ticket & Co"
            ),
            (
                "line_items[0][price_data][product_data][description]",
                "Row 5, seat 12"
            ),
            ("line_items[0][quantity]", "2"),
            ("line_items[1][price]", "price_123"),
            ("line_items[1][quantity]", "1"),
            (
                "success_url",
                "https://shop.example/ok?session={CHECKOUT_SESSION_ID}"
            ),
            ("cancel_url", "https://shop.example/cancel"),
            ("customer_email", "ada+test@example.com"),
            ("client_reference_id", "order-42"),
            ("metadata[order_id]", "42"),
            ("metadata[tenant]", "acme"),
        ])
    );
}

#[tokio::test]
async fn create_charge_sends_source_and_metadata() {
    let (server, client) = setup().await;
    Mock::given(method("POST"))
        .and(path("/v1/charges"))
        .and(header("idempotency-key", "idem-charge-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "ch_1",
            "object": "charge",
            "status": "succeeded",
            "amount": 999,
            "currency": "eur",
            "paid": true,
            "source": { "id": "src_1", "object": "source", "type": "sofort" },
            "payment_intent": null,
            "metadata": { "order_id": "7" }
        })))
        .expect(1)
        .mount(&server)
        .await;

    let charge = client
        .create_charge(
            &key(),
            &CreateCharge {
                amount: 999,
                currency: "eur".to_owned(),
                source: "src_1".to_owned(),
                description: None,
                metadata: BTreeMap::from([("order_id".to_owned(), "7".to_owned())]),
            },
            "idem-charge-1",
        )
        .await
        .expect("charge created");
    assert_eq!(charge.id, "ch_1");
    assert_eq!(charge.status, "succeeded");
    assert_eq!(charge.amount, 999);
    assert_eq!(charge.currency, "eur");
    assert!(charge.paid);
    assert_eq!(charge.source_id.as_deref(), Some("src_1"));
    assert_eq!(charge.payment_intent, None);
    assert_eq!(charge.raw["source"]["type"], "sofort");

    let requests = received(&server).await;
    assert_eq!(
        decode_form(&requests[0].body),
        pairs(&[
            ("amount", "999"),
            ("currency", "eur"),
            ("source", "src_1"),
            ("metadata[order_id]", "7"),
        ])
    );
}

#[tokio::test]
async fn list_events_sends_filters_as_query() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": [
                { "id": "evt_2", "type": "checkout.session.completed", "data": { "object": { "id": "cs_1" } } },
                { "id": "evt_1", "type": "charge.succeeded", "data": { "object": { "id": "ch_1" } } }
            ],
            "has_more": true
        })))
        .expect(1)
        .mount(&server)
        .await;

    let events = client
        .list_events(
            &key(),
            &ListEvents {
                created_gte: Some(1_700_000_000),
                created_lte: None,
                starting_after: Some("evt_9".to_owned()),
                limit: 100,
                types: vec![
                    "checkout.session.completed".to_owned(),
                    "charge.succeeded".to_owned(),
                ],
            },
        )
        .await
        .expect("events listed");
    assert!(events.has_more);
    assert_eq!(events.data.len(), 2);
    assert_eq!(events.data[0]["data"]["object"]["id"], "cs_1");

    let requests = received(&server).await;
    assert!(requests[0].headers.get("idempotency-key").is_none());
    let query: Vec<(String, String)> = requests[0]
        .url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    assert_eq!(
        query,
        pairs(&[
            ("created[gte]", "1700000000"),
            ("starting_after", "evt_9"),
            ("limit", "100"),
            ("types[]", "checkout.session.completed"),
            ("types[]", "charge.succeeded"),
        ])
    );
}

#[tokio::test]
async fn list_events_with_defaults_sends_no_query() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({ "object": "list", "data": [], "has_more": false })),
        )
        .mount(&server)
        .await;

    let events = client
        .list_events(&key(), &ListEvents::default())
        .await
        .expect("events listed");
    assert!(events.data.is_empty());
    assert!(!events.has_more);
    assert_eq!(received(&server).await[0].url.query(), None);
}

#[tokio::test]
async fn retrieve_account_parses_requirements() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/account"))
        .and(header("authorization", format!("Bearer {KEY}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "acct_1",
            "object": "account",
            "charges_enabled": true,
            "payouts_enabled": false,
            "details_submitted": true,
            "requirements": {
                "currently_due": ["external_account"],
                "disabled_reason": "requirements.past_due"
            }
        })))
        .expect(1)
        .mount(&server)
        .await;

    let account = client
        .retrieve_account(&key())
        .await
        .expect("account retrieved");
    assert_eq!(account.id, "acct_1");
    assert!(account.charges_enabled);
    assert!(!account.payouts_enabled);
    assert!(account.details_submitted);
    assert_eq!(account.requirements.currently_due, ["external_account"]);
    assert_eq!(
        account.requirements.disabled_reason.as_deref(),
        Some("requirements.past_due")
    );
}
