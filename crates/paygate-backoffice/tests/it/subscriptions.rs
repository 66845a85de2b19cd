//! Issue 19: the back office's Subscriptions, Invoices and Customers pages (in the menu, with
//! their filters by status and customer e-mail, in en/it/de), a subscription's page with its
//! invoices, a customer's page, and the dunning settings (Post/Redirect/Get, all errors at once,
//! admins only). Data made through the real intake and workers; one mode per page.

use paygate_backoffice::i18n::Lang;
use paygate_testkit::backoffice::Browser;
use paygate_testkit::billing_objects::{Shape, customer, invoice, subscription};
use paygate_testkit::objects::event_at;
use paygate_testkit::{Backend, TestApp, db_tests, new_secret, now_secs, unique};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn billing_pages_list_filter_and_speak_three_languages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    app.create_company(&company).await;
    let (test, live) = (new_secret(), new_secret());
    app.create_profile(&company, "test", &test).await;
    app.create_profile(&company, "live", &live).await;
    let t = now_secs() - 100;
    let send = |ev: Value, live_mode: bool| {
        let app = &app;
        let company = company.clone();
        let secret = if live_mode {
            live.clone()
        } else {
            test.clone()
        };
        async move {
            let mut ev = ev;
            ev["livemode"] = json!(live_mode);
            ev["data"]["object"]["livemode"] = json!(live_mode);
            let (s, b) = app.deliver(&company, &secret, &ev).await;
            assert_eq!(s, StatusCode::OK, "{b}");
        }
    };
    send(
        event_at(
            "customer.created",
            customer("cus_anna", "anna@example.com", &["it"]),
            t,
        ),
        false,
    )
    .await;
    send(
        event_at(
            "customer.created",
            customer("cus_bob", "bob@example.com", &[]),
            t,
        ),
        false,
    )
    .await;
    send(
        event_at(
            "customer.subscription.created",
            subscription("sub_anna", "cus_anna", "active", 2, t, Shape::Basil),
            t,
        ),
        false,
    )
    .await;
    send(
        event_at(
            "customer.subscription.updated",
            subscription("sub_bob", "cus_bob", "past_due", 1, t, Shape::Old),
            t,
        ),
        false,
    )
    .await;
    send(
        event_at(
            "invoice.payment_failed",
            invoice("in_bob", "cus_bob", "sub_bob", "open", 2, Shape::Old),
            t,
        ),
        false,
    )
    .await;
    send(
        event_at(
            "invoice.paid",
            invoice("in_anna", "cus_anna", "sub_anna", "paid", 1, Shape::Basil),
            t,
        ),
        false,
    )
    .await;
    // A live subscription never shows on the test pages.
    send(
        event_at(
            "customer.subscription.created",
            subscription("sub_live_only", "cus_live", "active", 1, t, Shape::Basil),
            t,
        ),
        true,
    )
    .await;
    app.drain().await;

    let (email, pw) = app.company_user(&company, "admin").await;
    let b = Browser::new(&app);
    b.sign_in(&email, &pw).await;
    for (code, lang) in [("en", Lang::En), ("it", Lang::It), ("de", Lang::De)] {
        b.set_accept_language(code);
        let p = b.get("/app/subscriptions?mode=test").await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        let text = p.text();
        for key in [
            "nav.subscriptions",
            "nav.invoices",
            "nav.customers",
            "billing.customer_email",
        ] {
            assert!(text.contains(lang.t(key)), "{code}: {key} missing");
        }
        assert!(
            p.links().iter().any(|l| l.starts_with("/app/invoices")),
            "{code}: menu"
        );
        assert!(
            text.contains("sub_anna") && text.contains("sub_bob"),
            "{code}"
        );
        assert!(
            !text.contains("sub_live_only"),
            "{code}: a live row on a test page"
        );
        assert!(
            text.contains(lang.t("subscription_status.past_due")),
            "{code}"
        );
        assert!(
            text.contains("anna@example.com"),
            "{code}: the customer's e-mail"
        );
        // Filters: status, e-mail.
        let p = b.get("/app/subscriptions?mode=test&status=past_due").await;
        assert!(
            p.text().contains("sub_bob") && !p.text().contains("sub_anna"),
            "{code}"
        );
        let p = b
            .get("/app/subscriptions?mode=test&email=anna%40example.com")
            .await;
        assert!(
            p.text().contains("sub_anna") && !p.text().contains("sub_bob"),
            "{code}"
        );
        let p = b.get("/app/subscriptions?mode=test&status=bogus").await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(
            p.field_error("status").as_deref(),
            Some(lang.t("billing.status_invalid"))
        );

        let p = b.get("/app/invoices?mode=test&status=open").await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        let text = p.text();
        assert!(
            text.contains("in_bob") && !text.contains("in_anna"),
            "{code}"
        );
        assert!(text.contains(lang.t("invoice_status.open")), "{code}");
        assert!(
            p.body
                .contains("https://invoice.stripe.com/i/acct_1/in_bob"),
            "{code}"
        );
        let p = b
            .get("/app/invoices?mode=test&email=anna%40example.com")
            .await;
        assert!(
            p.text().contains("in_anna") && !p.text().contains("in_bob"),
            "{code}"
        );

        let p = b
            .get("/app/customers?mode=test&email=bob%40example.com")
            .await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        assert!(
            p.text().contains("cus_bob") && !p.text().contains("cus_anna"),
            "{code}"
        );

        let p = b.get("/app/subscriptions/sub_bob?mode=test").await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        let text = p.text();
        assert!(
            text.contains("in_bob"),
            "{code}: the subscription's invoices"
        );
        assert!(text.contains(lang.t("billing.trial_end")), "{code}");
        let p = b.get("/app/customers/cus_anna?mode=test").await;
        assert_eq!(p.status, StatusCode::OK, "{}", p.body);
        assert!(
            p.text().contains("sub_anna") && p.text().contains("in_anna"),
            "{code}"
        );
    }
    b.set_accept_language("en");
    // The other mode and unknown ids are not found.
    assert_eq!(
        b.get("/app/subscriptions/sub_anna?mode=live").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get("/app/subscriptions/sub_live_only?mode=test")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get("/app/customers/cus_nobody?mode=test").await.status,
        StatusCode::NOT_FOUND
    );
    let p = b.get("/app/subscriptions?mode=live").await;
    assert!(p.text().contains("sub_live_only") && !p.text().contains("sub_anna"));

    // Another company's user sees none of it.
    let other = unique("co");
    app.create_company(&other).await;
    let (oe, opw) = app.company_user(&other, "admin").await;
    let stranger = Browser::new(&app);
    stranger.sign_in(&oe, &opw).await;
    assert_eq!(
        stranger
            .get("/app/subscriptions/sub_anna?mode=test")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert!(
        !stranger
            .get("/app/subscriptions?mode=test")
            .await
            .text()
            .contains("sub_anna")
    );
}

async fn dunning_settings_are_saved_with_post_redirect_get(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    app.create_company(&company).await;
    let (email, pw) = app.company_user(&company, "admin").await;
    let b = Browser::new(&app);
    b.sign_in(&email, &pw).await;
    let p = b.get("/app/billing-settings").await;
    assert_eq!(p.status, StatusCode::OK, "{}", p.body);
    assert!(p.text().contains(Lang::En.t("billing.dunning_off")));
    // On without any attempt: refused, nothing saved.
    let p = b
        .post_form("/app/billing-settings", &[("dunning_emails", "on")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    assert_eq!(
        p.field_error("attempt").as_deref(),
        Some(Lang::En.t("billing.attempts_required"))
    );
    let p = b
        .post_form(
            "/app/billing-settings",
            &[("dunning_emails", "on"), ("attempt", "99")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", p.body);
    let (_, s) = app
        .admin_get(&format!("/admin/v1/companies/{company}/billing-settings"))
        .await;
    assert_eq!(s["dunning_emails"], false, "{s}");
    // Saved: a redirect, then the page says so.
    b.get("/app/billing-settings").await;
    let p = b
        .post_form(
            "/app/billing-settings",
            &[("dunning_emails", "on"), ("attempt", "1"), ("attempt", "3")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    let p = b.get(p.location().unwrap()).await;
    assert!(
        p.text()
            .contains(Lang::En.t("billing.flash_settings_saved")),
        "{}",
        p.body
    );
    assert!(p.text().contains(Lang::En.t("billing.dunning_on")));
    let (_, s) = app
        .admin_get(&format!("/admin/v1/companies/{company}/billing-settings"))
        .await;
    assert_eq!(
        s,
        json!({"dunning_emails": true, "dunning_attempts": [1, 3]})
    );
    // A viewer sees the settings but cannot change them.
    let (ve, vpw) = app.company_user(&company, "viewer").await;
    let v = Browser::new(&app);
    v.sign_in(&ve, &vpw).await;
    let p = v.get("/app/billing-settings").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(
        p.forms()
            .iter()
            .all(|f| f.action != "/app/billing-settings")
    );
    let p = v
        .post_form("/app/billing-settings", &[("attempt", "2")])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
}

db_tests!(
    billing_pages_list_filter_and_speak_three_languages,
    dunning_settings_are_saved_with_post_redirect_get,
);
