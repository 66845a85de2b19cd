//! The back office's Refund action over real HTTP: the order page's link (admins only), the
//! form prefilled with what is left, every error at once, the confirmation page that moves no
//! money, the POST that refunds once and redirects to the order (Post/Redirect/Get), a double
//! submit that makes no second refund, the order showing the refund; a viewer can neither see
//! nor use it; the automatic-refund switch on the Stripe settings page; the fraud warning on
//! the order page. Fake Stripe: wiremock on loopback.

use paygate_testkit::backoffice::Browser;
use paygate_testkit::objects::{early_fraud_warning, event_at};
use paygate_testkit::{Backend, Options, TestApp, db_tests, new_secret, now_secs, unique};
use reqwest::StatusCode;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

async fn refund_requests(stripe: &MockServer) -> usize {
    stripe
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == "/v1/refunds")
        .count()
}

async fn an_admin_refunds_through_form_and_confirmation_and_a_viewer_cannot(backend: Backend) {
    let stripe = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(|req: &Request| {
            let body = String::from_utf8_lossy(&req.body).to_string();
            let amount = body
                .split('&')
                .filter_map(|kv| kv.split_once('='))
                .find(|(k, _)| *k == "amount")
                .and_then(|(_, v)| v.parse::<i64>().ok())
                .unwrap_or(0);
            ResponseTemplate::new(200).set_body_json(json!({
                "id": "re_backoffice", "object": "refund", "status": "succeeded", "amount": amount,
                "currency": "eur", "created": now_secs(), "charge": "ch_bo", "payment_intent": "pi_bo",
                "reason": "requested_by_customer", "failure_reason": null, "metadata": {},
            }))
        })
        .mount(&stripe)
        .await;
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
    let order = app.paid_order(&company, "pi_bo", "ch_bo").await;
    let order_page = format!("/app/orders/{order}?mode=test");

    // The viewer sees the order, not the action, and cannot reach or use it.
    let p = viewer.get(&order_page).await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(!p.contains("id=\"refund-action\""));
    let p = viewer
        .get(&format!("/app/orders/{order}/refund?mode=test"))
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = viewer
        .get(&format!(
            "/app/orders/{order}/refund/confirm?mode=test&amount=10&reason=duplicate"
        ))
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    viewer.get(&order_page).await;
    let p = viewer
        .post_form(
            &format!("/app/orders/{order}/refund"),
            &[
                ("mode", "test"),
                ("amount", "1000"),
                ("reason", "duplicate"),
                ("token", "t1"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);

    // The admin: the link, the form prefilled with everything left.
    let p = admin.get(&order_page).await;
    assert_eq!(p.status, StatusCode::OK);
    let link = p
        .links()
        .into_iter()
        .find(|l| l.contains("/refund"))
        .expect("the Refund action");
    let form = admin.get(&link).await;
    assert_eq!(form.status, StatusCode::OK);
    let f = form
        .forms()
        .into_iter()
        .find(|f| f.action.ends_with("/refund/confirm"))
        .expect("the refund form");
    assert_eq!(f.method, "get");
    assert!(
        f.fields.contains(&("amount".into(), "25.00".into())),
        "{f:?}"
    );
    assert!(form.contains("for=\"amount\"") && form.contains("for=\"reason\""));

    // Every error at once, nothing asked of Stripe.
    let bad = admin
        .get(&format!(
            "/app/orders/{order}/refund/confirm?mode=test&amount=99.999&reason=whim"
        ))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.field_error("amount").is_some());
    assert!(bad.field_error("reason").is_some());
    let too_much = admin
        .get(&format!(
            "/app/orders/{order}/refund/confirm?mode=test&amount=30&reason=duplicate"
        ))
        .await;
    assert_eq!(too_much.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(too_much.field_error("amount").unwrap().contains("25"));

    // The confirmation page moves no money.
    let confirm = admin
        .get(&format!(
            "/app/orders/{order}/refund/confirm?mode=test&amount=10.50&reason=requested_by_customer"
        ))
        .await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.text().contains("€10.50") || confirm.text().contains("10.50"));
    assert_eq!(refund_requests(&stripe).await, 0);
    let c = confirm
        .forms()
        .into_iter()
        .find(|f| f.method == "post" && f.action.ends_with("/refund"))
        .expect("the confirmation form");
    assert!(
        c.fields.contains(&("amount".into(), "1050".into())),
        "{c:?}"
    );
    let fields: Vec<(&str, &str)> = c.fields_without_csrf();

    // The POST refunds and redirects to the order; a double submit makes no second refund.
    let done = admin.post_form(&c.action, &fields).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), Some(order_page.as_str()));
    let again = admin.post_form(&c.action, &fields).await;
    assert_eq!(again.status, StatusCode::SEE_OTHER);
    assert_eq!(refund_requests(&stripe).await, 1, "one Stripe request");
    let p = admin.get(&order_page).await;
    assert!(p.text().contains("The refund was requested from Stripe."));
    assert!(p.contains("re_backoffice"));
    assert!(p.text().contains("Partially refunded"), "{}", p.body);
    assert!(p.contains("id=\"order-amount-refunded\""));

    // In Italian and German too.
    admin.set_accept_language("it");
    let form_it = admin.get(&link).await;
    assert!(form_it.text().contains("Importo da rimborsare"));
    admin.set_accept_language("de");
    let form_de = admin.get(&link).await;
    assert!(form_de.text().contains("Zu erstattender Betrag"));
    admin.set_accept_language("en");

    // The switch: off by default, turned on by the admin (PRG), not by the viewer.
    let s = admin.get("/app/stripe").await;
    assert!(s.text().contains("Off: fraud warnings are shown"));
    let v = viewer.get("/app/stripe").await;
    assert!(!v.contains("action=\"/app/stripe/fraud-refunds\""));
    let p = viewer
        .post_form("/app/stripe/fraud-refunds", &[("auto_refund", "on")])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    admin.get("/app/stripe").await;
    let p = admin
        .post_form("/app/stripe/fraud-refunds", &[("auto_refund", "on")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let (_, c) = app
        .admin_get(&format!("/admin/v1/companies/{company}"))
        .await;
    assert_eq!(c["auto_refund_fraud_warnings"], json!(true));
    let s = admin.get("/app/stripe").await;
    assert!(
        s.text()
            .contains("On: a payment with an actionable fraud warning")
    );

    // A fraud warning shows on the order page.
    let ev = event_at(
        "radar.early_fraud_warning.created",
        early_fraud_warning(
            "issfr_bo",
            "ch_bo",
            Some("pi_bo"),
            "made_with_stolen_card",
            false,
        ),
        now_secs(),
    );
    let (s, b) = app.deliver(&company, &secret, &ev).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    app.drain().await;
    let p = admin.get(&order_page).await;
    assert!(
        p.text()
            .contains("Fraud warning: Made with a stolen card, actionable: no"),
        "{}",
        p.body
    );
    // Not actionable: no automatic refund although the switch is on.
    assert_eq!(refund_requests(&stripe).await, 1);
}

db_tests!(an_admin_refunds_through_form_and_confirmation_and_a_viewer_cannot);
