//! The shopper's landing page as an attacker sees it: it needs no authentication, so every
//! Stripe call it can cause is bounded. Malformed session ids cost no call, an id Stripe said
//! it does not know costs one call however often it is asked for, a company's lookups have a
//! budget beyond which the page answers from the database alone, and a 429 is not retried.
//! Stripe is the test kit's fake (real HTTP); the tests count the requests it received.

use paygate_testkit::checkout_objects::FakeCheckout;
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret};
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const PENDING: &str = "Order received, awaiting payment confirmation.";
const CONFIRMED: &str = "Payment confirmed, order complete.";
const UNKNOWN: &str = "We cannot find this checkout session.";

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
/// id Paygate has never seen gets the calm "being confirmed" page (200, not an error), a
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
        assert!(page.contains(PENDING), "{page}");
    }
    let (s, page) = landing(&app, &company, "cs_test_never_seen").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains(PENDING), "{page}");
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
    assert!(page.contains(PENDING), "{page}");
    assert_eq!(stripe_calls(&stripe).await, 1, "a 429 is not retried");
    let (s, page) = landing(&app, &company, "cs_test_after_busy").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains(PENDING), "{page}");
    assert_eq!(stripe_calls(&stripe).await, 1, "lookups pause after a 429");
}

db_tests!(
    shopper_the_same_unknown_session_costs_one_stripe_call,
    shopper_malformed_session_ids_cost_no_stripe_call,
    shopper_lookups_beyond_the_budget_cost_no_stripe_call,
    shopper_a_429_from_stripe_is_not_retried,
);
