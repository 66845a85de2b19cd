//! Faults of the SMTP server (issue 16), on both databases: down for a while (shopper e-mails
//! wait on their retry schedule and go out when it is back, each exactly once), and accepting
//! connections without ever answering (an attempt ends within its budget).

use std::collections::HashSet;
use std::time::Duration;

use paygate_db::NotificationStatus;
use paygate_db::entities::notification_delivery;
use paygate_testkit::checkout_objects::FakeCheckout;
use paygate_testkit::objects::checkout_session;
use paygate_testkit::receivers::{SmtpSink, Tarpit};
use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use wiremock::MockServer;

async fn emails(app: &TestApp, company: &str) -> Vec<notification_delivery::Model> {
    let pk = app.app.tenants.company(company).await.unwrap().id;
    notification_delivery::Entity::find()
        .filter(notification_delivery::Column::CompanyPk.eq(pk))
        .filter(notification_delivery::Column::Channel.eq("email"))
        .all(&app.app.db)
        .await
        .unwrap()
}

/// A company with shopper e-mails on and a delayed payment that succeeds: one e-mail is due.
async fn one_email_due(app: &TestApp) -> String {
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let (s, b) = app
        .admin(
            reqwest::Method::PUT,
            &format!("/admin/v1/companies/{company}/notification-settings"),
            Some(json!({"shopper_emails": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let unpaid = checkout_session("cs_test_smtp_silent", "unpaid", 1000);
    let mut paid = unpaid.clone();
    paid["payment_status"] = json!("paid");
    for ev in [
        event("checkout.session.completed", unpaid),
        event("checkout.session.async_payment_succeeded", paid),
    ] {
        let (s, b) = app.deliver(&company, &secret, &ev).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        app.drain().await;
    }
    company
}

/// An SMTP server that accepts the connection and never greets holds a delivery no longer than
/// the attempt's budget (connect + total timeout, here 1 + 1 s; the SMTP client's own timeout is
/// 20 s per command): the attempt is recorded as timed out, to be retried.
async fn a_silent_smtp_server_holds_an_attempt_only_for_its_budget(backend: Backend) {
    let tarpit = Tarpit::start().await;
    let stripe = MockServer::start().await;
    FakeCheckout::new("paid", 1, 1).mount(&stripe).await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    opts.smtp_url = Some(format!("smtp://{}", tarpit.addr));
    opts.adjust = |s| {
        s.smtp_from = "orders@paygate.test".into();
        s.notify_retry_schedule = "1h".into();
        s.notify_connect_timeout_secs = 1;
        s.notify_timeout_secs = 1;
    };
    let app = TestApp::start(opts).await;
    let company = one_email_due(&app).await;
    let attempts = tokio::time::timeout(Duration::from_secs(12), app.drain_notifications()).await;
    assert_eq!(attempts.ok(), Some(1), "the attempt outlived its budget");
    assert_eq!(tarpit.connections(), 1);
    let rows = emails(&app, &company).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, NotificationStatus::Pending.as_str());
    assert_eq!(rows[0].attempts, 1);
    let error = rows[0].last_error.clone().unwrap_or_default();
    assert!(error.contains("timed out"), "{error}");
}

/// Five delayed payments succeed while nothing listens on the SMTP port: every e-mail fails its first
/// attempts (connection refused). Then an SMTP server starts on that port: every e-mail arrives,
/// once (one `Message-ID` each, one per delivery), and every delivery is `succeeded`.
async fn mails_wait_for_the_smtp_server_and_are_sent_once(backend: Backend) {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp_addr = probe.local_addr().unwrap();
    drop(probe);
    let stripe = MockServer::start().await;
    FakeCheckout::new("paid", 1, 1).mount(&stripe).await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    opts.smtp_url = Some(format!("smtp://{smtp_addr}"));
    opts.adjust = |s| {
        s.smtp_from = "orders@paygate.test".into();
        // About 15 s of retries: the server comes back well within them.
        s.notify_retry_schedule = ["300ms"; 50].join(",");
    };
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let (s, b) = app
        .admin(
            reqwest::Method::PUT,
            &format!("/admin/v1/companies/{company}/notification-settings"),
            Some(json!({"shopper_emails": true, "sender_name": "Bottega"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Delayed payments that succeed: each is an e-mail to the shopper.
    for i in 0..5 {
        let unpaid = checkout_session(&format!("cs_test_smtp_down_{i}"), "unpaid", 1000 + i);
        let mut paid = unpaid.clone();
        paid["payment_status"] = json!("paid");
        for ev in [
            event("checkout.session.completed", unpaid),
            event("checkout.session.async_payment_succeeded", paid),
        ] {
            let (s, b) = app.deliver(&company, &secret, &ev).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            app.drain().await;
        }
    }
    let cancel = CancellationToken::new();
    let workers = app.app.delivery.spawn(cancel.clone());

    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = emails(&app, &company).await;
        if rows.len() >= 5 && rows.iter().all(|d| d.attempts >= 1) {
            assert!(
                rows.iter()
                    .all(|d| d.status == NotificationStatus::Pending.as_str()),
                "{rows:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "no failed attempts: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let sink = SmtpSink::start_on(std::net::TcpListener::bind(smtp_addr).unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = emails(&app, &company).await;
        if rows
            .iter()
            .all(|d| d.status == NotificationStatus::Succeeded.as_str())
        {
            break rows;
        }
        assert!(Instant::now() < deadline, "not all sent: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    cancel.cancel();
    workers.await.unwrap();
    let mails = sink.mails();
    let ids: Vec<String> = mails
        .iter()
        .map(|m| {
            m.data
                .lines()
                .find_map(|l| l.strip_prefix("Message-ID: "))
                .unwrap_or_else(|| panic!("no Message-ID: {}", m.data))
                .trim()
                .to_owned()
        })
        .collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an e-mail came twice: {ids:?}");
    assert_eq!(mails.len(), rows.len(), "{ids:?}");
    for d in &rows {
        assert!(
            ids.iter()
                .any(|id| id.starts_with(&format!("<{}@", d.message_id))),
            "{} never arrived: {ids:?}",
            d.message_id
        );
    }
    assert!(mails.iter().all(|m| m.to == ["shopper@example.com"]));
}

db_tests!(
    mails_wait_for_the_smtp_server_and_are_sent_once,
    a_silent_smtp_server_holds_an_attempt_only_for_its_budget,
);
