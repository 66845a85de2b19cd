//! The merchant's data pages over real HTTP: Events (filters, paging, the payload as text,
//! Replay), Orders (list and detail with line items, payments, fulfillment and disputes, amounts
//! in the merchant's language) and Disputes (the ones needing a response first), each showing one
//! mode, test or live, with links that keep it. Every object is made through the real intake and
//! the real workers; the tests read what a merchant sees.

use paygate_backoffice::i18n::Lang;
use paygate_db::entities::{audit_log, inbox_event, order};
use paygate_testkit::backoffice::{Browser, Page};
use paygate_testkit::checkout_objects::FakeCheckout;
use paygate_testkit::objects::{charge, checkout_session, dispute, event_at, payment_intent};
use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret, unique};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use wiremock::MockServer;

/// A running app whose Stripe is a fake Checkout (one line item of 19.99 EUR per session), a
/// company with a test profile, and signed-in browsers of its admin and viewer.
struct Fixture {
    app: TestApp,
    _stripe: MockServer,
    company: String,
    secret: String,
    admin: Browser,
    admin_email: String,
    viewer: Browser,
}

async fn start(backend: Backend, fake: FakeCheckout) -> Fixture {
    let stripe = MockServer::start().await;
    fake.mount(&stripe).await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = unique("co");
    app.create_company(&company).await;
    let secret = new_secret();
    app.create_profile(&company, "test", &secret).await;
    let (admin_email, pw) = app.company_user(&company, "admin").await;
    let admin = Browser::new(&app);
    admin.sign_in(&admin_email, &pw).await;
    let (viewer_email, vpw) = app.company_user(&company, "viewer").await;
    let viewer = Browser::new(&app);
    viewer.sign_in(&viewer_email, &vpw).await;
    Fixture {
        app,
        _stripe: stripe,
        company,
        secret,
        admin,
        admin_email,
        viewer,
    }
}

/// The Checkout Session of an order still awaiting its payment (a delayed payment method).
fn waiting_session() -> Value {
    let mut s = checkout_session("cs_test_waiting", "unpaid", 4500);
    s["customer_details"]["email"] = json!("later@example.com");
    s
}

/// Sessions paid with one line item of 19.99 EUR, but `cs_test_waiting`, unpaid.
fn checkout_1999() -> FakeCheckout {
    let mut fake = FakeCheckout::new("paid", 1, 10);
    fake.unit_amount = 1999;
    fake.with_session(waiting_session())
}

impl Fixture {
    async fn deliver(&self, ev: &Value) {
        let (s, b) = self.app.deliver(&self.company, &self.secret, ev).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// A signed-in admin of another company.
    async fn stranger(&self) -> Browser {
        let other = unique("co");
        self.app.create_company(&other).await;
        let (email, pw) = self.app.company_user(&other, "admin").await;
        let b = Browser::new(&self.app);
        b.sign_in(&email, &pw).await;
        b
    }

    /// The stored event `id` of the company.
    async fn event_row(&self, id: &str) -> inbox_event::Model {
        inbox_event::Entity::find()
            .filter(inbox_event::Column::StripeEventId.eq(id))
            .one(&self.app.app.db)
            .await
            .unwrap()
            .unwrap()
    }

    /// The company's (first) stored event of type `event_type`.
    async fn event_row_of_type(&self, event_type: &str) -> inbox_event::Model {
        inbox_event::Entity::find()
            .filter(inbox_event::Column::EventType.eq(event_type))
            .one(&self.app.app.db)
            .await
            .unwrap()
            .unwrap()
    }

    /// The id of the order of Checkout Session `session`.
    async fn order_of(&self, session: &str) -> String {
        order::Entity::find()
            .filter(order::Column::CheckoutSessionId.eq(session))
            .one(&self.app.app.db)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no order for {session}"))
            .id
    }
}

async fn ok(b: &Browser, path: &str) -> Page {
    let p = b.get(path).await;
    assert_eq!(p.status, StatusCode::OK, "GET {path}: {}", p.body);
    p
}

fn id_of(ev: &Value) -> String {
    ev["id"].as_str().unwrap().to_owned()
}

/// Epoch seconds of a UTC day at noon.
fn noon(day: &str) -> i64 {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp()
}

/// The rows of a list page (`<tr class="{class}…">`), each as its HTML.
fn rows<'a>(p: &'a Page, class: &str) -> Vec<&'a str> {
    p.body
        .split(&format!("<tr class=\"{class}"))
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap_or(""))
        .collect()
}

/// Which of `ids` a page shows, in `ids`' order.
fn shown<'a>(p: &Page, ids: &[&'a str]) -> Vec<&'a str> {
    ids.iter().copied().filter(|id| p.contains(id)).collect()
}

async fn events_list_filters_by_type_status_and_day(backend: Backend) {
    let f = start(backend, checkout_1999()).await;
    let paid = event_at(
        "charge.succeeded",
        charge("ch_ok", "succeeded", 1999, None, None),
        noon("2024-01-10"),
    );
    let ignored = event_at(
        "product.created",
        json!({"id": "prod_1", "object": "product"}),
        noon("2024-03-05"),
    );
    // A charge without a status: the handler refuses the payload, the event fails for good.
    let broken = event_at(
        "charge.succeeded",
        json!({"id": "ch_broken", "object": "charge"}),
        noon("2024-03-06"),
    );
    for ev in [&paid, &ignored, &broken] {
        f.deliver(ev).await;
    }
    f.app.drain().await;
    let (paid, ignored, broken) = (id_of(&paid), id_of(&ignored), id_of(&broken));
    let all = [paid.as_str(), ignored.as_str(), broken.as_str()];

    // Everything, newest first, each with its status in words.
    let p = ok(&f.viewer, "/app/events").await;
    let r = rows(&p, "event-row");
    assert_eq!(r.len(), 3, "{}", p.body);
    assert!(
        r[0].contains(&broken) && r[0].contains(">Failed<"),
        "{}",
        r[0]
    );
    assert!(
        r[1].contains(&ignored) && r[1].contains(">Ignored<"),
        "{}",
        r[1]
    );
    assert!(
        r[2].contains(&paid) && r[2].contains(">Processed<"),
        "{}",
        r[2]
    );
    assert!(r[1].contains("2024-03-05 12:00 UTC"), "{}", r[1]);

    let cases: &[(&str, &[&str])] = &[
        ("/app/events?type=charge.succeeded", &[&paid, &broken]),
        ("/app/events?status=ignored", &[&ignored]),
        ("/app/events?status=failed", &[&broken]),
        (
            "/app/events?status=processed&type=charge.succeeded",
            &[&paid],
        ),
        ("/app/events?from=2024-03-01", &[&ignored, &broken]),
        ("/app/events?to=2024-03-05", &[&paid, &ignored]),
        ("/app/events?from=2024-03-05&to=2024-03-05", &[&ignored]),
        ("/app/events?type=payment_intent.succeeded", &[]),
    ];
    for (url, expected) in cases {
        let p = ok(&f.viewer, url).await;
        let mut want: Vec<&str> = expected.to_vec();
        want.sort_by_key(|id| all.iter().position(|a| a == id));
        assert_eq!(shown(&p, &all), want, "{url}");
        assert_eq!(rows(&p, "event-row").len(), expected.len(), "{url}");
    }
    // The filter form shows what was chosen; the empty result says so.
    let p = ok(&f.admin, "/app/events?status=failed&from=2024-03-01").await;
    assert!(p.contains("<option value=\"failed\" selected>Failed</option>"));
    assert!(p.contains("value=\"2024-03-01\""));
    let p = ok(&f.admin, "/app/events?type=nothing.like.this").await;
    assert!(p.text().contains(Lang::En.t("events.none_matching")));

    // Filters that make no sense are refused next to their field.
    let p = f.admin.get("/app/events?status=lost").await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("status").as_deref(),
        Some(Lang::En.t("events.status_invalid"))
    );
    let p = f
        .admin
        .get("/app/events?from=2024-03-07&to=2024-03-01")
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("to").as_deref(),
        Some(Lang::En.t("events.range_invalid"))
    );
    let p = f.admin.get("/app/events?from=March").await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("from").is_some());

    // In Italian, statuses and dates are Italian.
    f.admin
        .post_form("/language", &[("lang", "it"), ("next", "/app/events")])
        .await;
    let p = ok(&f.admin, "/app/events?status=ignored").await;
    let r = rows(&p, "event-row");
    assert!(
        r[0].contains(">Ignorato<") && r[0].contains("05/03/2024 12:00 UTC"),
        "{}",
        r[0]
    );
    assert!(p.contains("<option value=\"failed\">Non riuscito</option>"));
}

async fn events_list_pages_with_an_older_link_keeping_the_filters(backend: Backend) {
    let f = start(backend, checkout_1999()).await;
    let mut ids = Vec::new();
    for i in 0..53 {
        let ev = event(
            "product.updated",
            json!({"id": format!("prod_{i}"), "object": "product"}),
        );
        f.deliver(&ev).await;
        ids.push(id_of(&ev));
    }
    // Another type, which the filtered pages never show.
    let other = event(
        "product.created",
        json!({"id": "prod_x", "object": "product"}),
    );
    f.deliver(&other).await;

    let first = ok(&f.admin, "/app/events?type=product.updated").await;
    assert_eq!(rows(&first, "event-row").len(), 50);
    let older = first
        .links()
        .into_iter()
        .find(|l| l.contains("before="))
        .expect("an older link");
    assert!(older.contains("type=product.updated"), "{older}");
    let second = ok(&f.admin, &older).await;
    assert_eq!(rows(&second, "event-row").len(), 3);
    assert!(!second.links().iter().any(|l| l.contains("before=")));
    // Together, every event once, newest first.
    for (i, id) in ids.iter().enumerate() {
        let on_first = first.contains(id);
        let on_second = second.contains(id);
        assert!(on_first != on_second, "{id}");
        assert_eq!(on_second, i < 3, "{id}");
    }
    assert!(!first.contains(&id_of(&other)) && !second.contains(&id_of(&other)));
}

async fn event_page_shows_the_payload_pretty_printed_and_markup_as_text(backend: Backend) {
    let f = start(backend, checkout_1999()).await;
    let raw = "<img src=x onerror=alert(1)>";
    let ev = event(
        "product.created",
        json!({"id": "cus_xss", "object": "customer", "description": raw, "name": "Mario"}),
    );
    f.deliver(&ev).await;
    let broken = event(
        "charge.succeeded",
        json!({"id": "ch_broken", "object": "charge"}),
    );
    f.deliver(&broken).await;
    f.app.drain().await;
    let id = id_of(&ev);

    let p = ok(&f.viewer, &format!("/app/events/{id}")).await;
    // Markup from Stripe's payload is text: escaped in the HTML, readable on the page.
    assert!(!p.contains(raw), "the raw tag is in the HTML");
    assert!(!p.contains("<img"), "an img element is in the HTML");
    assert!(
        p.contains("&lt;img src=x onerror=alert(1)&gt;")
            || p.contains("&#60;img src=x onerror=alert(1)&#62;")
    );
    let text = p.text();
    // Pretty-printed: one field a line, indented by depth (event, data, object).
    assert!(text.contains("\n  \"type\": \"product.created\""), "{text}");
    assert!(
        text.contains(&format!("\n      \"description\": \"{raw}\"")),
        "{text}"
    );
    assert!(text.contains("\n      \"name\": \"Mario\""), "{text}");
    assert!(text.contains(Lang::En.t("event_status.ignored")));
    assert!(text.contains(Lang::En.t("event_origin.webhook")));
    assert!(
        !text.contains(Lang::En.t("events.not_yet")),
        "processed time shown"
    );
    // The list shows it too, as text.
    let list = ok(&f.viewer, "/app/events").await;
    assert!(list.contains(&id) && !list.contains("<img"));

    // A failed event says why.
    let p = ok(&f.viewer, &format!("/app/events/{}", id_of(&broken))).await;
    assert!(p.contains("id=\"last-error\""), "{}", p.body);
    assert!(p.contains(">Failed<"));
    // An unknown event is not found.
    assert_eq!(
        f.viewer.get("/app/events/evt_does_not_exist").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn replay_by_an_admin_processes_the_event_again_and_nobody_else_can(backend: Backend) {
    let f = start(backend, checkout_1999()).await;
    let ev = event(
        "payment_intent.succeeded",
        payment_intent("pi_replay", "succeeded", 1999),
    );
    f.deliver(&ev).await;
    f.app.drain().await;
    let id = id_of(&ev);
    let page = format!("/app/events/{id}");
    let action = format!("/app/events/{id}/replay");
    let before = f.event_row(&id).await;
    assert_eq!(before.status, "processed");

    // A viewer sees no Replay button and is refused when posting anyway.
    let p = ok(&f.viewer, &page).await;
    assert!(!p.contains(&action));
    let p = f.viewer.post_form(&action, &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // Without the form's token: refused.
    let p = ok(&f.admin, &page).await;
    assert!(p.contains(&format!("action=\"{action}\"")));
    let p = f.admin.post_form_raw(&action, &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    // Another company's admin: not found.
    let stranger = f.stranger().await;
    assert_eq!(stranger.get(&page).await.status, StatusCode::NOT_FOUND);
    let p = stranger.post_form(&action, &[]).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(f.event_row(&id).await, before, "nothing changed");

    // The admin replays (the form names the page's mode): the event is pending again, then
    // processed once more; back to the event in the same mode.
    let p = f.admin.post_form(&action, &[("mode", "test")]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.location(), Some(format!("{page}?mode=test").as_str()));
    let p = ok(&f.admin, &page).await;
    assert!(p.text().contains(Lang::En.t("events.flash_replayed")));
    assert!(p.contains("id=\"event-status\">Pending<"), "{}", p.body);
    assert_eq!(f.event_row(&id).await.status, "pending");
    assert!(f.app.drain().await >= 1);
    let p = ok(&f.admin, &page).await;
    assert!(p.contains("id=\"event-status\">Processed<"), "{}", p.body);
    assert!(p.contains("id=\"event-attempts\">1<"), "{}", p.body);
    let after = f.event_row(&id).await;
    assert_eq!(after.status, "processed");
    assert!(after.processed_at >= before.processed_at);
    // The audit log names the user.
    let audit = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("event.replayed"))
        .filter(audit_log::Column::Target.eq(id.as_str()))
        .all(&f.app.app.db)
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].actor, format!("user:{}", f.admin_email));
}

/// An order paid through Checkout (19.99 EUR, fulfilled), its payment intent and charge, and a
/// dispute waiting for a response; a second order still awaiting its payment. Returns the ids
/// of the two orders.
async fn seed_orders(f: &Fixture) -> (String, String) {
    f.deliver(&event(
        "checkout.session.completed",
        checkout_session("cs_test_paid", "paid", 1999),
    ))
    .await;
    f.deliver(&event(
        "payment_intent.succeeded",
        payment_intent("pi_for_cs_test_paid", "succeeded", 1999),
    ))
    .await;
    f.deliver(&event(
        "charge.succeeded",
        charge(
            "ch_paid",
            "succeeded",
            1999,
            Some("pi_for_cs_test_paid"),
            None,
        ),
    ))
    .await;
    f.deliver(&event(
        "charge.dispute.created",
        dispute(
            "dp_paid",
            "needs_response",
            "ch_paid",
            "pi_for_cs_test_paid",
            1999,
            true,
            false,
        ),
    ))
    .await;
    f.deliver(&event("checkout.session.completed", waiting_session()))
        .await;
    f.app.drain().await;
    (
        f.order_of("cs_test_paid").await,
        f.order_of("cs_test_waiting").await,
    )
}

async fn orders_show_payments_fulfillment_and_disputes_in_the_merchants_language(backend: Backend) {
    let f = start(backend, checkout_1999()).await;
    let (paid, waiting) = seed_orders(&f).await;

    // The list, in English: amounts, e-mails, statuses, the disputed flag.
    let p = ok(&f.viewer, "/app/orders").await;
    let r = rows(&p, "order-row");
    assert_eq!(r.len(), 2, "{}", p.body);
    let paid_row = r.iter().find(|r| r.contains(&paid)).unwrap();
    assert!(paid_row.contains("€19.99"), "{paid_row}");
    assert!(paid_row.contains("shopper@example.com"));
    assert!(paid_row.contains(">Fulfilled<"), "{paid_row}");
    assert!(paid_row.contains("status-failed\">Disputed<"), "{paid_row}");
    let waiting_row = r.iter().find(|r| r.contains(&waiting)).unwrap();
    assert!(waiting_row.contains("€45.00"), "{waiting_row}");
    assert!(waiting_row.contains("later@example.com"));
    assert!(waiting_row.contains(">Awaiting payment<"), "{waiting_row}");
    assert!(!waiting_row.contains(">Disputed<"));

    // The status filter.
    let p = ok(&f.viewer, "/app/orders?status=fulfilled").await;
    assert_eq!(shown(&p, &[&paid, &waiting]), vec![paid.as_str()]);
    let p = ok(&f.viewer, "/app/orders?status=awaiting_payment").await;
    assert_eq!(shown(&p, &[&paid, &waiting]), vec![waiting.as_str()]);
    let p = ok(&f.viewer, "/app/orders?status=canceled").await;
    assert!(rows(&p, "order-row").is_empty());
    let p = f.viewer.get("/app/orders?status=shipped").await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("status").is_some());

    // The order: line items, payment intent and charge, fulfillment, the dispute.
    let p = ok(&f.viewer, &format!("/app/orders/{paid}")).await;
    let text = p.text();
    for expected in [
        "Item 1",
        "price_1",
        "cs_test_paid",
        "pi_for_cs_test_paid",
        "ch_paid",
        "dp_paid",
        "€19.99",
        "cart_42",
        Lang::En.t("order_status.fulfilled"),
        Lang::En.t("intent_status.succeeded"),
        Lang::En.t("fulfilled_by.worker"),
        Lang::En.t("dispute_status.needs_response"),
        Lang::En.t("dispute_reason.fraudulent"),
        Lang::En.t("orders.disputed_notice"),
    ] {
        assert!(
            text.contains(expected),
            "the order page lacks {expected}: {}",
            p.body
        );
    }
    assert!(
        p.links()
            .contains(&"/app/disputes/dp_paid?mode=test".to_owned())
    );
    // The waiting order: no payment, not fulfilled.
    let p = ok(&f.viewer, &format!("/app/orders/{waiting}")).await;
    assert!(p.text().contains(Lang::En.t("orders.not_fulfilled")));
    assert!(p.text().contains(Lang::En.t("orders.no_disputes")));

    // In Italian (the browser's language): 19,99 €, Italian words.
    let (email, pw) = f.app.company_user(&f.company, "viewer").await;
    let it = Browser::new(&f.app);
    it.set_accept_language("it-IT,it;q=0.9,en;q=0.5");
    it.sign_in(&email, &pw).await;
    let p = ok(&it, "/app/orders").await;
    let text = p.text();
    assert!(text.contains("19,99 €"), "{}", p.body);
    assert!(text.contains("45,00 €"));
    assert!(!text.contains("€19.99"));
    assert!(text.contains(Lang::It.t("order_status.awaiting_payment")));
    let p = ok(&it, &format!("/app/orders/{paid}")).await;
    let text = p.text();
    assert!(text.contains("19,99 €"));
    assert!(text.contains(Lang::It.t("fulfilled_by.worker")));
    assert!(text.contains(Lang::It.t("dispute_status.needs_response")));
    // German too.
    f.admin
        .post_form("/language", &[("lang", "de"), ("next", "/app/orders")])
        .await;
    let p = ok(&f.admin, &format!("/app/orders/{paid}")).await;
    assert!(p.text().contains("19,99 €"));
    assert!(p.text().contains(Lang::De.t("order_status.fulfilled")));

    // Unknown and another company's orders are not found.
    assert_eq!(
        f.viewer.get("/app/orders/ord_nope").await.status,
        StatusCode::NOT_FOUND
    );
}

async fn disputes_needing_a_response_come_first_and_link_to_their_order(backend: Backend) {
    let f = start(backend, checkout_1999()).await;
    let (paid, _) = seed_orders(&f).await; // dp_paid: needs_response, due 1_900_000_000
    let mut soon = dispute(
        "dp_soon",
        "warning_needs_response",
        "ch_elsewhere",
        "pi_elsewhere",
        500,
        false,
        false,
    );
    soon["evidence_details"]["due_by"] = json!(1_800_000_000);
    soon["reason"] = json!("product_not_received");
    let won = dispute("dp_won", "won", "ch_w", "pi_w", 700, true, true);
    let review = dispute(
        "dp_review",
        "under_review",
        "ch_r",
        "pi_r",
        800,
        true,
        false,
    );
    for d in [won, soon, review] {
        f.deliver(&event("charge.dispute.created", d)).await;
    }
    f.app.drain().await;

    let p = ok(&f.viewer, "/app/disputes").await;
    let r = rows(&p, "dispute-row");
    let order: Vec<&str> = r
        .iter()
        .map(|row| {
            ["dp_soon", "dp_paid", "dp_review", "dp_won"]
                .into_iter()
                .find(|id| row.contains(id))
                .unwrap()
        })
        .collect();
    // Needing a response first, soonest due first; then the others, newest first.
    assert_eq!(
        order,
        ["dp_soon", "dp_paid", "dp_review", "dp_won"],
        "{}",
        p.body
    );
    assert!(r[0].contains(" needs-response") && r[1].contains(" needs-response"));
    assert!(!r[2].contains(" needs-response") && !r[3].contains(" needs-response"));
    // Words, amounts and due dates.
    assert!(r[0].contains(Lang::En.t("dispute_status.warning_needs_response")));
    assert!(r[0].contains(Lang::En.t("dispute_reason.product_not_received")));
    assert!(r[0].contains("€5.00"));
    assert!(
        r[0].contains(&Lang::En.datetime(1_800_000_000_000)),
        "{}",
        r[0]
    );
    assert!(
        r[1].contains(&Lang::En.datetime(1_900_000_000_000)),
        "{}",
        r[1]
    );
    assert!(r[3].contains(Lang::En.t("dispute_status.won")));
    // Each links to its order when Paygate has one.
    assert!(
        r[1].contains(&format!("href=\"/app/orders/{paid}?mode=test\"")),
        "{}",
        r[1]
    );
    assert!(!r[0].contains("/app/orders/"));

    // One dispute.
    let p = ok(&f.viewer, "/app/disputes/dp_paid").await;
    let text = p.text();
    assert!(text.contains(&Lang::En.format(
        "disputes.respond_by",
        &[&Lang::En.datetime(1_900_000_000_000)]
    )));
    assert!(text.contains("€19.99"));
    assert!(p.links().contains(&format!("/app/orders/{paid}?mode=test")));

    // In Italian.
    f.admin
        .post_form("/language", &[("lang", "it"), ("next", "/app/disputes")])
        .await;
    let p = ok(&f.admin, "/app/disputes").await;
    let r = rows(&p, "dispute-row");
    assert!(r[0].contains("5,00 €"));
    assert!(r[0].contains(&Lang::It.datetime(1_800_000_000_000)));
    assert!(r[0].contains(Lang::It.t("dispute_status.warning_needs_response")));
}

async fn another_companys_user_gets_not_found_for_events_orders_and_disputes(backend: Backend) {
    let f = start(backend, checkout_1999()).await;
    let (paid, _) = seed_orders(&f).await;
    let ev = inbox_event::Entity::find()
        .filter(inbox_event::Column::EventType.eq("charge.dispute.created"))
        .one(&f.app.app.db)
        .await
        .unwrap()
        .unwrap();
    let urls = [
        format!("/app/events/{}", ev.stripe_event_id),
        format!("/app/orders/{paid}"),
        "/app/disputes/dp_paid".to_owned(),
    ];
    for u in &urls {
        ok(&f.viewer, u).await;
    }
    let stranger = f.stranger().await;
    for u in &urls {
        assert_eq!(stranger.get(u).await.status, StatusCode::NOT_FOUND, "{u}");
    }
    let p = stranger
        .post_form(&format!("/app/events/{}/replay", ev.stripe_event_id), &[])
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    // The stranger's lists are empty of the first company's objects.
    for (list, needle) in [
        ("/app/events", ev.stripe_event_id.as_str()),
        ("/app/orders", paid.as_str()),
        ("/app/disputes", "dp_paid"),
    ] {
        let p = ok(&stranger, list).await;
        assert!(!p.contains(needle), "{list} shows {needle}");
    }
    assert_eq!(f.event_row(&ev.stripe_event_id).await.status, "processed");
}

/// `ev` as a live-mode event (its object live too), with a live-looking id.
fn live(mut ev: Value) -> Value {
    ev["id"] = json!(unique("evt_live_"));
    ev["livemode"] = json!(true);
    if ev["data"]["object"].is_object() {
        ev["data"]["object"]["livemode"] = json!(true);
    }
    ev
}

/// The live Checkout Session of the company's one live order (25.00 EUR, paid).
fn live_session() -> Value {
    let mut s = checkout_session("cs_live_paid", "paid", 2500);
    s["livemode"] = json!(true);
    s
}

const TEST_BANNER: &str = "id=\"test-data-banner\"";
const LIVE_LABEL: &str = "id=\"live-data-label\"";

async fn data_pages_show_one_mode_and_their_links_keep_it(backend: Backend) {
    let f = start(backend, checkout_1999().with_session(live_session())).await;
    // Test data (the company's environment is Test) ...
    let (paid, waiting) = seed_orders(&f).await;
    let test_event = f
        .event_row_of_type("checkout.session.completed")
        .await
        .stripe_event_id;
    // ... and live data, through a live profile: a paid order and a dispute on it.
    let live_secret = new_secret();
    f.app.create_profile(&f.company, "live", &live_secret).await;
    let mut dp = dispute(
        "dp_live",
        "needs_response",
        "ch_live",
        "pi_for_cs_live_paid",
        2500,
        true,
        false,
    );
    dp["livemode"] = json!(true);
    let live_events = [
        live(event("checkout.session.completed", live_session())),
        live(event("charge.dispute.created", dp)),
    ];
    for ev in &live_events {
        let (s, b) = f.app.deliver(&f.company, &live_secret, ev).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    f.app.drain().await;
    let live_order = f.order_of("cs_live_paid").await;
    let live_event = id_of(&live_events[1]);
    let orders = [paid.as_str(), waiting.as_str(), live_order.as_str()];

    // Orders, in the environment's mode (test): the test orders only, under the banner, with a
    // switch to live data.
    let p = ok(&f.viewer, "/app/orders").await;
    assert_eq!(shown(&p, &orders), [paid.as_str(), waiting.as_str()]);
    assert!(
        p.contains(TEST_BANNER) && !p.contains(LIVE_LABEL),
        "{}",
        p.body
    );
    assert!(p.text().contains(Lang::En.t("mode.test_banner")));
    assert!(p.links().contains(&"/app/orders?mode=live".to_owned()));
    assert!(p.links().contains(&format!("/app/orders/{paid}?mode=test")));
    // `?mode=live`: the live order only, said to be live, no banner.
    let p = ok(&f.viewer, "/app/orders?mode=live").await;
    assert_eq!(shown(&p, &orders), [live_order.as_str()]);
    assert!(
        p.contains(LIVE_LABEL) && !p.contains(TEST_BANNER),
        "{}",
        p.body
    );
    assert!(!p.text().contains(Lang::En.t("mode.test_banner")));
    assert!(p.links().contains(&"/app/orders?mode=test".to_owned()));
    // Its links keep the mode: to the order, from there back and to its dispute.
    let href = format!("/app/orders/{live_order}?mode=live");
    assert!(p.links().contains(&href), "{:?}", p.links());
    let o = ok(&f.viewer, &href).await;
    assert!(o.contains(LIVE_LABEL) && !o.contains(TEST_BANNER));
    assert!(o.text().contains("€25.00"), "{}", o.body);
    assert!(o.links().contains(&"/app/orders?mode=live".to_owned()));
    assert!(
        o.links()
            .contains(&"/app/disputes/dp_live?mode=live".to_owned())
    );
    // The filter form carries the mode; the switch keeps the filter.
    let p = ok(&f.viewer, "/app/orders?mode=live&status=fulfilled").await;
    assert_eq!(shown(&p, &orders), [live_order.as_str()]);
    let form = p
        .forms()
        .into_iter()
        .find(|fm| fm.action == "/app/orders")
        .expect("the filter form");
    assert_eq!(form.method, "get");
    assert!(
        form.fields
            .contains(&("mode".to_owned(), "live".to_owned())),
        "{form:?}"
    );
    assert!(
        p.links()
            .contains(&"/app/orders?mode=test&status=fulfilled".to_owned())
    );
    let p = ok(&f.viewer, "/app/orders?mode=test&status=fulfilled").await;
    assert_eq!(shown(&p, &orders), [paid.as_str()]);

    // Events: the same.
    let p = ok(&f.viewer, "/app/events").await;
    assert_eq!(rows(&p, "event-row").len(), 5, "{}", p.body);
    assert!(p.contains(&test_event) && !p.contains(&live_event));
    assert!(p.contains(TEST_BANNER));
    let p = ok(&f.viewer, "/app/events?mode=live").await;
    assert_eq!(rows(&p, "event-row").len(), 2, "{}", p.body);
    assert!(p.contains(&live_event) && !p.contains(&test_event));
    assert!(p.contains(LIVE_LABEL) && !p.contains(TEST_BANNER));
    let href = format!("/app/events/{live_event}?mode=live");
    assert!(p.links().contains(&href), "{:?}", p.links());
    let p = ok(
        &f.viewer,
        "/app/events?mode=live&type=charge.dispute.created",
    )
    .await;
    assert_eq!(rows(&p, "event-row").len(), 1);
    assert!(
        p.links()
            .contains(&"/app/events?mode=test&type=charge.dispute.created".to_owned())
    );
    let e = ok(&f.admin, &href).await;
    assert!(e.links().contains(&"/app/events?mode=live".to_owned()));
    assert!(
        e.links().contains(&"/app/events?mode=test".to_owned()),
        "the switch"
    );

    // Disputes: the live one on the live page only, linking to its order in live mode.
    let p = ok(&f.viewer, "/app/disputes").await;
    assert!(p.contains("dp_paid") && !p.contains("dp_live"));
    let p = ok(&f.viewer, "/app/disputes?mode=live").await;
    let r = rows(&p, "dispute-row");
    assert_eq!(r.len(), 1, "{}", p.body);
    assert!(r[0].contains("dp_live"));
    assert!(r[0].contains(&format!("href=\"/app/orders/{live_order}?mode=live\"")));

    // An object of the other mode is not found on its page.
    for url in [
        format!("/app/orders/{live_order}"),
        format!("/app/orders/{live_order}?mode=test"),
        format!("/app/orders/{paid}?mode=live"),
        format!("/app/events/{live_event}"),
        format!("/app/events/{live_event}?mode=test"),
        format!("/app/events/{test_event}?mode=live"),
        "/app/disputes/dp_live".to_owned(),
        "/app/disputes/dp_paid?mode=live".to_owned(),
    ] {
        assert_eq!(
            f.viewer.get(&url).await.status,
            StatusCode::NOT_FOUND,
            "{url}"
        );
    }

    // Replay: the form names its mode; asked in the other mode, the event is not found and
    // nothing changes; in its own, it goes back to the event in that mode.
    let action = format!("/app/events/{live_event}/replay");
    let form = e
        .forms()
        .into_iter()
        .find(|fm| fm.action == action)
        .expect("the Replay form");
    assert!(
        form.fields
            .contains(&("mode".to_owned(), "live".to_owned()))
    );
    let before = f.event_row(&live_event).await;
    let p = f.admin.post_form(&action, &[("mode", "test")]).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(f.event_row(&live_event).await, before);
    let p = f
        .admin
        .post_form(&action, &form.fields_without_csrf())
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.location(), Some(href.as_str()));
    assert_eq!(f.event_row(&live_event).await.status, "pending");
    f.app.drain().await;

    // The overview counts one mode's data; chosen against the environment, the mode stays on
    // the menu's data pages.
    let p = ok(&f.viewer, "/app").await;
    assert!(p.contains("id=\"count-orders\">2<"), "{}", p.body);
    assert!(p.contains(TEST_BANNER));
    let p = ok(&f.viewer, "/app?mode=live").await;
    assert!(p.contains("id=\"count-orders\">1<"), "{}", p.body);
    assert!(p.contains("id=\"count-events\">2<"));
    assert!(p.contains(LIVE_LABEL) && !p.contains(TEST_BANNER));
    for link in [
        "/app/events?mode=live",
        "/app/orders?mode=live",
        "/app/disputes?mode=live",
    ] {
        assert!(
            p.links().contains(&link.to_owned()),
            "{link}: {:?}",
            p.links()
        );
    }

    // A mode that does not exist: a clear 400 page, no data.
    let p = f.viewer.get("/app/orders?mode=production").await;
    assert_eq!(p.status, StatusCode::BAD_REQUEST);
    assert!(
        p.text().contains(Lang::En.t("errors.bad_mode")),
        "{}",
        p.body
    );
    assert!(!p.contains(&paid) && !p.contains(&live_order));

    // The banner in the merchant's language.
    f.admin
        .post_form("/language", &[("lang", "it"), ("next", "/app/orders")])
        .await;
    let p = ok(&f.admin, "/app/orders").await;
    assert!(p.text().contains(Lang::It.t("mode.test_banner")));
    assert!(p.text().contains(Lang::It.t("mode.switch_to_live")));
}

db_tests!(
    events_list_filters_by_type_status_and_day,
    events_list_pages_with_an_older_link_keeping_the_filters,
    event_page_shows_the_payload_pretty_printed_and_markup_as_text,
    replay_by_an_admin_processes_the_event_again_and_nobody_else_can,
    orders_show_payments_fulfillment_and_disputes_in_the_merchants_language,
    disputes_needing_a_response_come_first_and_link_to_their_order,
    another_companys_user_gets_not_found_for_events_orders_and_disputes,
    data_pages_show_one_mode_and_their_links_keep_it,
);
