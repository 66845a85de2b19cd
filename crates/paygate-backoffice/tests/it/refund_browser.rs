//! The Refund action in a real browser (Debian's `chromium` through `chromedriver`, the test
//! kit's `webdriver`): an admin opens a paid order, presses **Refund**, changes the amount, goes
//! on to the confirmation page (nothing refunded yet), confirms, and lands back on the order
//! with the flash, the refund in the list and the order partially refunded. The fake Stripe
//! (wiremock) received exactly one refund request. Screenshots under
//! `target/browser-screenshots/refund/`. Skipped, as the other browser tests, when the browser is
//! missing and not required.

use paygate_backoffice::i18n::Lang;
use paygate_testkit::webdriver::{Driver, Web, browser_available, screenshot_dir};
use paygate_testkit::{Backend, Options, TestApp, new_secret, now_secs, unique};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_refunds_part_of_an_order_in_a_real_browser() {
    if !browser_available("the refund browser test") {
        return;
    }
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_browser", "object": "refund", "status": "succeeded", "amount": 1000,
            "currency": "eur", "created": now_secs(), "charge": "ch_browser",
            "payment_intent": "pi_browser", "reason": "duplicate", "failure_reason": null,
            "metadata": {},
        })))
        .expect(1)
        .mount(&stripe)
        .await;
    let mut opts = Options::new(Backend::Sqlite);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = unique("co");
    app.create_company(&company).await;
    app.create_profile(&company, "test", &new_secret()).await;
    let (email, password) = app.company_user(&company, "admin").await;
    let order = app.paid_order(&company, "pi_browser", "ch_browser").await;

    let shots = screenshot_dir(env!("CARGO_TARGET_TMPDIR"), Some("refund"));
    let driver = Driver::start(&shots);
    let c = driver.session().await;
    let mut web = Web::new(&driver, c.clone(), &app.base_url, shots);

    web.goto("/signin").await;
    web.fill("/signin", "email", &email).await;
    web.fill("/signin", "password", &password).await;
    web.submit("/signin").await;

    web.goto(&format!("/app/orders/{order}?mode=test")).await;
    web.shot("order").await;
    web.click_and_wait("#refund-action").await;
    assert!(
        web.path()
            .await
            .starts_with(&format!("/app/orders/{order}/refund"))
    );
    web.assert_text(&Lang::En.t("refunds.form_title").replace("{0}", &order))
        .await;
    let amount = web.find("#refund-form [name=\"amount\"]").await;
    amount.clear().await.unwrap();
    amount.send_keys("10").await.unwrap();
    web.find("#refund-form select[name=\"reason\"]")
        .await
        .select_by_value("duplicate")
        .await
        .unwrap();
    web.shot("refund-form").await;
    web.click_and_wait("#refund-continue").await;
    // The confirmation: nothing refunded yet.
    web.assert_text(Lang::En.t("refunds.confirm_title")).await;
    web.shot("refund-confirm").await;
    let before = stripe.received_requests().await.unwrap().len();
    assert_eq!(before, 0, "the confirmation page moves no money");
    web.click_and_wait("#refund-submit").await;
    assert_eq!(web.path().await, format!("/app/orders/{order}?mode=test"));
    web.assert_text(Lang::En.t("refunds.flash_requested")).await;
    web.assert_text("re_browser").await;
    web.assert_text(Lang::En.t("order_status.partially_refunded"))
        .await;
    web.shot("order-refunded").await;
    web.assert_no_dialog().await;

    driver.close(c).await;
    drop(driver);
    stripe.verify().await;
}
