//! Fair delivery between companies (issue 16, finding 5), over real HTTP on both databases: a
//! company whose endpoints never answer holds only its share of the delivery slots, so another
//! company's messages still go out at once; a slow delivery keeps its lease, so a second worker
//! does not send it again; endpoints per company and test messages per hour are limited.

use std::sync::Arc;
use std::time::Duration;

use paygate_db::NotificationStatus;
use paygate_db::entities::notification_delivery;
use paygate_notify::{DeliveryConfig, DeliveryPool};
use paygate_testkit::receivers::{Receiver, Tarpit};
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

async fn endpoint(app: &TestApp, company: &str, url: &str) -> String {
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints"),
            json!({"url": url}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["id"].as_str().unwrap().to_owned()
}

async fn ping(app: &TestApp, company: &str, ep: &str) -> (StatusCode, Value) {
    app.admin_post(
        &format!("/admin/v1/companies/{company}/notification-endpoints/{ep}/test"),
        json!({}),
    )
    .await
}

/// Every delivery of a company, straight from the database.
async fn deliveries(app: &TestApp, company: &str) -> Vec<notification_delivery::Model> {
    let pk = app.app.tenants.company(company).await.unwrap().id;
    notification_delivery::Entity::find()
        .filter(notification_delivery::Column::CompanyPk.eq(pk))
        .all(&app.app.db)
        .await
        .unwrap()
}

async fn wait_for<F, Fut>(what: &str, secs: u64, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done().await {
        assert!(Instant::now() < deadline, "{what}: not within {secs} s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Company A's three endpoints accept connections and never answer; its 18 messages are due
/// before company B's one. B's message is delivered while every one of A's is still pending with
/// no attempt finished, and A never holds more than its share of the delivery slots (half of 8)
/// nor more than 4 per endpoint.
async fn a_tarpit_endpoint_does_not_delay_another_company(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| {
        s.outbound_allow_private = true;
        s.notify_retry_schedule = "1h".into();
        s.notify_concurrency = 8;
        // The tarpit holds a slot until released: no attempt of A ends during the test.
        s.notify_timeout_secs = 120;
        s.notify_test_pings_per_hour = 1000;
    };
    let app = TestApp::start(opts).await;
    let a = app.company_with_secret(&new_secret()).await;
    let b = app.company_with_secret(&new_secret()).await;
    let tarpit = Tarpit::start().await;
    for path in ["/a", "/b", "/c"] {
        let ep = endpoint(&app, &a, &tarpit.url(path)).await;
        for _ in 0..6 {
            assert_eq!(ping(&app, &a, &ep).await.0, StatusCode::ACCEPTED);
        }
    }
    let rx = Receiver::start(&[]).await;
    let b_ep = endpoint(&app, &b, &rx.url()).await;
    assert_eq!(ping(&app, &b, &b_ep).await.0, StatusCode::ACCEPTED);

    let cancel = CancellationToken::new();
    let workers = app.app.delivery.spawn(cancel.clone());
    wait_for("B's message delivered", 30, || async {
        deliveries(&app, &b)
            .await
            .iter()
            .all(|d| d.status == NotificationStatus::Succeeded.as_str())
    })
    .await;
    wait_for("A's endpoints tried", 30, || async {
        tarpit.paths().len() >= 3
    })
    .await;
    // B went out while A's messages are all still in flight or waiting: none has finished.
    let a_rows = deliveries(&app, &a).await;
    assert_eq!(a_rows.len(), 18);
    assert!(
        a_rows
            .iter()
            .all(|d| d.status == NotificationStatus::Pending.as_str() && d.attempts == 0),
        "{a_rows:?}"
    );
    assert_eq!(rx.requests().await.len(), 1);
    // A holds at most its share of this process's slots, and at most 4 per endpoint.
    let paths = tarpit.paths();
    assert!(tarpit.connections() <= 4, "{paths:?}");
    for p in ["/a", "/b", "/c"] {
        assert!(paths.iter().filter(|x| *x == p).count() <= 4, "{paths:?}");
    }
    tarpit.release();
    cancel.cancel();
    workers.await.unwrap();
}

/// A delivery slower than its lease (1 s; the receiver answers after 3 s) keeps the lease while
/// it runs: a second worker pool over the same database (another replica) never sends it too.
async fn a_slow_delivery_keeps_its_lease(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| {
        s.outbound_allow_private = true;
        s.notify_retry_schedule = "1h".into();
        s.notify_lease_secs = 1;
        s.notify_timeout_secs = 30;
    };
    let app = TestApp::start(opts).await;
    let company = app.company_with_secret(&new_secret()).await;
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(3)))
        .mount(&slow)
        .await;
    let ep = endpoint(&app, &company, &format!("{}/hooks", slow.uri())).await;
    let other = DeliveryPool::new(
        app.app.db.clone(),
        app.app.admin.notify.clone(),
        None,
        DeliveryConfig {
            lease: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
            allow_private: true,
            poll_interval: Duration::from_millis(50),
            ..DeliveryConfig::default()
        },
        Arc::new(paygate_web::metrics::Metrics::default()),
    )
    .unwrap();
    let cancel = CancellationToken::new();
    let first = app.app.delivery.spawn(cancel.clone());
    assert_eq!(ping(&app, &company, &ep).await.0, StatusCode::ACCEPTED);
    wait_for("the first request", 30, || async {
        !slow.received_requests().await.unwrap().is_empty()
    })
    .await;
    // Only now the other replica starts looking: the message is already in flight.
    let second = other.spawn(cancel.clone());
    wait_for("the delivery recorded", 30, || async {
        deliveries(&app, &company)
            .await
            .iter()
            .all(|d| d.status == NotificationStatus::Succeeded.as_str())
    })
    .await;
    cancel.cancel();
    first.await.unwrap();
    second.await.unwrap();
    assert_eq!(slow.received_requests().await.unwrap().len(), 1);
    let d = &deliveries(&app, &company).await[0];
    assert_eq!(d.attempts, 1, "{d:?}");
}

/// At most `notify_max_endpoints_per_company` endpoints (422 `too_many_endpoints` on the admin
/// and merchant APIs, a form error in the back office; deleting one makes room) and at most
/// `notify_test_pings_per_hour` test messages per company (429 `too_many_test_pings`; other
/// companies unaffected; the back office says so instead of failing).
async fn endpoint_and_test_ping_limits_answer_their_errors(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| {
        s.outbound_allow_private = true;
        s.notify_max_endpoints_per_company = 2;
        s.notify_test_pings_per_hour = 3;
    };
    let app = TestApp::start(opts).await;
    let company = app.company_with_secret(&new_secret()).await;
    let rx = Receiver::start(&[]).await;
    let first = endpoint(&app, &company, &rx.url()).await;
    endpoint(&app, &company, &rx.url()).await;
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints"),
            json!({"url": rx.url()}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "too_many_endpoints", "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains('2'), "{b}");
    let (_, key) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/api-keys"),
            json!({"name": "k"}),
        )
        .await;
    let key = key["key"].as_str().unwrap();
    let (s, b) = app
        .send(
            app.client
                .post(app.url("/api/v1/notification-endpoints"))
                .bearer_auth(key)
                .json(&json!({"url": rx.url()})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "too_many_endpoints", "{b}");
    let (s, _) = app
        .admin_delete(&format!(
            "/admin/v1/companies/{company}/notification-endpoints/{first}"
        ))
        .await;
    assert!(s.is_success());
    let first = endpoint(&app, &company, &rx.url()).await;

    // Three test messages an hour, then 429, through either API.
    for _ in 0..3 {
        assert_eq!(ping(&app, &company, &first).await.0, StatusCode::ACCEPTED);
    }
    let (s, b) = ping(&app, &company, &first).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    assert_eq!(b["error"]["code"], "too_many_test_pings", "{b}");
    let (s, b) = app
        .send(
            app.client
                .post(app.url(&format!("/api/v1/notification-endpoints/{first}/test")))
                .bearer_auth(key)
                .json(&json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{b}");
    let other = app.company_with_secret(&new_secret()).await;
    let other_ep = endpoint(&app, &other, &rx.url()).await;
    assert_eq!(ping(&app, &other, &other_ep).await.0, StatusCode::ACCEPTED);

    // The back office: a form error on the third endpoint, a message on the fourth ping.
    let (bo_company, admin, _) = app.company_with_users().await;
    for _ in 0..2 {
        let p = admin
            .post_form("/app/notifications", &[("url", &rx.url())])
            .await;
        // Post/Redirect/Get: the new endpoint's secret is shown on the page redirected to.
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    }
    let p = admin
        .post_form("/app/notifications", &[("url", &rx.url())])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    let err = p.field_error("url").unwrap_or_default();
    assert!(err.contains('2'), "{}", p.body);
    let (_, eps) = app
        .admin_get(&format!(
            "/admin/v1/companies/{bo_company}/notification-endpoints"
        ))
        .await;
    assert_eq!(eps["data"].as_array().unwrap().len(), 2);
    let ep = eps["data"][0]["id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        admin.get("/app/notifications").await;
        let p = admin
            .post_form(&format!("/app/notifications/{ep}/test"), &[])
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    }
    admin.get("/app/notifications").await;
    let p = admin
        .post_form(&format!("/app/notifications/{ep}/test"), &[])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let page = admin.get("/app/notifications?mode=test").await;
    assert!(
        page.text().contains("test messages as allowed this hour"),
        "{}",
        page.body
    );
    assert_eq!(deliveries(&app, &bo_company).await.len(), 3);
}

db_tests!(
    a_tarpit_endpoint_does_not_delay_another_company,
    a_slow_delivery_keeps_its_lease,
    endpoint_and_test_ping_limits_answer_their_errors,
);
