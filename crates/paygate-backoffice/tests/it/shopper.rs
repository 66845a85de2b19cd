//! The shopper's landing page as an attacker sees it: it needs no authentication, so every
//! Stripe call it can cause is bounded. Malformed session ids cost no call, an id Stripe said
//! it does not know costs one call however often it is asked for, a company's lookups have a
//! budget beyond which the page answers from the database alone, and a 429 is not retried.
//! Stripe is the test kit's fake (real HTTP); the tests count the requests it received.

use paygate_testkit::checkout_objects::FakeCheckout;
use paygate_testkit::objects::checkout_session;
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret};
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PENDING: &str = "Order received, awaiting payment confirmation.";
const CONFIRMED: &str = "Payment confirmed, order complete.";
const UNKNOWN: &str = "We cannot find this payment.";
const UNCHECKED: &str = "We could not check the status of your payment yet.";

/// An app over a fake Stripe Checkout (every session paid, ids containing `missing` unknown),
/// with `adjust` applied to its settings; a company with a test profile.
async fn start(
    backend: Backend,
    adjust: fn(&mut paygate_testkit::Settings),
) -> (TestApp, MockServer, String) {
    let stripe = MockServer::start().await;
    FakeCheckout::new("paid", 2, 10).mount(&stripe).await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    opts.adjust = adjust;
    let app = TestApp::start(opts).await;
    let company = app.company_with_secret(&new_secret()).await;
    (app, stripe, company)
}

/// Requests the fake Stripe received so far.
async fn stripe_calls(stripe: &MockServer) -> usize {
    stripe.received_requests().await.unwrap().len()
}

/// The landing page for `session_id` (already URL-safe), in English.
async fn landing(app: &TestApp, company: &str, session_id: &str) -> (StatusCode, String) {
    let r = app
        .client
        .get(app.url(&format!(
            "/checkout/{company}/return?session_id={session_id}"
        )))
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

/// Asking again and again for a session Stripe does not know costs one Stripe call: the answer
/// is remembered (per company, mode and id) and the page stays a 404.
async fn shopper_the_same_unknown_session_costs_one_stripe_call(backend: Backend) {
    let (app, stripe, company) = start(backend, |_| {}).await;
    for _ in 0..6 {
        let (s, page) = landing(&app, &company, "cs_test_missing_again").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert!(page.contains(UNKNOWN), "{page}");
    }
    assert_eq!(stripe_calls(&stripe).await, 1);
    // Another id is another question.
    let (s, _) = landing(&app, &company, "cs_test_missing_other").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(stripe_calls(&stripe).await, 2);
}

/// A session id that is not `cs_test_…` / `cs_live_…` in Stripe's alphabet and length is
/// refused (400) before Stripe is asked; so is a company id no company can have (404).
async fn shopper_malformed_session_ids_cost_no_stripe_call(backend: Backend) {
    let (app, stripe, company) = start(backend, |_| {}).await;
    let long = format!("cs_test_{}", "a".repeat(300));
    for id in [
        "cs_abc",
        "cs_test_",
        "cs_live_",
        "cs_foo_abc",
        "pi_test_abc",
        "cs_test_a-b",
        "cs_test_%3Cscript%3E",
        "cs_test_abc%00",
        long.as_str(),
    ] {
        let (s, page) = landing(&app, &company, id).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{id}: {page}");
    }
    let far = "x".repeat(4000);
    let (s, _) = landing(&app, &far, "cs_test_abc").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(stripe_calls(&stripe).await, 0);
}

/// Beyond the company's budget of shopper-triggered lookups the page calls Stripe no more: an
/// id Paygate has never seen gets the calm "could not check yet" page (200, not an error), a
/// session already in the database is answered from it as usual.
async fn shopper_lookups_beyond_the_budget_cost_no_stripe_call(backend: Backend) {
    let (app, stripe, company) = start(backend, |s| s.shopper_lookups_per_minute = 3).await;
    // One lookup fulfills a real session (Stripe knows it, paid).
    let (s, page) = landing(&app, &company, "cs_test_real_one").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains(CONFIRMED), "{page}");
    // Two more spend the budget.
    for id in ["cs_test_missing_1", "cs_test_missing_2"] {
        assert_eq!(landing(&app, &company, id).await.0, StatusCode::NOT_FOUND);
    }
    assert_eq!(stripe_calls(&stripe).await, 3);
    for i in 0..10 {
        let (s, page) = landing(&app, &company, &format!("cs_test_missing_more_{i}")).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert!(
            page.contains(UNCHECKED) && !page.contains(PENDING),
            "{page}"
        );
    }
    let (s, page) = landing(&app, &company, "cs_test_never_seen").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains(UNCHECKED) && !page.contains(PENDING),
        "{page}"
    );
    // The session in the database is still answered, from the database.
    let (s, page) = landing(&app, &company, "cs_test_real_one").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains(CONFIRMED), "{page}");
    // An id remembered as unknown is still a 404.
    assert_eq!(
        landing(&app, &company, "cs_test_missing_1").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(stripe_calls(&stripe).await, 3, "no call beyond the budget");
    // Another company has a budget of its own.
    let other = app.company_with_secret(&new_secret()).await;
    let (s, _) = landing(&app, &other, "cs_test_missing_elsewhere").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(stripe_calls(&stripe).await, 4);
}

/// A 429 from Stripe is not retried for the shopper's page: one call, then the calm page; and
/// the company's lookups pause (the budget is emptied) so the page adds nothing to the load.
async fn shopper_a_429_from_stripe_is_not_retried(backend: Backend) {
    // A budget of 6 refills one lookup per 10 s: only the 429 can empty it within the test.
    let (app, stripe, company) = start(backend, |s| s.shopper_lookups_per_minute = 6).await;
    Mock::given(method("GET"))
        .and(path("/v1/checkout/sessions/cs_test_busy"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Stripe-Should-Retry", "true")
                .set_body_json(json!({"error": {
                    "type": "invalid_request_error", "code": "rate_limit",
                    "message": "Too many requests",
                }})),
        )
        .with_priority(1)
        .mount(&stripe)
        .await;
    let (s, page) = landing(&app, &company, "cs_test_busy").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains(UNCHECKED) && !page.contains(PENDING),
        "{page}"
    );
    assert_eq!(stripe_calls(&stripe).await, 1, "a 429 is not retried");
    let (s, page) = landing(&app, &company, "cs_test_after_busy").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains(UNCHECKED) && !page.contains(PENDING),
        "{page}"
    );
    assert_eq!(stripe_calls(&stripe).await, 1, "lookups pause after a 429");
}

db_tests!(
    shopper_the_same_unknown_session_costs_one_stripe_call,
    shopper_malformed_session_ids_cost_no_stripe_call,
    shopper_lookups_beyond_the_budget_cost_no_stripe_call,
    shopper_a_429_from_stripe_is_not_retried,
    shopper_pages_in_it_de_en_for_unknown_paid_and_failed_sessions,
    shopper_stripe_unreachable_is_never_order_received,
    shopper_a_missing_session_or_unknown_shop_is_a_localized_page,
    shopper_a_source_orders_page_polls_then_invites_to_pay_again,
    shopper_an_email_is_promised_only_when_one_will_be_sent,
    shopper_a_failed_checkout_links_page_and_email_to_the_cancel_url,
);

/// A page as a shopper's browser gets it: status, `Content-Type`, body.
async fn page_as(app: &TestApp, path_and_query: &str, lang: &str) -> (StatusCode, String, String) {
    let r = app
        .client
        .get(app.url(path_and_query))
        .header("Accept-Language", lang)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    (status, ct, r.text().await.unwrap())
}

/// The texts of the shopper's page in one language.
struct Words {
    lang: &'static str,
    unknown_title: &'static str,
    confirmed: &'static str,
    failed: &'static str,
    pay_again_hint: &'static str,
    amount: &'static str,
}

const WORDS: [Words; 3] = [
    Words {
        lang: "it-IT,it;q=0.9",
        unknown_title: "Pagamento non trovato",
        confirmed: "Pagamento confermato, ordine completato.",
        failed: "Pagamento non riuscito, l&#39;ordine non è stato elaborato.",
        pay_again_hint: "Per questo ordine non è stato addebitato nulla.",
        amount: "20,00 €",
    },
    Words {
        lang: "de-DE",
        unknown_title: "Zahlung nicht gefunden",
        confirmed: "Zahlung bestätigt, Bestellung abgeschlossen.",
        failed: "Zahlung fehlgeschlagen, die Bestellung wurde nicht bearbeitet.",
        pay_again_hint: "Für diese Bestellung wurde nichts abgebucht.",
        amount: "20,00 €",
    },
    Words {
        lang: "en",
        unknown_title: "Payment not found",
        confirmed: "Payment confirmed, order complete.",
        failed: "Payment failed, order not processed.",
        pay_again_hint: "No money was taken for this order.",
        amount: "€20.00",
    },
];

/// The shopper's page for an unknown, a paid and a failed session, in Italian, German and
/// English: HTML with the shop's name, the amount in the language's format and the merchant's
/// reference; a failed payment invites the shopper to pay again.
async fn shopper_pages_in_it_de_en_for_unknown_paid_and_failed_sessions(backend: Backend) {
    let secret = new_secret();
    let stripe = MockServer::start().await;
    FakeCheckout::new("paid", 2, 10)
        .with_session(checkout_session("cs_test_failing", "unpaid", 2000))
        .with_session(checkout_session("cs_test_lapsing", "unpaid", 2000))
        .mount(&stripe)
        .await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = app.company_with_secret(&secret).await;
    // The delayed payment is recorded as waiting, then Stripe says it failed.
    let (s, _) = landing(&app, &company, "cs_test_failing").await;
    assert_eq!(s, StatusCode::OK);
    let ev = paygate_testkit::event(
        "checkout.session.async_payment_failed",
        checkout_session("cs_test_failing", "unpaid", 2000),
    );
    assert_eq!(app.deliver(&company, &secret, &ev).await.0, StatusCode::OK);
    app.drain().await;
    for w in &WORDS {
        let (s, ct, page) = page_as(
            &app,
            &format!("/checkout/{company}/return?session_id=cs_test_missing_x"),
            w.lang,
        )
        .await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{page}");
        assert!(ct.starts_with("text/html"), "{ct}");
        assert!(page.contains(w.unknown_title), "{}: {page}", w.lang);
        let (s, ct, page) = page_as(
            &app,
            &format!("/checkout/{company}/return?session_id=cs_test_paid_1"),
            w.lang,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert!(ct.starts_with("text/html"));
        assert!(page.contains(w.confirmed), "{}: {page}", w.lang);
        assert!(page.contains(&format!("{company} Ltd")), "the shop: {page}");
        assert!(page.contains(w.amount), "{}: {page}", w.lang);
        assert!(page.contains("cart_42"), "the merchant's reference: {page}");
        assert!(!page.contains(w.pay_again_hint), "{page}");
        let (s, _, page) = page_as(
            &app,
            &format!("/checkout/{company}/return?session_id=cs_test_failing"),
            w.lang,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{page}");
        assert!(page.contains(w.failed), "{}: {page}", w.lang);
        assert!(page.contains(w.pay_again_hint), "{}: {page}", w.lang);
        assert!(page.contains("data-state=\"failed\""), "{page}");
    }
    // A session that expired unpaid: nothing was taken, the shopper may pay again.
    assert_eq!(
        landing(&app, &company, "cs_test_lapsing").await.0,
        StatusCode::OK
    );
    let mut lapsed = checkout_session("cs_test_lapsing", "unpaid", 2000);
    lapsed["status"] = json!("expired");
    let ev = paygate_testkit::event("checkout.session.expired", lapsed);
    assert_eq!(app.deliver(&company, &secret, &ev).await.0, StatusCode::OK);
    app.drain().await;
    let (s, page) = landing(&app, &company, "cs_test_lapsing").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("The payment was not completed: it expired or was cancelled"),
        "{page}"
    );
    assert!(page.contains(WORDS[2].pay_again_hint), "{page}");
    assert!(!page.contains("received"), "{page}");
}

/// With Stripe unreachable, a session Paygate has not recorded gets an honest page: the
/// payment could not be checked yet, the page retries by itself; never "order received".
async fn shopper_stripe_unreachable_is_never_order_received(backend: Backend) {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(base);
    let app = TestApp::start(opts).await;
    let company = app.company_with_secret(&new_secret()).await;
    let r = app
        .client
        .get(app.url(&format!(
            "/checkout/{company}/return?session_id=cs_test_unreachable"
        )))
        .header("Accept-Language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["retry-after"], "10");
    let page = r.text().await.unwrap();
    assert!(page.contains(UNCHECKED), "{page}");
    assert!(!page.contains("received"), "{page}");
    assert!(
        page.contains("<meta http-equiv=\"refresh\" content=\"10\">"),
        "{page}"
    );
    assert!(
        page.contains("data-state=\"unchecked\""),
        "the script does not poll: {page}"
    );
    let (_, _, de) = page_as(
        &app,
        &format!("/checkout/{company}/return?session_id=cs_test_unreachable"),
        "de",
    )
    .await;
    assert!(
        de.contains("Der Status Ihrer Zahlung konnte noch nicht geprüft werden.")
            && !de.contains("Bestellung erhalten"),
        "{de}"
    );
}

/// A link without a session id, with a malformed one, to an unknown shop or to a Source no
/// order uses: a page in the shopper's language, never JSON.
async fn shopper_a_missing_session_or_unknown_shop_is_a_localized_page(backend: Backend) {
    let (app, stripe, company) = start(backend, |_| {}).await;
    for (path_and_query, lang, status, text) in [
        (
            format!("/checkout/{company}/return"),
            "it",
            StatusCode::BAD_REQUEST,
            "Link incompleto",
        ),
        (
            format!("/checkout/{company}/return?session_id="),
            "de",
            StatusCode::BAD_REQUEST,
            "Unvollständiger Link",
        ),
        (
            format!("/checkout/{company}/return?session_id=nonsense"),
            "en",
            StatusCode::BAD_REQUEST,
            "Incomplete link",
        ),
        (
            "/checkout/no_such_shop/return?session_id=cs_test_abc".to_owned(),
            "de",
            StatusCode::NOT_FOUND,
            "Shop nicht gefunden",
        ),
        (
            "/checkout/no_such_shop/return".to_owned(),
            "it",
            StatusCode::NOT_FOUND,
            "Negozio non trovato",
        ),
        (
            format!("/checkout/{company}/return?source=src_nobody&livemode=false"),
            "en",
            StatusCode::NOT_FOUND,
            "We cannot find this payment.",
        ),
    ] {
        let (s, ct, page) = page_as(&app, &path_and_query, lang).await;
        assert_eq!(s, status, "{path_and_query}: {page}");
        assert!(ct.starts_with("text/html"), "{path_and_query}: {ct}");
        assert!(page.contains(text), "{path_and_query}: {page}");
        assert!(!page.contains("\"error\""), "no JSON: {page}");
    }
    assert_eq!(stripe_calls(&stripe).await, 0);
}

/// An API key of `company`, whose Stripe payment method is switched on.
async fn merchant_key(app: &TestApp, company: &str) -> String {
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"stripe_enabled": true}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, k) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/api-keys"),
            json!({"name": "shop backend"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{k}");
    k["key"].as_str().unwrap().to_owned()
}

/// Creates an order paid with Source `source` through the merchant API.
async fn source_order(app: &TestApp, key: &str, body: serde_json::Value) -> String {
    let (s, o) = app
        .send(
            app.client
                .post(app.url("/api/v1/orders"))
                .bearer_auth(key)
                .json(&body),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    o["id"].as_str().unwrap().to_owned()
}

/// An order paid with a legacy Source: Stripe sends the shopper back with `source=…`; the page
/// answers from the database (no Stripe call), polls the order's status, and once the Source
/// failed says so and invites the shopper back to the shop to pay again.
async fn shopper_a_source_orders_page_polls_then_invites_to_pay_again(backend: Backend) {
    let secret = new_secret();
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = app.company_with_secret(&secret).await;
    let key = merchant_key(&app, &company).await;
    let order_id = source_order(
        &app,
        &key,
        json!({"source": "src_shopper1", "amount": 1999, "currency": "eur", "locale": "it",
               "customer_email": "anna@example.com", "return_url": "https://shop.example/cart"}),
    )
    .await;
    // A shopper whose payment e-mails are off: no promise.
    let url = format!(
        "/checkout/{company}/return?source=src_shopper1&livemode=false&client_secret=src_client_secret_x"
    );
    let (s, ct, page) = page_as(&app, &url, "en").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(ct.starts_with("text/html"));
    assert!(
        page.contains("Ordine ricevuto, in attesa della conferma del pagamento."),
        "the order's language: {page}"
    );
    assert!(page.contains("19,99 €"), "{page}");
    assert!(page.contains(&order_id), "{page}");
    assert!(page.contains("data-state=\"pending\""), "{page}");
    assert!(
        page.contains(&format!(
            "data-status-url=\"/checkout/{company}/sources/src_shopper1/status?livemode=false\""
        )),
        "{page}"
    );
    assert!(
        page.contains("href=\"https://shop.example/cart\""),
        "{page}"
    );
    assert!(page.contains("Torna al negozio"), "{page}");
    assert!(!page.contains("e-mail"), "no e-mail promised: {page}");
    let (s, st) = app
        .send(app.client.get(app.url(&format!(
            "/checkout/{company}/sources/src_shopper1/status?livemode=false"
        ))))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (st["state"].clone(), st["order_id"].clone()),
        (json!("pending"), json!(order_id))
    );
    // The other mode has no such order.
    let (s, _, _) = page_as(
        &app,
        &format!("/checkout/{company}/return?source=src_shopper1&livemode=true"),
        "en",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // The shopper declines: Stripe says the Source failed.
    let ev = paygate_testkit::event(
        "source.failed",
        paygate_testkit::objects::source("src_shopper1", "failed", 1999),
    );
    assert_eq!(app.deliver(&company, &secret, &ev).await.0, StatusCode::OK);
    app.drain().await;
    let (s, _, page) = page_as(&app, &url, "en").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("data-state=\"failed\""), "{page}");
    assert!(
        page.contains("Per questo ordine non è stato addebitato nulla."),
        "{page}"
    );
    assert!(
        page.contains("Torna al negozio per pagare di nuovo"),
        "{page}"
    );
    assert!(
        page.contains("href=\"https://shop.example/cart\""),
        "{page}"
    );
    let (_, st) = app
        .send(app.client.get(app.url(&format!(
            "/checkout/{company}/sources/src_shopper1/status?livemode=false"
        ))))
        .await;
    assert_eq!(st["state"], "failed");
    assert!(
        stripe.received_requests().await.unwrap().is_empty(),
        "no Stripe call"
    );
}

/// The page promises an e-mail only when one will be sent: shopper e-mails on, a mail server
/// configured, and the shopper's address on the order. Settings left on from a time with a
/// mail server promise nothing once it is gone.
async fn shopper_an_email_is_promised_only_when_one_will_be_sent(backend: Backend) {
    use paygate_db::entities::notification_settings;
    use sea_orm::{ActiveModelTrait, Set};
    const PROMISE: &str = "You will receive an e-mail as soon as the payment is confirmed.";
    const FINAL_EMAIL: &str = "you will receive an e-mail as soon as the payment is confirmed";
    // With a mail server.
    let smtp = paygate_testkit::receivers::SmtpSink::start().await;
    let mut opts = Options::new(backend);
    opts.smtp_url = Some(smtp.url());
    let app = TestApp::start(opts).await;
    let company = app.company_with_secret(&new_secret()).await;
    let key = merchant_key(&app, &company).await;
    let (s, b) = app
        .admin(
            reqwest::Method::PUT,
            &format!("/admin/v1/companies/{company}/notification-settings"),
            Some(json!({"shopper_emails": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    source_order(
        &app,
        &key,
        json!({"source": "src_with_mail", "amount": 500, "currency": "eur", "customer_email": "anna@example.com"}),
    )
    .await;
    source_order(
        &app,
        &key,
        json!({"source": "src_no_mail", "amount": 500, "currency": "eur"}),
    )
    .await;
    let (_, _, page) = page_as(
        &app,
        &format!("/checkout/{company}/return?source=src_with_mail"),
        "en",
    )
    .await;
    assert!(
        page.contains(PROMISE) && page.contains(FINAL_EMAIL),
        "{page}"
    );
    let (_, _, page) = page_as(
        &app,
        &format!("/checkout/{company}/return?source=src_no_mail"),
        "en",
    )
    .await;
    assert!(!page.contains("e-mail"), "no address, no promise: {page}");
    // Without a mail server, the same settings (left in the database) promise nothing.
    let app = TestApp::spawn(backend).await;
    let company = app.company_with_secret(&new_secret()).await;
    let key = merchant_key(&app, &company).await;
    let c = app.app.tenants.company(&company).await.unwrap();
    notification_settings::ActiveModel {
        company_pk: Set(c.id),
        shopper_emails: Set(true),
        sender_name: Set(None),
        updated_at: Set(0),
    }
    .insert(&app.app.db)
    .await
    .unwrap();
    source_order(
        &app,
        &key,
        json!({"source": "src_with_mail", "amount": 500, "currency": "eur", "customer_email": "anna@example.com"}),
    )
    .await;
    let (s, _, page) = page_as(
        &app,
        &format!("/checkout/{company}/return?source=src_with_mail"),
        "en",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("Order received"), "{page}");
    assert!(
        !page.contains("e-mail"),
        "no mail server, no promise: {page}"
    );
}

/// An e-mail's text as sent (quoted-printable soft breaks and `=` undone; ASCII texts only).
fn mail_text(data: &str) -> String {
    data.replace("=\r\n", "").replace("=3D", "=")
}

/// Issue 20: a session made through the merchant API keeps its `cancel_url`. When its payment
/// fails, the shopper's page (its `<title>` naming the shop) links back to the `cancel_url`
/// (not to `return_url`) to pay again, and the shopper's e-mail invites them back with the
/// same link.
async fn shopper_a_failed_checkout_links_page_and_email_to_the_cancel_url(backend: Backend) {
    use sea_orm::{ColumnTrait, QueryFilter};
    const CANCEL: &str = "https://shop.example/cart?again=1";
    const RETURN: &str = "https://shop.example/thanks";
    let smtp = paygate_testkit::receivers::SmtpSink::start().await;
    let stripe = MockServer::start().await;
    FakeCheckout::new("paid", 1, 10)
        .with_session(checkout_session("cs_test_retry", "unpaid", 2000))
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_retry", "object": "checkout.session",
            "url": "https://checkout.stripe.com/c/pay/cs_test_retry",
            "payment_status": "unpaid", "status": "open", "amount_total": 2000,
            "currency": "eur", "livemode": false, "mode": "payment", "metadata": {}
        })))
        .mount(&stripe)
        .await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    opts.smtp_url = Some(smtp.url());
    let app = TestApp::start(opts).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let key = merchant_key(&app, &company).await;
    let (s, b) = app
        .admin(
            reqwest::Method::PUT,
            &format!("/admin/v1/companies/{company}/notification-settings"),
            Some(json!({"shopper_emails": true})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, created) = app
        .send(
            app.client
                .post(app.url("/api/v1/checkout-sessions"))
                .bearer_auth(&key)
                .json(&json!({
                    "line_items": [{"price_data": {"currency": "eur", "unit_amount": 2000,
                                    "product_data": {"name": "Mug"}}, "quantity": 1}],
                    "customer_email": "shopper@example.com", "locale": "en",
                    "return_url": RETURN, "cancel_url": CANCEL,
                })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let order_id = created["order_id"].as_str().unwrap().to_owned();
    let c = app.app.tenants.company(&company).await.unwrap();
    let o = paygate_db::Scope::of_livemode(c.id, false)
        .orders()
        .filter(paygate_db::entities::order::Column::Id.eq(order_id.clone()))
        .one(&app.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(o.cancel_url.as_deref(), Some(CANCEL));
    // The shopper comes back while the (delayed) payment is pending; then it fails.
    let (s, page) = landing(&app, &company, "cs_test_retry").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains(&format!(" · {company} Ltd</title>")),
        "the shop's name in the title: {page}"
    );
    assert!(
        page.contains(&format!("href=\"{RETURN}\"")),
        "pending: back to return_url: {page}"
    );
    let ev = paygate_testkit::event(
        "checkout.session.async_payment_failed",
        checkout_session("cs_test_retry", "unpaid", 2000),
    );
    assert_eq!(app.deliver(&company, &secret, &ev).await.0, StatusCode::OK);
    app.drain().await;
    app.drain_notifications().await;
    let (s, page) = landing(&app, &company, "cs_test_retry").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains(WORDS[2].pay_again_hint), "{page}");
    assert!(
        page.contains("href=\"https://shop.example/cart?again=1\""),
        "pay again at cancel_url: {page}"
    );
    assert!(!page.contains(&format!("href=\"{RETURN}\"")), "{page}");
    let mails: Vec<String> = smtp.mails().iter().map(|m| mail_text(&m.data)).collect();
    let failed: Vec<&String> = mails
        .iter()
        .filter(|m| m.contains("Payment failed"))
        .collect();
    assert_eq!(failed.len(), 1, "{mails:#?}");
    assert!(
        failed[0].contains(
            "No money was taken for this order. You can go back to the shop and pay again."
        ),
        "{}",
        failed[0]
    );
    assert!(
        failed[0].contains(&format!("To pay again: {CANCEL}")),
        "{}",
        failed[0]
    );
}
