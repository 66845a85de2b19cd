//! Retrieving Checkout Sessions and paging through their line items.

use paygate_stripe::CheckoutSession;
use serde_json::{Value, json};
use wiremock::matchers::{bearer_token, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, ResponseTemplate};

use crate::{KEY, key, query, received, setup};

fn line_item(id: &str, product: Value) -> Value {
    json!({
        "id": id,
        "object": "item",
        "description": format!("Item {id}"),
        "quantity": 2,
        "amount_subtotal": 1000,
        "amount_total": 1200,
        "currency": "eur",
        "price": { "id": format!("price_{id}"), "object": "price", "product": product }
    })
}

#[tokio::test]
async fn line_items_spanning_three_pages_are_fetched_completely() {
    let (server, client) = setup().await;

    let session = json!({
        "id": "cs_test_1",
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "mode": "payment",
        "amount_total": 6000,
        "amount_subtotal": 5000,
        "currency": "eur",
        "customer": { "id": "cus_1", "object": "customer" },
        "customer_email": "typed@example.com",
        "customer_details": { "email": "entered@example.com", "name": "Ada" },
        "client_reference_id": "order-42",
        "payment_intent": { "id": "pi_1", "object": "payment_intent", "status": "succeeded" },
        "metadata": { "order_id": "42" },
        "url": null,
        "livemode": false,
        "created": 1_700_000_000,
        "expires_at": 1_700_086_400,
        "line_items": {
            "object": "list",
            "data": [line_item("li_1", json!("prod_1")), line_item("li_2", json!({"id": "prod_2", "object": "product"}))],
            "has_more": true,
            "url": "/v1/checkout/sessions/cs_test_1/line_items"
        }
    });
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_1"))
        .and(query_param("expand[]", "line_items"))
        .and(bearer_token(KEY))
        .respond_with(ResponseTemplate::new(200).set_body_json(session))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_1/line_items"))
        .and(query_param("starting_after", "li_2"))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": [line_item("li_3", json!("prod_3")), line_item("li_4", json!("prod_4"))],
            "has_more": true
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_1/line_items"))
        .and(query_param("starting_after", "li_4"))
        .and(query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": [line_item("li_5", json!("prod_5"))],
            "has_more": false
        })))
        .expect(1)
        .mount(&server)
        .await;

    let session = client
        .retrieve_checkout_session(&key(), "cs_test_1")
        .await
        .expect("session retrieved");

    let ids: Vec<&str> = session.line_items.iter().map(|li| li.id.as_str()).collect();
    assert_eq!(ids, ["li_1", "li_2", "li_3", "li_4", "li_5"]);

    // The pages were requested in order, each starting after the previous last item.
    let requests = received(&server).await;
    let cursors: Vec<(String, Option<String>)> = requests
        .iter()
        .map(|r| (r.url.path().to_owned(), query(r, "starting_after")))
        .collect();
    assert_eq!(
        cursors,
        [
            ("/v1/checkout/sessions/cs_test_1".to_owned(), None),
            (
                "/v1/checkout/sessions/cs_test_1/line_items".to_owned(),
                Some("li_2".to_owned())
            ),
            (
                "/v1/checkout/sessions/cs_test_1/line_items".to_owned(),
                Some("li_4".to_owned())
            ),
        ]
    );

    // Typed fields.
    assert_eq!(session.id, "cs_test_1");
    assert_eq!(session.object, "checkout.session");
    assert_eq!(session.status.as_deref(), Some("complete"));
    assert_eq!(session.payment_status, "paid");
    assert_eq!(session.mode, "payment");
    assert_eq!(session.amount_total, Some(6000));
    assert_eq!(session.amount_subtotal, Some(5000));
    assert_eq!(session.currency.as_deref(), Some("eur"));
    assert_eq!(session.customer.as_deref(), Some("cus_1"));
    assert_eq!(session.email(), Some("entered@example.com"));
    assert_eq!(session.client_reference_id.as_deref(), Some("order-42"));
    assert_eq!(session.payment_intent.as_deref(), Some("pi_1"));
    assert_eq!(
        session.metadata.get("order_id").map(String::as_str),
        Some("42")
    );
    assert_eq!(session.url, None);
    assert!(!session.livemode);
    assert_eq!(session.created, 1_700_000_000);
    assert_eq!(session.expires_at, 1_700_086_400);
    assert_eq!(session.raw["payment_intent"]["status"], "succeeded");

    let first = &session.line_items[0];
    assert_eq!(first.description.as_deref(), Some("Item li_1"));
    assert_eq!(first.quantity, Some(2));
    assert_eq!(first.amount_subtotal, 1000);
    assert_eq!(first.amount_total, 1200);
    assert_eq!(first.currency, "eur");
    assert_eq!(first.price_id.as_deref(), Some("price_li_1"));
    assert_eq!(first.product_id.as_deref(), Some("prod_1"));
    // An expanded product object is reduced to its ID.
    assert_eq!(session.line_items[1].product_id.as_deref(), Some("prod_2"));
    assert_eq!(session.line_items[4].product_id.as_deref(), Some("prod_5"));
}

#[tokio::test]
async fn single_page_session_makes_one_request() {
    let (server, client) = setup().await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_2"))
        .and(query_param("expand[]", "line_items"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_2",
            "object": "checkout.session",
            "payment_status": "unpaid",
            "mode": "payment",
            "line_items": { "object": "list", "data": [line_item("li_1", json!("prod_1"))], "has_more": false }
        })))
        .expect(1)
        .mount(&server)
        .await;

    let session = client
        .retrieve_checkout_session(&key(), "cs_test_2")
        .await
        .expect("session retrieved");
    assert_eq!(session.line_items.len(), 1);
    assert_eq!(received(&server).await.len(), 1);
}

#[test]
fn string_payment_intent_nulls_and_email_fallback_deserialize() {
    let session: CheckoutSession = serde_json::from_value(json!({
        "id": "cs_test_3",
        "object": "checkout.session",
        "status": null,
        "payment_status": "paid",
        "mode": "payment",
        "customer": null,
        "customer_email": "typed@example.com",
        "customer_details": null,
        "payment_intent": "pi_123",
        "metadata": null,
        "livemode": true,
        "created": 1,
        "expires_at": 2,
        "some_future_field": { "nested": true }
    }))
    .expect("session deserializes");

    assert_eq!(session.payment_intent.as_deref(), Some("pi_123"));
    assert_eq!(session.email(), Some("typed@example.com"));
    assert_eq!(session.customer, None);
    assert!(session.metadata.is_empty());
    assert!(session.line_items.is_empty());
    assert!(session.livemode);
    assert_eq!(session.raw["some_future_field"]["nested"], true);
}
