//! The merchant's actions on subscriptions in the back office (issue 19): *Cancel now*, *Cancel
//! at period end*, *Resume* and the *Customer portal link*, each behind a confirmation page
//! (Post/Redirect/Get), for admins only, in the page's mode; the fake Stripe (wiremock on
//! loopback) records what reaches it. The local rows are seeded by delivering
//! `customer.created` / `customer.subscription.created` events through the real intake.

use paygate_db::entities::{audit_log, subscription};
use paygate_db::{Mode, Scope};
use paygate_testkit::backoffice::{Browser, Page};
use paygate_testkit::billing_objects::{self, Shape};
use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret, now_secs, unique};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

struct Fixture {
    app: TestApp,
    stripe: MockServer,
    company: String,
    secret: String,
    company_pk: i64,
    admin: Browser,
    admin_email: String,
    viewer: Browser,
}

async fn start(backend: Backend) -> Fixture {
    let stripe = MockServer::start().await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = unique("co");
    app.create_company(&company).await;
    let secret = new_secret();
    app.create_profile(&company, "test", &secret).await;
    let company_pk = app.app.tenants.company(&company).await.unwrap().id;
    let (admin_email, pw) = app.company_user(&company, "admin").await;
    let admin = Browser::new(&app);
    admin.sign_in(&admin_email, &pw).await;
    let (viewer_email, vpw) = app.company_user(&company, "viewer").await;
    let viewer = Browser::new(&app);
    viewer.sign_in(&viewer_email, &vpw).await;
    Fixture {
        app,
        stripe,
        company,
        secret,
        company_pk,
        admin,
        admin_email,
        viewer,
    }
}

/// Delivers `ev` (in the mode of `livemode`) to `company` through the real intake and runs the
/// workers.
async fn deliver(app: &TestApp, company: &str, secret: &str, mut ev: Value, livemode: bool) {
    ev["livemode"] = json!(livemode);
    ev["data"]["object"]["livemode"] = json!(livemode);
    let (s, b) = app.deliver(company, secret, &ev).await;
    assert!(s.is_success(), "{s}: {b}");
    app.drain().await;
}

/// Seeds a subscription through `customer.subscription.created`.
async fn seed_subscription(
    app: &TestApp,
    company: &str,
    secret: &str,
    livemode: bool,
    id: &str,
    status: &str,
) {
    let obj = billing_objects::subscription(id, "cus_1", status, 1, 1_699_400_000, Shape::Old);
    deliver(
        app,
        company,
        secret,
        event("customer.subscription.created", obj),
        livemode,
    )
    .await;
}

/// Seeds a customer through `customer.created`.
async fn seed_customer(app: &TestApp, company: &str, secret: &str, livemode: bool, id: &str) {
    let obj = billing_objects::customer(id, "ada@example.com", &["it"]);
    deliver(
        app,
        company,
        secret,
        event("customer.created", obj),
        livemode,
    )
    .await;
}

async fn status_of(f: &Fixture, id: &str) -> (String, bool) {
    let r = Scope::new(f.company_pk, Mode::Test)
        .subscriptions()
        .filter(subscription::Column::StripeSubscriptionId.eq(id))
        .one(&f.app.app.db)
        .await
        .unwrap()
        .unwrap();
    (r.status, r.cancel_at_period_end)
}

fn stripe_subscription(id: &str, status: &str, cancel_at_period_end: bool) -> Value {
    json!({
        "id": id, "object": "subscription", "status": status, "customer": "cus_1",
        "cancel_at_period_end": cancel_at_period_end, "livemode": false, "created": 1_699_000_000,
        "current_period_start": 1_699_400_000, "current_period_end": 1_702_000_000,
        "canceled_at": if status == "canceled" { json!(now_secs()) } else { Value::Null },
        "ended_at": if status == "canceled" { json!(now_secs()) } else { Value::Null },
    })
}

async fn answer(stripe: &MockServer, m: &str, p: &str, body: Value) {
    Mock::given(method(m))
        .and(path(p))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .up_to_n_times(1)
        .mount(stripe)
        .await;
}

async fn requests(stripe: &MockServer) -> Vec<Request> {
    stripe.received_requests().await.unwrap()
}

/// The one form of a confirmation page, posted as a browser would (its fields as they are).
async fn submit_only_form(b: &Browser, page: &Page) -> Page {
    let forms: Vec<_> = page
        .forms()
        .into_iter()
        .filter(|f| f.method == "post" && f.action.starts_with("/app/"))
        .collect();
    assert_eq!(forms.len(), 1, "{}", page.body);
    let fields: Vec<(&str, &str)> = forms[0]
        .fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    b.post_form_raw(&forms[0].action, &fields).await
}

async fn actions_need_confirmation_and_an_admin(backend: Backend) {
    let f = start(backend).await;
    seed_subscription(&f.app, &f.company, &f.secret, false, "sub_1", "active").await;
    let confirm = "/app/subscriptions/sub_1/cancel-at-period-end?mode=test";

    // The subscription's page: links to the confirmation pages, no one-click form; none for viewers.
    let detail = f.admin.get("/app/subscriptions/sub_1?mode=test").await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let links = detail.links();
    for l in [confirm, "/app/subscriptions/sub_1/cancel-now?mode=test"] {
        assert!(links.iter().any(|x| x == l), "{l} in {links:?}");
    }
    assert!(
        !links.iter().any(|x| x.contains("/resume")),
        "nothing to resume yet: {links:?}"
    );
    assert!(
        !detail
            .forms()
            .iter()
            .any(|f| f.action.starts_with("/app/subscriptions/")),
        "every action goes through its confirmation page"
    );
    let seen = f.viewer.get("/app/subscriptions/sub_1?mode=test").await;
    assert_eq!(seen.status, StatusCode::OK);
    assert!(!seen.contains("id=\"subscription-actions\""));
    assert!(
        !seen
            .links()
            .iter()
            .any(|x| x.starts_with("/app/subscriptions/sub_1/")),
        "{}",
        seen.body
    );

    // The confirmation page says what will happen and posts to the action, confirmed.
    let page = f.admin.get(confirm).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.contains("id=\"action-warning\""));
    assert!(
        page.text()
            .contains("stays active until the end of the current period")
    );
    let form = page
        .forms()
        .into_iter()
        .find(|f| f.method == "post" && f.action.starts_with("/app/"))
        .unwrap();
    assert_eq!(form.action, "/app/subscriptions/sub_1/cancel-at-period-end");
    assert_eq!(
        form.fields_without_csrf(),
        [("mode", "test"), ("confirm", "yes")]
    );

    // A post that does not come confirmed only shows the confirmation again.
    let p = f
        .admin
        .post_form("/app/subscriptions/sub_1/cancel-now", &[("mode", "test")])
        .await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.contains("id=\"action-warning\""));
    assert!(
        requests(&f.stripe).await.is_empty(),
        "nothing reached Stripe"
    );

    // A viewer sees no confirmation and can change nothing.
    for action in ["cancel-now", "cancel-at-period-end", "resume"] {
        let p = f
            .viewer
            .get(&format!("/app/subscriptions/sub_1/{action}?mode=test"))
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{action}");
        let p = f
            .viewer
            .post_form(
                &format!("/app/subscriptions/sub_1/{action}"),
                &[("mode", "test"), ("confirm", "yes")],
            )
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(
        f.viewer
            .get("/app/customers/cus_1/portal?mode=test")
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert!(
        requests(&f.stripe).await.is_empty(),
        "nothing reached Stripe"
    );
    assert_eq!(status_of(&f, "sub_1").await, ("active".to_owned(), false));

    // Confirmed: Stripe is asked, the row follows, Post/Redirect/Get with a flash.
    answer(
        &f.stripe,
        "POST",
        "/v1/subscriptions/sub_1",
        stripe_subscription("sub_1", "active", true),
    )
    .await;
    let done = submit_only_form(&f.admin, &page).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), Some("/app/subscriptions/sub_1?mode=test"));
    let reqs = requests(&f.stripe).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].method.as_str(), "POST");
    assert_eq!(
        std::str::from_utf8(&reqs[0].body).unwrap(),
        "cancel_at_period_end=true"
    );
    assert!(reqs[0].headers.get("idempotency-key").is_some());
    assert_eq!(status_of(&f, "sub_1").await, ("active".to_owned(), true));
    let audited = audit_log::Entity::find()
        .filter(audit_log::Column::Action.eq("subscription.cancel_scheduled"))
        .filter(audit_log::Column::Target.eq("sub_1"))
        .one(&f.app.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(audited.actor, format!("user:{}", f.admin_email));
    let after = f.admin.get(done.location().unwrap()).await;
    assert!(
        after
            .text()
            .contains("will end at the end of the current period"),
        "{}",
        after.body
    );
    assert!(
        after
            .links()
            .iter()
            .any(|x| x == "/app/subscriptions/sub_1/resume?mode=test")
    );

    // Resume (a cancellation at period end), then cancel now.
    answer(
        &f.stripe,
        "POST",
        "/v1/subscriptions/sub_1",
        stripe_subscription("sub_1", "active", false),
    )
    .await;
    let page = f
        .admin
        .get("/app/subscriptions/sub_1/resume?mode=test")
        .await;
    let done = submit_only_form(&f.admin, &page).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(status_of(&f, "sub_1").await, ("active".to_owned(), false));
    answer(
        &f.stripe,
        "DELETE",
        "/v1/subscriptions/sub_1",
        stripe_subscription("sub_1", "canceled", false),
    )
    .await;
    let page = f
        .admin
        .get("/app/subscriptions/sub_1/cancel-now?mode=test")
        .await;
    assert!(page.text().contains("This cannot be undone."));
    let done = submit_only_form(&f.admin, &page).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(status_of(&f, "sub_1").await, ("canceled".to_owned(), false));
    let reqs = requests(&f.stripe).await;
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].method.as_str(), "POST");
    assert_eq!(
        std::str::from_utf8(&reqs[1].body).unwrap(),
        "cancel_at_period_end=false"
    );
    assert_eq!(reqs[2].method.as_str(), "DELETE");

    // An ended subscription: the confirmation again, with the reason, and nothing sent.
    let page = f
        .admin
        .get("/app/subscriptions/sub_1/resume?mode=test")
        .await;
    let refused = submit_only_form(&f.admin, &page).await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert!(
        refused.field_error("form").unwrap().contains("has ended"),
        "{}",
        refused.body
    );
    assert_eq!(requests(&f.stripe).await.len(), 3);

    // In Italian and German too.
    seed_subscription(&f.app, &f.company, &f.secret, false, "sub_2", "active").await;
    for (lang, text) in [
        ("it", "L'operazione non si può annullare."),
        ("de", "Das lässt sich nicht rückgängig machen."),
    ] {
        f.admin
            .post_form("/language", &[("lang", lang), ("next", "/app")])
            .await;
        let p = f
            .admin
            .get("/app/subscriptions/sub_2/cancel-now?mode=test")
            .await;
        assert!(p.text().contains(text), "{lang}: {}", p.body);
    }
}

async fn the_other_mode_and_other_companies_are_not_found(backend: Backend) {
    let f = start(backend).await;
    let live_secret = new_secret();
    f.app.create_profile(&f.company, "live", &live_secret).await;
    seed_subscription(&f.app, &f.company, &live_secret, true, "sub_live", "active").await;
    seed_customer(&f.app, &f.company, &live_secret, true, "cus_live").await;
    let (other, other_admin, _) = f.app.company_with_users().await;
    let other_secret = new_secret();
    f.app.create_profile(&other, "test", &other_secret).await;
    seed_subscription(&f.app, &other, &other_secret, false, "sub_other", "active").await;
    for p in [
        "/app/subscriptions/sub_live/cancel-now?mode=test",
        "/app/subscriptions/sub_live/cancel-now",
        "/app/customers/cus_live/portal?mode=test",
        "/app/subscriptions/sub_other/cancel-now?mode=test",
        "/app/subscriptions/sub_1/delete?mode=test",
    ] {
        assert_eq!(f.admin.get(p).await.status, StatusCode::NOT_FOUND, "{p}");
    }
    let p = f
        .admin
        .post_form(
            "/app/subscriptions/sub_other/cancel-now",
            &[("mode", "test"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    let p = f
        .admin
        .post_form(
            "/app/subscriptions/sub_live/cancel-now",
            &[("mode", "test"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    // The other company's admin cannot reach this company's live subscription either.
    let p = other_admin
        .get("/app/subscriptions/sub_live/cancel-now?mode=live")
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(
        requests(&f.stripe).await.is_empty(),
        "nothing reached Stripe"
    );
}

async fn the_customer_portal_link_is_shown_once(backend: Backend) {
    let f = start(backend).await;
    seed_customer(&f.app, &f.company, &f.secret, false, "cus_1").await;
    let detail = f.admin.get("/app/customers/cus_1?mode=test").await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert!(
        detail
            .links()
            .iter()
            .any(|x| x == "/app/customers/cus_1/portal?mode=test")
    );
    let seen = f.viewer.get("/app/customers/cus_1?mode=test").await;
    assert!(
        !seen.links().iter().any(|x| x.contains("/portal")),
        "{}",
        seen.body
    );
    let page = f.admin.get("/app/customers/cus_1/portal?mode=test").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.contains("<label for=\"return_url\">"));

    let bad = f
        .admin
        .post_form(
            "/app/customers/cus_1/portal",
            &[("mode", "test"), ("return_url", "shop.example")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.field_error("return_url").is_some(), "{}", bad.body);
    assert!(bad.contains("value=\"shop.example\""), "the input is kept");
    assert!(requests(&f.stripe).await.is_empty());

    answer(&f.stripe, "POST", "/v1/billing_portal/sessions", json!({
        "id": "bps_1", "object": "billing_portal.session", "customer": "cus_1", "livemode": false,
        "return_url": "https://shop.example/account", "url": "https://billing.stripe.com/p/session/test_bo"
    }))
    .await;
    let done = f
        .admin
        .post_form(
            "/app/customers/cus_1/portal",
            &[
                ("mode", "test"),
                ("return_url", "https://shop.example/account"),
            ],
        )
        .await;
    // Post/Redirect/Get: the GET after the redirect shows the link, once.
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let to = done.location().unwrap().to_owned();
    assert_eq!(to, "/app/customers/cus_1/portal?mode=test");
    let done = f.admin.get(&to).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.contains("https://billing.stripe.com/p/session/test_bo"));
    let reload = f.admin.get(&to).await;
    assert!(!reload.contains("https://billing.stripe.com/p/session/test_bo"));
    let reqs = requests(&f.stripe).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        std::str::from_utf8(&reqs[0].body).unwrap(),
        "customer=cus_1&return_url=https%3A%2F%2Fshop.example%2Faccount"
    );
    // Viewers: no form, no link.
    let p = f
        .viewer
        .post_form(
            "/app/customers/cus_1/portal",
            &[("mode", "test"), ("return_url", "https://shop.example/")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(requests(&f.stripe).await.len(), 1);
}

db_tests!(
    actions_need_confirmation_and_an_admin,
    the_other_mode_and_other_companies_are_not_found,
    the_customer_portal_link_is_shown_once,
);
