//! Sealed secrets carry their owner: a value copied from one company's row into another's does
//! not open there, and whatever needed it treats it as unusable — never as the other company's
//! secret. (A database writer's attack: the rows are edited straight in the database.)

use paygate_db::entities::{notification_endpoint_secret, signing_secret, stripe_profile};
use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret};
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use secrecy::ExposeSecret;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A company's internal id.
async fn pk(app: &TestApp, company: &str) -> i64 {
    app.app.tenants.company(company).await.unwrap().id
}

async fn a_signing_secret_moved_to_another_company_verifies_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (secret_a, secret_b) = (new_secret(), new_secret());
    let a = app.company_with_secret(&secret_a).await;
    let b = app.company_with_secret(&secret_b).await;
    let ev = || {
        event(
            "payment_intent.succeeded",
            json!({"id": "pi_moved", "object": "payment_intent", "status": "succeeded"}),
        )
    };
    assert_eq!(app.deliver(&b, &secret_b, &ev()).await.0, StatusCode::OK);
    let db = &app.app.db;
    let row_of = |company_pk: i64| {
        signing_secret::Entity::find()
            .filter(signing_secret::Column::CompanyPk.eq(company_pk))
            .one(db)
    };
    let from_a = row_of(pk(&app, &a).await).await.unwrap().unwrap();
    let into_b = row_of(pk(&app, &b).await).await.unwrap().unwrap();
    // The attack: company A's sealed whsec_ written over company B's.
    signing_secret::Entity::update_many()
        .col_expr(
            signing_secret::Column::SecretEnc,
            Expr::value(from_a.secret_enc.clone()),
        )
        .filter(signing_secret::Column::Id.eq(into_b.id.clone()))
        .exec(db)
        .await
        .unwrap();
    app.app.tenants.invalidate(&b);
    let (s, body) = app.deliver(&b, &secret_a, &ev()).await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("signature_invalid")),
        "A's secret must not verify B's deliveries: {body}"
    );
    assert_eq!(
        app.deliver(&b, &secret_b, &ev()).await.0,
        StatusCode::BAD_REQUEST,
        "B's own secret is gone"
    );
    assert_eq!(
        app.inbox_count(&b).await,
        1,
        "only the delivery before the move"
    );
    assert_eq!(
        app.deliver(&a, &secret_a, &ev()).await.0,
        StatusCode::OK,
        "A is untouched"
    );
}

async fn a_secret_key_moved_to_another_company_never_reaches_stripe(backend: Backend) {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let a = app.company_with_secret(&new_secret()).await;
    let b = app.company_with_secret(&new_secret()).await;
    let (pk_a, pk_b) = (pk(&app, &a).await, pk(&app, &b).await);
    let (s, _) = app
        .admin_patch(
            &format!("/admin/v1/companies/{b}"),
            json!({"stripe_enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, key) = app
        .admin_post(
            &format!("/admin/v1/companies/{b}/api-keys"),
            json!({"name": "shop backend"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{key}");
    let key = key["key"].as_str().unwrap().to_owned();
    let key_a = app
        .app
        .tenants
        .active_profile_for(pk_a, "test")
        .await
        .unwrap()
        .unwrap()
        .secret_key
        .expose_secret()
        .to_owned();
    let db = &app.app.db;
    let profile_of = |company_pk: i64| {
        stripe_profile::Entity::find()
            .filter(stripe_profile::Column::CompanyPk.eq(company_pk))
            .one(db)
    };
    let from_a = profile_of(pk_a).await.unwrap().unwrap();
    let into_b = profile_of(pk_b).await.unwrap().unwrap();
    // The attack: company A's sealed sk_ written over company B's.
    stripe_profile::Entity::update_many()
        .col_expr(
            stripe_profile::Column::SecretKeyEnc,
            Expr::value(from_a.secret_key_enc.clone()),
        )
        .filter(stripe_profile::Column::Id.eq(into_b.id.clone()))
        .exec(db)
        .await
        .unwrap();
    assert!(
        app.app
            .tenants
            .active_profile_for(pk_b, "test")
            .await
            .is_err(),
        "B's profile holds a value that is not B's: an error, not A's key"
    );
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_moved", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_moved",
            "payment_status": "unpaid", "status": "open", "amount_total": 100, "currency": "eur", "livemode": false
        })))
        .mount(&stripe)
        .await;
    let (s, body) = app
        .send(
            app.client
                .post(app.url("/api/v1/checkout-sessions"))
                .bearer_auth(&key)
                .json(&json!({
                    "line_items": [{"price_data": {"currency": "eur", "unit_amount": 100, "product_data": {"name": "Tea"}}, "quantity": 1}],
                    "return_url": "https://shop.example/thanks"
                })),
        )
        .await;
    assert_eq!(
        (s, body["error"]["code"].as_str()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some("internal_error")),
        "{body}"
    );
    let sent = stripe.received_requests().await.unwrap();
    assert!(
        sent.is_empty(),
        "nothing reached Stripe, least of all with A's key: {:?}",
        sent.iter()
            .map(|r| r
                .headers
                .get("authorization")
                .is_some_and(|v| v.to_str().is_ok_and(|v| v.ends_with(&key_a))))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        app.app
            .tenants
            .active_profile_for(pk_a, "test")
            .await
            .unwrap()
            .unwrap()
            .secret_key
            .expose_secret(),
        key_a,
        "A's key still opens where it belongs"
    );
}

async fn a_notification_secret_moved_to_another_endpoint_does_not_sign(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| s.outbound_allow_private = true;
    let app = TestApp::start(opts).await;
    let a = app.company_with_secret(&new_secret()).await;
    let b = app.company_with_secret(&new_secret()).await;
    let mut endpoints = Vec::new();
    for c in [&a, &b] {
        let (s, e) = app
            .admin_post(
                &format!("/admin/v1/companies/{c}/notification-endpoints"),
                json!({"url": "http://127.0.0.1:9/hook"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{e}");
        endpoints.push((
            e["id"].as_str().unwrap().to_owned(),
            e["secret"].as_str().unwrap().to_owned(),
        ));
    }
    let ((ep_a, secret_a), (ep_b, _)) = (&endpoints[0], &endpoints[1]);
    let notify = &app.app.admin.notify;
    let (pk_a, pk_b) = (pk(&app, &a).await, pk(&app, &b).await);
    assert_eq!(
        notify.live_secrets(pk_a, ep_a).await.unwrap(),
        vec![secret_a.clone()]
    );
    let db = &app.app.db;
    let row_of = |ep: &str| {
        notification_endpoint_secret::Entity::find()
            .filter(notification_endpoint_secret::Column::EndpointId.eq(ep.to_owned()))
            .order_by_desc(notification_endpoint_secret::Column::Id)
            .one(db)
    };
    let from_a = row_of(ep_a).await.unwrap().unwrap();
    let into_b = row_of(ep_b).await.unwrap().unwrap();
    notification_endpoint_secret::Entity::update_many()
        .col_expr(
            notification_endpoint_secret::Column::SecretSealed,
            Expr::value(from_a.secret_sealed.clone()),
        )
        .filter(notification_endpoint_secret::Column::Id.eq(into_b.id))
        .exec(db)
        .await
        .unwrap();
    assert!(
        notify.live_secrets(pk_b, ep_b).await.is_err(),
        "B's endpoint must not sign with A's secret"
    );
    // Nor does the secret open when the row is re-pointed at B's endpoint instead.
    notification_endpoint_secret::Entity::update_many()
        .col_expr(
            notification_endpoint_secret::Column::EndpointId,
            Expr::value(ep_b.clone()),
        )
        .filter(notification_endpoint_secret::Column::Id.eq(from_a.id))
        .exec(db)
        .await
        .unwrap();
    assert!(notify.live_secrets(pk_b, ep_b).await.is_err());
}

db_tests!(
    a_signing_secret_moved_to_another_company_verifies_nothing,
    a_secret_key_moved_to_another_company_never_reaches_stripe,
    a_notification_secret_moved_to_another_endpoint_does_not_sign,
);
