//! Issue 17 in the back office: *Connect automatically* from a key alone (PRG, its refusals on
//! its fields, en/it/de), the connection banner and the *Check the connection now* button, and
//! the go-live refusal naming what is missing in the merchant's language. Against a fake Stripe
//! account (wiremock on loopback), on both databases.

use paygate_backoffice::i18n::Lang;
use paygate_testkit::stripe_account::FakeStripeAccount;
use paygate_testkit::{Backend, Options, TestApp, db_tests};
use reqwest::StatusCode;

const RK_TEST: &str = "rk_test_51BackOfficeAutoConnect0000";
const RK_LIVE: &str = "rk_live_51BackOfficeAutoConnect0000";

async fn merchant_connects_automatically_and_sees_the_connection(backend: Backend) {
    let fake = FakeStripeAccount::start("acct_1BackOffice0000", false, false).await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(fake.uri());
    opts.adjust = |s| {
        s.stripe_check_secs = 0;
        s.reconcile_interval_secs = 0;
    };
    let app = TestApp::start(opts).await;
    let (company, admin, viewer) = app.company_with_users().await;

    // The automatic path comes first, with the key's permissions; in every language.
    let page = admin.get("/app/stripe").await;
    assert_eq!(page.status, StatusCode::OK);
    let (auto, manual) = (
        page.body.find("id=\"connect-automatically\"").unwrap(),
        page.body.find("id=\"add-profile\"").unwrap(),
    );
    assert!(auto < manual, "the automatic path is offered first");
    assert!(page.contains("Webhook Endpoints: write"));
    for (lang, l) in [("it", Lang::It), ("de", Lang::De)] {
        admin.set_accept_language(lang);
        let p = admin.get("/app/stripe").await;
        assert!(p.contains(l.t("stripe_settings.auto_title")), "{lang}");
    }
    admin.set_accept_language("en");
    // Viewers see no form.
    assert!(
        !viewer
            .get("/app/stripe")
            .await
            .contains("id=\"connect-automatically\"")
    );

    // A key of another account than the one typed: refused on its field, the key not echoed.
    admin.get("/app/stripe").await;
    let p = admin
        .post_form(
            "/app/stripe/connect",
            &[
                ("auto_secret_key", RK_TEST),
                ("auto_account_id", "acct_1NotThisOne000"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert_eq!(
        p.field_error("auto_account_id").as_deref(),
        Some(Lang::En.t("field_errors.account_mismatch"))
    );
    assert!(!p.body.contains(RK_TEST));
    assert!(fake.endpoints().is_empty());

    // The key alone: connected (Post/Redirect/Get), the endpoint registered once.
    let p = admin
        .post_form("/app/stripe/connect", &[("auto_secret_key", RK_TEST)])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let to = p.location().unwrap().to_owned();
    assert!(to.starts_with("/app/stripe/profiles/prf_"), "{to}");
    let page = admin.get(&to).await;
    assert!(page.contains(Lang::En.t("stripe_settings.flash_connected")));
    assert!(!page.body.contains(RK_TEST));
    let endpoints = fake.endpoints();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(
        endpoints[0].url,
        format!("{}/callbacks/v1.0/stripe/{company}", app.base_url)
    );
    assert!(!page.body.contains(&endpoints[0].secret));

    // Stripe disables the endpoint; the button checks now: repaired, and the banner says so.
    fake.disable(&endpoints[0].id);
    admin.get("/app/stripe").await;
    let p = admin.post_form("/app/stripe/check", &[]).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(fake.endpoints()[0].status, "enabled");
    let page = admin.get("/app/stripe").await;
    assert!(
        page.contains("data-state=\"disabled_by_stripe\""),
        "{}",
        page.body
    );
    assert!(page.contains(Lang::En.t("connection_state.disabled_by_stripe")));
    // The overview, the first page after signing in, shows it too.
    let overview = admin.get("/app").await;
    assert!(
        overview.contains("id=\"stripe-connection-banner\""),
        "{}",
        overview.body
    );
    assert_eq!(
        app.admin_get(&format!("/admin/v1/companies/{company}"))
            .await
            .1["stripe_connection"],
        "disabled_by_stripe"
    );
    // The operator sees it on the company's console page.
    let op = app.operator_browser().await;
    let console = op.get(&format!("/console/companies/{company}")).await;
    assert!(
        console.contains("data-state=\"disabled_by_stripe\""),
        "{}",
        console.body
    );
    // Viewers may not press it.
    viewer.get("/app/stripe").await;
    assert_eq!(
        viewer.post_form("/app/stripe/check", &[]).await.status,
        StatusCode::FORBIDDEN
    );

    // Going live while Stripe has not enabled charges and payouts: refused, saying what is
    // missing in the merchant's language (German here).
    admin
        .post_form("/app/stripe/connect", &[("auto_secret_key", RK_LIVE)])
        .await;
    admin.set_accept_language("de");
    admin.get("/app/stripe").await;
    let p = admin
        .post_form("/app/stripe/environment", &[("environment", "live")])
        .await;
    assert_eq!(p.status, StatusCode::CONFLICT, "{}", p.body);
    let err = p.field_error("environment").unwrap();
    assert!(
        err.contains(Lang::De.t("readiness.charges_enabled"))
            && err.contains(Lang::De.t("readiness.payouts_enabled")),
        "{err}"
    );
    assert_eq!(
        app.admin_get(&format!("/admin/v1/companies/{company}"))
            .await
            .1["environment"],
        "test"
    );
    // Stripe enables the account; the next check reads it: allowed.
    fake.set_enabled(true, true);
    admin.post_form("/app/stripe/check", &[]).await;
    admin.get("/app/stripe").await;
    let p = admin
        .post_form("/app/stripe/environment", &[("environment", "live")])
        .await;
    // Going live asks for the confirmation first (issue 20), then does it.
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    let p = admin
        .post_form(
            "/app/stripe/environment",
            &[("environment", "live"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
}

db_tests!(merchant_connects_automatically_and_sees_the_connection);
