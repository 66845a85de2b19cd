//! The dispute workbench in a real browser (Debian's `chromium` through `chromedriver`, the
//! test kit's `webdriver`), against the real app on port 0 and a fake Stripe (wiremock).
//!
//! One walk: a company admin opens the Disputes list (the time left shown), the dispute, types a
//! customer name into the pre-filled form, saves the draft, uploads a PDF for the receipt (the
//! file's id lands in the field), presses **Submit…**, confirms, and finds the evidence
//! read-only; Stripe saw `submit=false` first and `submit=true` once. Screenshots go to
//! `target/browser-screenshots/dispute-workbench/`. Skips like `browser.rs` when the browser is
//! missing (unless `PAYGATE_TEST_REQUIRE_BROWSER=1`).

use paygate_backoffice::i18n::Lang;
use paygate_testkit::objects::dispute;
use paygate_testkit::webdriver::{Driver, Web, browser_available, screenshot_dir};
use paygate_testkit::{Backend, Options, TestApp, event, new_secret, now_secs, unique};
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evidence_is_submitted_in_a_real_browser() {
    if !browser_available("the dispute workbench browser test") {
        return;
    }
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/disputes/[^/]+$"))
        .respond_with(|r: &Request| {
            let submitted = String::from_utf8_lossy(&r.body).contains("submit=true");
            ResponseTemplate::new(200).set_body_json(json!({
                "id": "dp_browser", "object": "dispute",
                "status": if submitted { "under_review" } else { "needs_response" },
                "evidence_details": {"due_by": 1_900_000_000, "has_evidence": true, "past_due": false,
                                     "submission_count": i64::from(submitted)}
            }))
        })
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "file_FromBrowser1", "object": "file", "purpose": "dispute_evidence"
        })))
        .mount(&stripe)
        .await;
    let mut opts = Options::new(Backend::Sqlite);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = unique("co");
    app.create_company(&company).await;
    let secret = new_secret();
    app.create_profile(&company, "test", &secret).await;
    let mut d = dispute(
        "dp_browser",
        "needs_response",
        "ch_b",
        "pi_b",
        4200,
        false,
        false,
    );
    d["evidence_details"]["due_by"] = json!(now_secs() + 3 * 86_400 + 7200 + 1800);
    let (s, _) = app
        .deliver(&company, &secret, &event("charge.dispute.created", d))
        .await;
    assert_eq!(s, reqwest::StatusCode::OK);
    app.drain().await;
    let (email, password) = app.company_user(&company, "admin").await;

    let shots = screenshot_dir(env!("CARGO_TARGET_TMPDIR"), Some("dispute-workbench"));
    let pdf = shots.join("receipt.pdf");
    std::fs::write(&pdf, b"%PDF-1.4\n% Paygate browser test\n").unwrap();
    let driver = Driver::start(&shots);
    let c = driver.session().await;
    let mut web = Web::new(&driver, c.clone(), &app.base_url, shots);

    web.goto("/signin").await;
    web.fill("/signin", "email", &email).await;
    web.fill("/signin", "password", &password).await;
    web.submit("/signin").await;

    // The list: the dispute with its time left.
    web.goto("/app/disputes").await;
    web.assert_text(&Lang::En.format("dispute_workbench.left_days", &["3", "2"]))
        .await;
    web.shot("disputes-list").await;
    web.click_and_wait(r#"a[href^="/app/disputes/dp_browser"]"#)
        .await;
    assert!(web.path().await.starts_with("/app/disputes/dp_browser?"));
    web.assert_text(Lang::En.t("dispute_workbench.evidence"))
        .await;
    web.shot("dispute-form").await;

    // Save a draft.
    let action = "/app/disputes/dp_browser/evidence";
    web.fill(action, "customer_name", "Grace Hopper").await;
    web.fill(action, "uncategorized_text", "Delivered and signed for.")
        .await;
    web.click_and_wait("#save-draft").await;
    web.assert_text(Lang::En.t("dispute_workbench.flash_draft_saved"))
        .await;
    web.shot("draft-saved").await;

    // Upload the receipt.
    web.select("/app/disputes/dp_browser/files", "field", "receipt")
        .await;
    web.find("#upload-file")
        .await
        .send_keys(pdf.to_str().unwrap())
        .await
        .unwrap();
    web.click_and_wait("#upload-button").await;
    web.assert_text(Lang::En.t("dispute_workbench.flash_uploaded"))
        .await;
    let receipt = web
        .js("return document.getElementById('ev-receipt').value")
        .await;
    assert_eq!(receipt, json!("file_FromBrowser1"));
    web.shot("file-uploaded").await;

    // Submit, confirm, read-only.
    web.click_and_wait("#submit-evidence").await;
    assert!(
        web.path()
            .await
            .starts_with("/app/disputes/dp_browser/submit?")
    );
    web.assert_text("Grace Hopper").await;
    web.shot("confirm-submit").await;
    web.click_and_wait("#confirm-button").await;
    web.assert_text(Lang::En.t("dispute_workbench.flash_submitted"))
        .await;
    assert!(web.find_all("#evidence-form").await.is_empty());
    assert_eq!(web.find_all("#evidence-readonly").await.len(), 1);
    web.assert_text("Grace Hopper").await;
    web.shot("submitted-read-only").await;

    let submits: Vec<String> = stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/disputes/dp_browser")
        .map(|r| {
            let body = String::from_utf8_lossy(&r.body).into_owned();
            if body.contains("submit=true") {
                "true".to_owned()
            } else {
                "false".to_owned()
            }
        })
        .collect();
    assert_eq!(submits.first().map(String::as_str), Some("false"));
    assert_eq!(submits.last().map(String::as_str), Some("true"));
    assert_eq!(submits.iter().filter(|s| *s == "true").count(), 1);
    let uploads = stripe
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.url.path() == "/v1/files")
        .count();
    assert_eq!(uploads, 1);

    driver.close(c).await;
    drop(driver);
}
