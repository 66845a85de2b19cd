//! The environment always in view and the Overview (issue 20), over real HTTP on both databases:
//! every `/app` page carries the environment banner (`#env-banner`, `data-mode`) — the "Test
//! data" banner in test, the "Live" badge in live; the Overview's setup checklist follows the
//! company's state (profile, signing secret, first event received **from Stripe** per mode —
//! Paygate's own test event does not count —, Stripe on, live ready) and shows when the last
//! event came from Stripe; its health counts (failed events, rejected deliveries, disputes due
//! soon, failing notification endpoints) link to their pages.

use paygate_backoffice::i18n::Lang;
use paygate_backoffice::nav::MERCHANT;
use paygate_db::entities::{inbox_event, notification_endpoint};
use paygate_testkit::backoffice::{Browser, Page};
use paygate_testkit::objects::{account, dispute, payment_intent};
use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret, now_secs, unique};
use reqwest::StatusCode;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

async fn ok(b: &Browser, path: &str) -> Page {
    let p = b.get(path).await;
    assert_eq!(p.status, StatusCode::OK, "GET {path}: {}", p.body);
    p
}

/// The `data-mode` of the page's one environment banner.
fn banner_mode(p: &Page) -> String {
    const HOOK: &str = "id=\"env-banner\" data-mode=\"";
    assert_eq!(p.body.matches("id=\"env-banner\"").count(), 1, "{}", p.body);
    let rest = &p.body[p.body.find(HOOK).expect("the environment banner") + HOOK.len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// Whether checklist item `name` is done (`None`: not on the page).
fn check(p: &Page, name: &str) -> Option<bool> {
    if p.contains(&format!("id=\"check-{name}\" data-done=\"true\"")) {
        Some(true)
    } else if p.contains(&format!("id=\"check-{name}\" data-done=\"false\"")) {
        Some(false)
    } else {
        None
    }
}

/// The text of the element with id `id` (up to its closing tag), markup removed.
fn text_of(p: &Page, id: &str) -> String {
    let start = p
        .body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {}", p.body));
    let rest = &p.body[start..];
    let rest = &rest[rest.find('>').unwrap() + 1..];
    let end = rest.find("</dd>").or_else(|| rest.find("</li>")).unwrap();
    let mut out = String::new();
    let mut in_tag = false;
    for c in rest[..end].chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn live(mut ev: Value) -> Value {
    ev["livemode"] = json!(true);
    ev["data"]["object"]["livemode"] = json!(true);
    ev
}

/// The GET pages of the menu (every `/app` page the merchant reaches from it).
fn menu_pages() -> Vec<&'static str> {
    MERCHANT.iter().map(|i| i.href).collect()
}

async fn the_environment_is_in_view_on_every_app_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, viewer) = app.company_with_users().await;
    let secret = new_secret();
    app.create_profile(&company, "test", &secret).await;
    let ev = event(
        "payment_intent.succeeded",
        payment_intent("pi_banner", "succeeded", 1000),
    );
    let (s, b) = app.deliver(&company, &secret, &ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let event_page = format!("/app/events/{}?mode=test", ev["id"].as_str().unwrap());

    // Test environment: the banner on every page, data pages or not, for admins and viewers.
    for b in [&admin, &viewer] {
        for path in menu_pages().into_iter().chain([event_page.as_str()]) {
            let p = ok(b, path).await;
            assert_eq!(banner_mode(&p), "test", "{path}");
            let data = MERCHANT.iter().any(|i| i.href == path && i.data) || path == event_page;
            let words = if data {
                Lang::En.t("mode.test_banner")
            } else {
                Lang::En.t("mode.env_test")
            };
            assert!(p.text().contains(words), "{path}: {}", p.body);
            assert!(!p.contains("badge env-live"), "{path}");
        }
    }
    // A data page asked for live data: the Live badge, not the banner.
    let p = ok(&admin, "/app/orders?mode=live").await;
    assert_eq!(banner_mode(&p), "live");
    assert!(p.contains("badge env-live"));
    assert!(!p.contains("id=\"test-data-banner\""));
    // In Italian too.
    admin
        .post_form("/language", &[("lang", "it"), ("next", "/app")])
        .await;
    let p = ok(&admin, "/app/api-keys").await;
    assert_eq!(banner_mode(&p), "test");
    assert!(p.text().contains(Lang::It.t("mode.env_test")), "{}", p.body);
    let p = ok(&admin, "/app/events").await;
    assert!(p.text().contains(Lang::It.t("mode.test_banner")));

    // Live environment: the badge everywhere, no test banner.
    app.create_profile(&company, "live", &new_secret()).await;
    paygate_testkit::stripe_account::live_account_ready(&app, &company, "acct_1TestAccount000")
        .await;
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"environment": "live"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    for path in menu_pages() {
        let p = ok(&viewer, path).await;
        assert_eq!(banner_mode(&p), "live", "{path}");
        assert!(p.contains("badge env-live"), "{path}");
        assert!(p.text().contains(Lang::En.t("environment.live")), "{path}");
        assert!(!p.contains("id=\"test-data-banner\""), "{path}");
        assert!(!p.text().contains(Lang::En.t("mode.env_test")), "{path}");
    }
    // ... but test data asked for is under the banner.
    let p = ok(&viewer, &event_page).await;
    assert_eq!(banner_mode(&p), "test");
    assert!(p.contains("id=\"test-data-banner\""));
}

async fn the_checklist_follows_the_setup_and_counts_only_events_from_stripe(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, _viewer) = app.company_with_users().await;

    // Nothing set up: every item to do, and the Overview says how data appears.
    let p = ok(&admin, "/app").await;
    for name in [
        "profile",
        "secret",
        "first_event_test",
        "first_event_live",
        "stripe_on",
        "live_ready",
    ] {
        assert_eq!(check(&p, name), Some(false), "{name}: {}", p.body);
    }
    assert!(p.contains("id=\"no-data-yet\""));
    assert!(p.text().contains(Lang::En.t("dashboard.empty_hint")));
    assert_eq!(
        text_of(&p, "last-event-test"),
        Lang::En.t("dashboard.last_event_none")
    );
    assert!(p.links().contains(&"/app/stripe#add-profile".to_owned()));
    assert!(p.links().contains(&"/app/connect?mode=test".to_owned()));

    // A test profile with its signing secret.
    let secret = new_secret();
    app.create_profile(&company, "test", &secret).await;
    let p = ok(&admin, "/app").await;
    assert_eq!(check(&p, "profile"), Some(true));
    assert_eq!(check(&p, "secret"), Some(true));
    assert_eq!(check(&p, "first_event_test"), Some(false));

    // Paygate's own test event is stored, but it is no event from Stripe.
    ok(&admin, "/app/connect").await;
    let sent = admin.post_form("/app/connect/test-event", &[]).await;
    assert!(
        sent.status == StatusCode::OK || sent.status == StatusCode::SEE_OTHER,
        "{}",
        sent.body
    );
    assert_eq!(app.inbox_count(&company).await, 1);
    // The self-test says what it proves and points to the real proof.
    let connect = ok(&admin, "/app/connect").await;
    assert!(connect.links().contains(&"/app#last-events".to_owned()));
    assert!(connect.text().contains(Lang::En.t("connect.real_proof")));
    assert!(!connect.text().contains("signing secret work"));
    let p = ok(&admin, "/app").await;
    assert_eq!(check(&p, "first_event_test"), Some(false), "{}", p.body);
    assert_eq!(
        text_of(&p, "last-event-test"),
        Lang::En.t("dashboard.last_event_none")
    );

    // An event Stripe delivers: the item is done and the time it came is shown, linked to the
    // test-mode events.
    let ev = event(
        "payment_intent.succeeded",
        payment_intent("pi_first", "succeeded", 1000),
    );
    let (s, b) = app.deliver(&company, &secret, &ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let row = inbox_event::Entity::find()
        .filter(inbox_event::Column::StripeEventId.eq(ev["id"].as_str().unwrap()))
        .one(&app.app.db)
        .await
        .unwrap()
        .unwrap();
    let p = ok(&admin, "/app").await;
    assert_eq!(check(&p, "first_event_test"), Some(true), "{}", p.body);
    assert_eq!(check(&p, "first_event_live"), Some(false));
    let when = Lang::En.datetime(row.received_at);
    assert!(
        text_of(&p, "last-event-test").contains(&when),
        "{} / {when}",
        text_of(&p, "last-event-test")
    );
    assert!(text_of(&p, "check-first_event_test").contains(&when));
    assert_eq!(
        text_of(&p, "last-event-live"),
        Lang::En.t("dashboard.last_event_none")
    );
    assert!(p.links().contains(&"/app/events?mode=test".to_owned()));
    assert!(!p.contains("id=\"no-data-yet\""));
    // In Italian, the same time in Italian.
    admin
        .post_form("/language", &[("lang", "it"), ("next", "/app")])
        .await;
    let p = ok(&admin, "/app").await;
    assert!(p.text().contains(Lang::It.t("dashboard.last_event_title")));
    assert!(text_of(&p, "last-event-test").contains(&Lang::It.datetime(row.received_at)));
    admin
        .post_form("/language", &[("lang", "en"), ("next", "/app")])
        .await;

    // Stripe on (through the operator's API).
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"stripe_enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let p = ok(&admin, "/app").await;
    assert_eq!(check(&p, "stripe_on"), Some(true));
    assert_eq!(check(&p, "live_ready"), Some(false));
    assert!(
        text_of(&p, "check-live_ready").contains(Lang::En.t("dashboard.missing_live_profile")),
        "{}",
        text_of(&p, "check-live_ready")
    );

    // A live profile, and Stripe's live `account.updated` saying charges and payouts are on:
    // live ready, and the first live event came from Stripe.
    let live_secret = new_secret();
    app.create_profile(&company, "live", &live_secret).await;
    let p = ok(&admin, "/app").await;
    assert_eq!(check(&p, "live_ready"), Some(false));
    assert!(
        text_of(&p, "check-live_ready").contains(Lang::En.t("dashboard.missing_charges_enabled"))
    );
    let acct = live(event(
        "account.updated",
        account("acct_1TestAccount000", true, &[]),
    ));
    let (s, b) = app.deliver(&company, &live_secret, &acct).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.drain().await;
    let p = ok(&admin, "/app").await;
    assert_eq!(check(&p, "first_event_live"), Some(true), "{}", p.body);
    assert_eq!(check(&p, "live_ready"), Some(true), "{}", p.body);
    assert_ne!(
        text_of(&p, "last-event-live"),
        Lang::En.t("dashboard.last_event_none")
    );
    assert!(
        p.text()
            .contains(Lang::En.t("dashboard.checklist_all_done"))
    );
}

async fn health_counts_link_to_their_pages(backend: Backend) {
    let mut opts = Options::new(backend);
    opts.adjust = |s| s.outbound_allow_private = true;
    let app = TestApp::start(opts).await;
    let (company, admin, _viewer) = app.company_with_users().await;
    let secret = new_secret();
    app.create_profile(&company, "test", &secret).await;
    let health = |p: &Page, name: &str| text_of(p, &format!("health-{name}"));

    let p = ok(&admin, "/app").await;
    for name in [
        "failed_events",
        "rejected_deliveries",
        "disputes_due_soon",
        "failing_endpoints",
    ] {
        assert_eq!(health(&p, name), "0", "{name}");
    }

    // Two disputes needing a response: one due in two days, one in thirty.
    let now = now_secs();
    for (id, due) in [
        ("dp_soon", now + 2 * 86_400),
        ("dp_later", now + 30 * 86_400),
    ] {
        let mut dp = dispute(id, "needs_response", "ch_1", "pi_1", 1000, false, false);
        dp["evidence_details"]["due_by"] = json!(due);
        let (s, b) = app
            .deliver(&company, &secret, &event("charge.dispute.created", dp))
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    app.drain().await;
    // A delivery the intake rejects (a wrong signature).
    let (s, _) = app
        .post_callback(&company, "{}", Some("t=1,v1=deadbeef"))
        .await;
    assert!(s.is_client_error(), "{s}");
    // An event whose handling failed for good, and a notification endpoint that keeps failing
    // (their states set directly: how they come about is tested where they are made).
    let failed = event(
        "payment_intent.succeeded",
        payment_intent("pi_failed", "succeeded", 1000),
    );
    let (s, b) = app.deliver(&company, &secret, &failed).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.drain().await;
    inbox_event::Entity::update_many()
        .col_expr(inbox_event::Column::Status, Expr::value("failed"))
        .filter(inbox_event::Column::StripeEventId.eq(failed["id"].as_str().unwrap()))
        .exec(&app.app.db)
        .await
        .unwrap();
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/notification-endpoints"),
            json!({"url": "http://127.0.0.1:9/paygate"}),
        )
        .await;
    assert!(s.is_success(), "{b}");
    let pk = app.app.tenants.company(&company).await.unwrap().id;
    notification_endpoint::Entity::update_many()
        .col_expr(
            notification_endpoint::Column::FailingSince,
            Expr::value(paygate_db::now_ms()),
        )
        .filter(notification_endpoint::Column::CompanyPk.eq(pk))
        .exec(&app.app.db)
        .await
        .unwrap();
    // Another company's troubles are not ours.
    let other = unique("co");
    app.create_company(&other).await;
    app.post_callback(&other, "{}", Some("t=1,v1=deadbeef"))
        .await;

    let p = ok(&admin, "/app").await;
    assert_eq!(health(&p, "failed_events"), "1");
    assert_eq!(health(&p, "rejected_deliveries"), "1");
    assert_eq!(health(&p, "disputes_due_soon"), "1");
    assert_eq!(health(&p, "failing_endpoints"), "1");
    // Each count links to its page, which shows them.
    let links = p.links();
    let failed_href = "/app/events?status=failed&mode=test".to_owned();
    assert!(links.contains(&failed_href), "{links:?}");
    let list = ok(&admin, &failed_href).await;
    assert!(list.contains(failed["id"].as_str().unwrap()));
    assert!(
        links.contains(&"/app/connect?mode=test#rejections".to_owned()),
        "{links:?}"
    );
    let connect = ok(&admin, "/app/connect?mode=test").await;
    assert!(connect.contains("id=\"rejections\""));
    assert!(links.contains(&"/app/disputes?mode=test".to_owned()));
    assert!(
        ok(&admin, "/app/disputes?mode=test")
            .await
            .contains("dp_soon")
    );
    assert!(links.contains(&"/app/notifications?mode=test".to_owned()));
    assert!(
        ok(&admin, "/app/notifications?mode=test")
            .await
            .contains("127.0.0.1:9/paygate")
    );
    // Live data has none of the test troubles.
    let p = ok(&admin, "/app?mode=live").await;
    assert_eq!(health(&p, "failed_events"), "0");
    assert_eq!(health(&p, "disputes_due_soon"), "0");
}

db_tests!(
    the_environment_is_in_view_on_every_app_page,
    the_checklist_follows_the_setup_and_counts_only_events_from_stripe,
    health_counts_link_to_their_pages,
);
