//! The dispute workbench in the back office (issue 18 part 3): the Disputes list sorted by
//! deadline with the time left; a dispute's evidence form pre-filled from the order, its
//! validation (every error at once), Save draft, a file upload to Stripe's files (multipart,
//! `purpose=dispute_evidence`), Submit behind a confirmation, then read-only; Accept behind a
//! confirmation; viewers and other companies refused. Through the real app, a fake Stripe
//! (wiremock on loopback), both databases.

use paygate_backoffice::i18n::Lang;
use paygate_testkit::backoffice::{Browser, Page};
use paygate_testkit::checkout_objects::FakeCheckout;
use paygate_testkit::objects::{charge, checkout_session, dispute, event_at, payment_intent};
use paygate_testkit::{Backend, Options, TestApp, db_tests, event, new_secret, unique};
use reqwest::StatusCode;
use serde_json::{Value, json};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

struct Fixture {
    app: TestApp,
    stripe: MockServer,
    company: String,
    secret: String,
    admin: Browser,
    viewer: Browser,
}

async fn start(backend: Backend) -> Fixture {
    let stripe = MockServer::start().await;
    let mut fake = FakeCheckout::new("paid", 1, 10);
    fake.unit_amount = 1999;
    fake.mount(&stripe).await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/disputes/[^/]+$"))
        .respond_with(|r: &Request| {
            let submitted = String::from_utf8_lossy(&r.body).contains("submit=true");
            let id = r.url.path().rsplit('/').next().unwrap_or_default().to_owned();
            ResponseTemplate::new(200).set_body_json(json!({
                "id": id, "object": "dispute",
                "status": if submitted { "under_review" } else { "needs_response" },
                "evidence_details": {"due_by": 1_900_000_000, "has_evidence": true, "past_due": false,
                                     "submission_count": i64::from(submitted)}
            }))
        })
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/v1/disputes/[^/]+/close$"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "dp_x", "object": "dispute", "status": "lost",
            "evidence_details": {"due_by": 1_900_000_000, "has_evidence": false, "past_due": false, "submission_count": 0}
        })))
        .mount(&stripe)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/files"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "file_Uploaded1", "object": "file", "purpose": "dispute_evidence",
            "filename": "receipt.pdf", "size": 9
        })))
        .mount(&stripe)
        .await;
    let mut opts = Options::new(backend);
    opts.stripe_api_base = Some(stripe.uri());
    let app = TestApp::start(opts).await;
    let company = unique("co");
    app.create_company(&company).await;
    let secret = new_secret();
    app.create_profile(&company, "test", &secret).await;
    let (email, pw) = app.company_user(&company, "admin").await;
    let admin = Browser::new(&app);
    admin.sign_in(&email, &pw).await;
    let (email, pw) = app.company_user(&company, "viewer").await;
    let viewer = Browser::new(&app);
    viewer.sign_in(&email, &pw).await;
    Fixture {
        app,
        stripe,
        company,
        secret,
        admin,
        viewer,
    }
}

impl Fixture {
    async fn deliver(&self, ev: &Value) {
        let (s, b) = self.app.deliver(&self.company, &self.secret, ev).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }

    /// A paid Checkout order (one line item of 19.99 EUR, shopper@example.com) and a dispute
    /// on its payment, due at `due_by`.
    async fn disputed_order(&self, dispute_id: &str, due_by: i64) {
        let cs = format!("cs_test_{dispute_id}");
        let pi = format!("pi_for_{cs}");
        let ch = format!("ch_{dispute_id}");
        self.deliver(&event(
            "checkout.session.completed",
            checkout_session(&cs, "paid", 1999),
        ))
        .await;
        self.deliver(&event(
            "payment_intent.succeeded",
            payment_intent(&pi, "succeeded", 1999),
        ))
        .await;
        self.deliver(&event(
            "charge.succeeded",
            charge(&ch, "succeeded", 1999, Some(&pi), None),
        ))
        .await;
        let mut d = dispute(dispute_id, "needs_response", &ch, &pi, 1999, true, false);
        d["evidence_details"]["due_by"] = json!(due_by);
        self.deliver(&event("charge.dispute.created", d)).await;
        self.app.drain().await;
    }

    async fn stripe_calls(&self, p: &str) -> Vec<Request> {
        self.stripe
            .received_requests()
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.url.path() == p)
            .collect()
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
}

async fn ok(b: &Browser, p: &str) -> Page {
    let page = b.get(p).await;
    assert_eq!(page.status, StatusCode::OK, "GET {p}: {}", page.body);
    page
}

fn form_of(r: &Request) -> Vec<(String, String)> {
    let body = String::from_utf8_lossy(&r.body);
    reqwest::Url::parse(&format!("http://form.invalid/?{body}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn sent(r: &Request, key: &str) -> Option<String> {
    form_of(r)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// Posts a file as the upload form does (multipart/form-data) with the browser's cookies.
async fn upload(
    b: &Browser,
    app: &TestApp,
    p: &str,
    field: &str,
    name: &str,
    bytes: &[u8],
) -> Page {
    let csrf = b.csrf().unwrap();
    let boundary = "TestBoundary7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in [("csrf", csrf.as_str()), ("mode", "test"), ("field", field)] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    b.send(
        client
            .post(app.url(p))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body),
    )
    .await
}

async fn evidence_is_drafted_uploaded_submitted_then_read_only(backend: Backend) {
    let f = start(backend).await;
    f.disputed_order("dp_wb", 1_900_000_000).await;
    let page = "/app/disputes/dp_wb";
    let action = "/app/disputes/dp_wb/evidence";

    // The form, pre-filled from the order.
    let p = ok(&f.admin, &format!("{page}?mode=test")).await;
    assert!(p.contains("id=\"evidence-form\""), "{}", p.body);
    assert!(p.contains("id=\"prefilled\""));
    assert!(p.contains("value=\"shopper@example.com\""), "{}", p.body);
    assert!(p.text().contains("1 × Item 1 (19.99 EUR)"), "{}", p.body);
    assert!(p.contains("id=\"submission-count\">0<"));

    // A viewer sees the evidence but no form, and is refused when posting anyway.
    let v = ok(&f.viewer, page).await;
    assert!(!v.contains("id=\"evidence-form\"") && !v.contains("id=\"upload-form\""));
    let r = f
        .viewer
        .post_form(
            action,
            &[
                ("mode", "test"),
                ("action", "draft"),
                ("customer_name", "V"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Another company's admin: not found, on every path.
    let stranger = f.stranger().await;
    assert_eq!(stranger.get(page).await.status, StatusCode::NOT_FOUND);
    for p in [
        action,
        "/app/disputes/dp_wb/submit",
        "/app/disputes/dp_wb/accept",
    ] {
        let r = stranger.post_form(p, &[("action", "draft")]).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{p}");
    }
    // Without the form's token: refused.
    let r = f.admin.post_form_raw(action, &[("action", "draft")]).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // Every error at once, next to its field; nothing sent to Stripe.
    let long = "z".repeat(20_001);
    let r = f
        .admin
        .post_form(
            action,
            &[
                ("mode", "test"),
                ("action", "draft"),
                ("customer_name", "Mario Rossi"),
                ("receipt", "not-a-file"),
                ("uncategorized_text", &long),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.body);
    assert!(r.contains("id=\"ev-receipt-error\""), "{}", r.body);
    assert!(r.contains("id=\"evidence-error\""), "{}", r.body);
    // Every error at once in the summary at the top, linking to its field (issue 20).
    let summary = &r.body[r.body.find("id=\"error-summary\"").expect("a summary")..];
    let summary = &summary[..summary.find("</div>").unwrap()];
    assert!(summary.contains("href=\"#ev-receipt\""), "{summary}");
    assert!(summary.contains("href=\"#evidence\""), "{summary}");
    assert!(r.contains("value=\"Mario Rossi\""), "what was typed stays");
    assert!(f.stripe_calls("/v1/disputes/dp_wb").await.is_empty());

    // Save draft: Stripe gets submit=false; the form shows the draft after the redirect.
    let r = f
        .admin
        .post_form(
            action,
            &[
                ("mode", "test"),
                ("action", "draft"),
                ("customer_name", "Mario Rossi"),
                ("customer_email_address", "shopper@example.com"),
                ("product_description", "1 × Item 0"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some("/app/disputes/dp_wb?mode=test"));
    let p = ok(&f.admin, r.location().unwrap()).await;
    assert!(
        p.text()
            .contains(Lang::En.t("dispute_workbench.flash_draft_saved"))
    );
    assert!(!p.contains("id=\"prefilled\""));
    assert!(p.contains("value=\"Mario Rossi\""));
    assert!(p.contains("id=\"has-evidence\">Yes<"), "{}", p.body);

    // A file for the receipt: multipart to Stripe's files with purpose=dispute_evidence; its
    // id lands in the receipt field.
    let r = upload(
        &f.admin,
        &f.app,
        "/app/disputes/dp_wb/files",
        "receipt",
        "receipt.pdf",
        b"%PDF-1.4\n",
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let files = f.stripe_calls("/v1/files").await;
    assert_eq!(files.len(), 1);
    let ct = files[0]
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(ct.starts_with("multipart/form-data; boundary="), "{ct}");
    let body = String::from_utf8_lossy(&files[0].body);
    assert!(
        body.contains("name=\"purpose\"\r\n\r\ndispute_evidence\r\n"),
        "{body}"
    );
    assert!(body.contains("filename=\"receipt.pdf\"") && body.contains("%PDF-1.4"));
    assert!(files[0].headers.get("idempotency-key").is_some());
    let p = ok(&f.admin, r.location().unwrap()).await;
    assert!(p.contains("value=\"file_Uploaded1\""), "{}", p.body);
    assert!(
        p.text()
            .contains(Lang::En.t("dispute_workbench.flash_uploaded"))
    );
    // A file Stripe does not take is refused here, next to the upload.
    let bad = upload(
        &f.admin,
        &f.app,
        "/app/disputes/dp_wb/files",
        "receipt",
        "x.pdf",
        b"",
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.contains("id=\"upload-file-error\""));
    assert!(bad.contains("href=\"#upload-file\""), "{}", bad.body);
    assert_eq!(f.stripe_calls("/v1/files").await.len(), 1);

    // Submit: first a draft and the confirmation page, then the submission.
    ok(&f.admin, page).await;
    let r = f
        .admin
        .post_form(
            action,
            &[
                ("mode", "test"),
                ("action", "submit"),
                ("customer_name", "Mario Rossi"),
                ("customer_email_address", "shopper@example.com"),
                ("product_description", "1 × Item 0"),
                ("receipt", "file_Uploaded1"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(r.location(), Some("/app/disputes/dp_wb/submit?mode=test"));
    let c = ok(&f.admin, r.location().unwrap()).await;
    assert!(c.contains("id=\"confirm-form\""));
    assert!(c.text().contains("file_Uploaded1") && c.text().contains("Mario Rossi"));
    assert!(
        f.stripe_calls("/v1/disputes/dp_wb")
            .await
            .iter()
            .all(|r| sent(r, "submit").as_deref() == Some("false")),
        "nothing submitted before the confirmation"
    );
    let r = f
        .admin
        .post_form("/app/disputes/dp_wb/submit", &[("mode", "test")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let p = ok(&f.admin, r.location().unwrap()).await;
    assert!(
        p.text()
            .contains(Lang::En.t("dispute_workbench.flash_submitted"))
    );
    // Read-only now: the values, no form, no buttons.
    assert!(p.contains("id=\"evidence-readonly\""), "{}", p.body);
    assert!(!p.contains("id=\"evidence-form\"") && !p.contains("id=\"upload-form\""));
    assert!(!p.contains("id=\"accept-link\""));
    assert!(p.contains("id=\"evidence-state\""));
    assert!(p.text().contains("Mario Rossi"));
    assert!(p.contains("id=\"submission-count\">1<"), "{}", p.body);
    // A second submission (a replayed form) and further drafts are refused; Stripe saw one
    // submit=true.
    let again = f
        .admin
        .post_form("/app/disputes/dp_wb/submit", &[("mode", "test")])
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    let again = f
        .admin
        .post_form(
            action,
            &[
                ("mode", "test"),
                ("action", "draft"),
                ("customer_name", "X"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    let calls = f.stripe_calls("/v1/disputes/dp_wb").await;
    let submits: Vec<String> = calls.iter().filter_map(|r| sent(r, "submit")).collect();
    assert_eq!(submits.last().map(String::as_str), Some("true"));
    assert_eq!(
        submits.iter().filter(|s| *s == "true").count(),
        1,
        "{submits:?}"
    );
    assert!(submits[..submits.len() - 1].iter().all(|s| s == "false"));
    let last = calls.last().unwrap();
    assert_eq!(
        sent(last, "evidence[receipt]").as_deref(),
        Some("file_Uploaded1")
    );
    assert_eq!(
        sent(last, "evidence[customer_name]").as_deref(),
        Some("Mario Rossi")
    );
    assert!(f.stripe_calls("/v1/disputes/dp_wb/close").await.is_empty());
}

async fn accepting_takes_a_confirmation_and_reaches_stripe(backend: Backend) {
    let f = start(backend).await;
    f.disputed_order("dp_acc", 1_900_000_000).await;
    let p = ok(&f.admin, "/app/disputes/dp_acc").await;
    assert!(
        p.links()
            .contains(&"/app/disputes/dp_acc/accept?mode=test".to_owned())
    );
    // The confirmation changes nothing.
    let c = ok(&f.admin, "/app/disputes/dp_acc/accept?mode=test").await;
    assert!(
        c.contains("id=\"confirm-form\"") && c.contains("action=\"/app/disputes/dp_acc/accept\"")
    );
    assert!(c.text().contains("€19.99"));
    assert!(f.stripe_calls("/v1/disputes/dp_acc/close").await.is_empty());
    // A viewer cannot accept.
    assert_eq!(
        f.viewer.get("/app/disputes/dp_acc/accept").await.status,
        StatusCode::FORBIDDEN
    );
    let r = f
        .viewer
        .post_form("/app/disputes/dp_acc/accept", &[("mode", "test")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(f.stripe_calls("/v1/disputes/dp_acc/close").await.is_empty());
    // The admin confirms.
    let r = f
        .admin
        .post_form("/app/disputes/dp_acc/accept", &[("mode", "test")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let p = ok(&f.admin, r.location().unwrap()).await;
    assert!(
        p.text()
            .contains(Lang::En.t("dispute_workbench.flash_accepted"))
    );
    assert!(p.text().contains(Lang::En.t("dispute_workbench.accepted")));
    assert!(!p.contains("id=\"evidence-form\""));
    let closes = f.stripe_calls("/v1/disputes/dp_acc/close").await;
    assert_eq!(closes.len(), 1);
    assert!(closes[0].headers.get("idempotency-key").is_some());
    // Once only.
    let r = f
        .admin
        .post_form("/app/disputes/dp_acc/accept", &[("mode", "test")])
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(f.stripe_calls("/v1/disputes/dp_acc/close").await.len(), 1);
}

async fn the_list_is_sorted_by_deadline_and_shows_the_time_left(backend: Backend) {
    let f = start(backend).await;
    let now = paygate_testkit::now_secs();
    // Delivered latest deadline first.
    for (id, due) in [
        ("dp_late", now + 10 * 86_400 + 3 * 3600 + 1800),
        ("dp_soon", now + 5 * 3600 + 1800),
        ("dp_mid", now + 2 * 86_400 + 1800),
    ] {
        let mut d = dispute(
            id,
            "needs_response",
            &format!("ch_{id}"),
            &format!("pi_{id}"),
            500,
            false,
            false,
        );
        d["evidence_details"]["due_by"] = json!(due);
        f.deliver(&event("charge.dispute.created", d)).await;
    }
    f.app.drain().await;
    // Stripe's evidence details come from the events, in any order, and only grow.
    let mut later = dispute(
        "dp_mid",
        "needs_response",
        "ch_dp_mid",
        "pi_dp_mid",
        500,
        false,
        false,
    );
    later["evidence_details"] = json!({"due_by": now + 2 * 86_400 + 1800, "has_evidence": true, "past_due": true, "submission_count": 2});
    let mut earlier = later.clone();
    earlier["evidence_details"] = json!({"due_by": now + 2 * 86_400 + 1800, "has_evidence": false, "past_due": false, "submission_count": 0});
    f.deliver(&event_at("charge.dispute.updated", later, now + 20))
        .await;
    f.deliver(&event_at("charge.dispute.updated", earlier, now + 10))
        .await;
    f.app.drain().await;
    let d = ok(&f.viewer, "/app/disputes/dp_mid").await;
    assert!(d.contains("id=\"submission-count\">2<"), "{}", d.body);
    assert!(d.contains("id=\"has-evidence\">Yes<"));
    assert!(d.contains("id=\"past-due\" class=\"status-failed\">Yes<"));
    let p = ok(&f.viewer, "/app/disputes").await;
    let rows: Vec<&str> = p
        .body
        .split("<tr class=\"dispute-row")
        .skip(1)
        .map(|r| r.split("</tr>").next().unwrap())
        .collect();
    let order: Vec<&str> = rows
        .iter()
        .map(|r| {
            ["dp_soon", "dp_mid", "dp_late"]
                .into_iter()
                .find(|id| r.contains(id))
                .unwrap()
        })
        .collect();
    assert_eq!(order, ["dp_soon", "dp_mid", "dp_late"]);
    assert!(
        rows[0].contains(&Lang::En.format("dispute_workbench.left_hours", &["5"])),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains(&Lang::En.format("dispute_workbench.left_days", &["2", "0"])),
        "{}",
        rows[1]
    );
    assert!(
        rows[2].contains(&Lang::En.format("dispute_workbench.left_days", &["10", "3"])),
        "{}",
        rows[2]
    );
    assert!(p.text().contains(Lang::En.t("dispute_workbench.time_left")));
    // In Italian and German.
    for (lang, code) in [(Lang::It, "it"), (Lang::De, "de")] {
        f.admin
            .post_form("/language", &[("lang", code), ("next", "/app/disputes")])
            .await;
        let p = ok(&f.admin, "/app/disputes").await;
        assert!(
            p.text().contains(lang.t("dispute_workbench.time_left")),
            "{code}"
        );
        assert!(
            p.text()
                .contains(&lang.format("dispute_workbench.left_hours", &["5"])),
            "{code}"
        );
        let d = ok(&f.admin, "/app/disputes/dp_soon").await;
        assert!(
            d.text().contains(&crate_label(lang, "customer_name")),
            "{code}"
        );
    }
}

fn crate_label(lang: Lang, field: &str) -> String {
    lang.t(&format!("evidence_field.{field}")).to_owned()
}

db_tests!(
    evidence_is_drafted_uploaded_submitted_then_read_only,
    accepting_takes_a_confirmation_and_reaches_stripe,
    the_list_is_sorted_by_deadline_and_shows_the_time_left,
);
