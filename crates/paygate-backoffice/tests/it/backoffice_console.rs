//! The operator console over real HTTP: companies, their users, operators, the system page,
//! escaping, and who may use it.

use paygate_db::entities::inbox_event;
use paygate_testkit::backoffice::{Browser, USER_PASSWORD};
use paygate_testkit::{Backend, TestApp, db_tests, event, new_secret, unique};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

async fn operator_creates_searches_suspends_reactivates_and_deletes_companies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let op = app.operator_browser().await;
    let list = op.get("/console/companies").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.contains("aria-current=\"page\""));
    // Validation next to the field, nothing created.
    let p = op
        .post_form(
            "/console/companies",
            &[("company_id", "bad id!"), ("name", "Acme")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("company_id").as_deref(),
        Some("Use 1 to 64 characters: letters, digits, '_' and '-'.")
    );
    assert!(p.contains("value=\"Acme\""));
    let p = op
        .post_form("/console/companies", &[("company_id", ""), ("name", "")])
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("name").is_some());
    // Created, then found by search.
    let id = unique("acme");
    let p = op
        .post_form(
            "/console/companies",
            &[("company_id", &id), ("name", "Acme Widgets")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(
        p.location(),
        Some(format!("/console/companies/{id}").as_str())
    );
    let page = op.get(&format!("/console/companies/{id}")).await;
    assert!(page.contains("The company was created."));
    assert!(page.contains(&format!("/callbacks/v1.0/stripe/{id}")));
    let p = op
        .post_form(
            "/console/companies",
            &[("company_id", &id), ("name", "Acme again")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("company_id").as_deref(),
        Some("A company with this ID already exists.")
    );
    let other = unique("zeta");
    app.create_company(&other).await;
    let found = op.get("/console/companies?search=Widgets").await;
    assert!(found.contains(&id));
    assert!(!found.contains(&other));

    // Suspended: the intake refuses the company's events at once (cache invalidated).
    let secret = new_secret();
    app.create_profile(&id, "test", &secret).await;
    op.get(&format!("/console/companies/{id}")).await;
    let p = op
        .post_form(
            &format!("/console/companies/{id}/suspend"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let page = op.get(&format!("/console/companies/{id}")).await;
    assert!(page.contains("The company is suspended."));
    assert!(page.contains("Suspended"));
    let (s, _) = app
        .deliver(
            &id,
            &secret,
            &event("charge.succeeded", json!({"id": "ch_1"})),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    op.post_form(
        &format!("/console/companies/{id}/reactivate"),
        &[("confirm", "yes")],
    )
    .await;
    let (s, body) = app
        .deliver(
            &id,
            &secret,
            &event("charge.succeeded", json!({"id": "ch_1"})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    // The audit log names the operator.
    let (_, audit) = app
        .admin_get(&format!("/admin/v1/audit-log?company={id}"))
        .await;
    assert!(
        audit["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "company.updated"
                && e["actor"] == format!("operator:{}", paygate_testkit::OPERATOR_EMAIL))
    );

    // Delete: a confirmation step that wants the id typed.
    let confirm = op.get(&format!("/console/companies/{id}/delete")).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(confirm.contains("cannot be undone"));
    let p = op
        .post_form(
            &format!("/console/companies/{id}/delete"),
            &[("confirm", "something else")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("confirm").as_deref(),
        Some("Type the company ID exactly to confirm.")
    );
    let (s, _) = app.admin_get(&format!("/admin/v1/companies/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    let p = op
        .post_form(
            &format!("/console/companies/{id}/delete"),
            &[("confirm", &id)],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), Some("/console/companies"));
    let (s, _) = app.admin_get(&format!("/admin/v1/companies/{id}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        op.get("/console/companies")
            .await
            .contains("The company was deleted.")
    );
    assert_eq!(
        op.get(&format!("/console/companies/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn operator_adds_invites_and_removes_company_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    app.create_company(&company).await;
    let op = app.operator_browser().await;
    let path = format!("/console/companies/{company}");
    op.get(&path).await;
    // With a password: the user can sign in at once.
    let email = format!("{}@example.test", unique("owner"));
    let p = op
        .post_form(
            &format!("{path}/users"),
            &[
                ("email", &email),
                ("role", "admin"),
                ("password", USER_PASSWORD),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    Browser::new(&app).sign_in(&email, USER_PASSWORD).await;
    // Without: a one-time invitation link, shown once.
    let invited = format!("{}@example.test", unique("guest"));
    let p = op
        .post_form(
            &format!("{path}/users"),
            &[("email", &invited), ("role", "viewer"), ("password", "")],
        )
        .await;
    // Post/Redirect/Get: the link is shown by the GET after the redirect.
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let p = op.get(p.location().unwrap()).await;
    assert_eq!(p.status, StatusCode::OK);
    let link = p
        .body
        .split("id=\"invitation-url\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    assert!(!op.get(&path).await.contains(&link), "shown only once");
    let guest = Browser::new(&app);
    let p = guest
        .post_form(
            &link,
            &[
                ("password", "guest's own password"),
                ("password_confirm", "guest's own password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    // Errors next to their field.
    for (fields, field, msg) in [
        (
            vec![("email", "nope"), ("role", "admin"), ("password", "")],
            "email",
            "Enter an e-mail address like name@example.com.",
        ),
        (
            vec![
                ("email", email.as_str()),
                ("role", "admin"),
                ("password", ""),
            ],
            "email",
            "This company already has a user with this e-mail.",
        ),
        (
            vec![
                ("email", "x@example.test"),
                ("role", "admin"),
                ("password", "short"),
            ],
            "password",
            "The password must be at least 12 characters long.",
        ),
    ] {
        let p = op.post_form(&format!("{path}/users"), &fields).await;
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.field_error(field).as_deref(), Some(msg));
    }
    // Remove: the guest's session ends.
    let (_, users) = app
        .admin_get(&format!("/admin/v1/companies/{company}/users"))
        .await;
    let guest_id = users["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == invited)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    op.get(&path).await;
    let p = op
        .post_form(
            &format!("{path}/users/{guest_id}/remove"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(!op.get(&path).await.contains(&invited));
    assert_eq!(guest.get("/app").await.status, StatusCode::SEE_OTHER);
    // A user id of another company is not found through this one.
    let other = unique("co");
    app.create_company(&other).await;
    let p = op
        .post_form(
            &format!("/console/companies/{other}/users/{guest_id}/remove"),
            &[],
        )
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
}

async fn operator_adds_operators(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let op = app.operator_browser().await;
    let page = op.get("/console/operators").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.contains(paygate_testkit::OPERATOR_EMAIL));
    let p = op
        .post_form(
            "/console/operators",
            &[("email", "second@paygate.test"), ("password", "short")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("password").is_some());
    assert!(p.contains("value=\"second@paygate.test\""));
    let p = op
        .post_form(
            "/console/operators",
            &[
                ("email", paygate_testkit::OPERATOR_EMAIL),
                ("password", "long enough password"),
            ],
        )
        .await;
    assert_eq!(
        p.field_error("email").as_deref(),
        Some("An operator with this e-mail already exists.")
    );
    let p = op
        .post_form(
            "/console/operators",
            &[
                ("email", "second@paygate.test"),
                ("password", "long enough password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(
        op.get("/console/operators")
            .await
            .contains("second@paygate.test")
    );
    let second = Browser::new(&app);
    let p = second
        .sign_in("second@paygate.test", "long enough password")
        .await;
    assert_eq!(p.location(), Some("/console"));
}

async fn system_page_shows_backlog_failures_and_rejections_across_companies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let a = app.company_with_secret(&secret).await;
    let b = app.company_with_secret(&new_secret()).await;
    let op = app.operator_browser().await;
    let page = op.get("/console/system").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.contains("id=\"pending\">0<"));
    assert!(page.contains("No failed events."));
    // Two events waiting, one of them then failed for good; a delivery to B with A's secret.
    for _ in 0..2 {
        let (s, _) = app
            .deliver(
                &a,
                &secret,
                &event("charge.succeeded", json!({"id": "ch_x"})),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    let (s, _) = app
        .deliver(
            &b,
            &secret,
            &event("charge.succeeded", json!({"id": "ch_y"})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    app.app.admin.failures.flush().await;
    let first = inbox_event::Entity::find()
        .filter(inbox_event::Column::Status.eq("pending"))
        .one(&app.app.db)
        .await
        .unwrap()
        .unwrap();
    inbox_event::Entity::update_many()
        .col_expr(
            inbox_event::Column::Status,
            sea_orm::sea_query::Expr::value("failed"),
        )
        .col_expr(
            inbox_event::Column::LastError,
            sea_orm::sea_query::Expr::value("handler exploded <b>loudly</b>"),
        )
        .filter(inbox_event::Column::Id.eq(first.id))
        .exec(&app.app.db)
        .await
        .unwrap();
    let page = op.get("/console/system").await;
    assert!(page.contains("id=\"pending\">1<"), "{}", page.body);
    assert!(page.contains("id=\"failed-count\">1<"));
    assert!(page.contains(&first.stripe_event_id));
    assert!(!page.contains("<b>loudly</b>"));
    assert!(page.text().contains("handler exploded <b>loudly</b>"));
    assert!(page.contains("id=\"rejected-count\">1<"));
    assert!(page.contains(
        "The signature matched none of the signing secrets: check that you copied the signing secret of this endpoint."
    ));
    assert!(page.contains(&format!("{b} Ltd")));
    // In German.
    op.post_form("/language", &[("lang", "de"), ("next", "/console/system")])
        .await;
    let page = op.get("/console/system").await;
    assert!(page.contains("Wartende Ereignisse"));
    assert!(page.contains("Die Signatur passte zu keinem der Signaturgeheimnisse"));
}

async fn a_company_named_like_a_script_renders_as_text(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = unique("xss");
    let name = "<script>alert(1)</script>";
    let (s, body) = app
        .admin_post(
            "/admin/v1/companies",
            json!({"company_id": id, "name": name}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let op = app.operator_browser().await;
    for path in [
        "/console/companies".to_owned(),
        format!("/console/companies?search={id}"),
        format!("/console/companies/{id}"),
        format!("/console/companies/{id}/delete"),
    ] {
        let p = op.get(&path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}");
        assert!(!p.contains(name), "{path} renders the script");
        assert!(p.text().contains(name), "{path}: {}", p.body);
    }
    // The same name typed into the create form comes back escaped with its error.
    let p = op
        .post_form(
            "/console/companies",
            &[
                ("company_id", "\"><script>alert(2)</script>"),
                ("name", name),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!p.contains("<script>alert(2)"));
    assert!(!p.contains(name));
    // And on the merchant's own dashboard.
    let (email, password) = app.company_user(&id, "viewer").await;
    let user = Browser::new(&app);
    user.sign_in(&email, &password).await;
    let p = user.get("/app").await;
    assert!(!p.contains(name));
    assert!(p.text().contains(name));
    // A search term is escaped too.
    let p = op
        .get("/console/companies?search=%22%3E%3Cscript%3Ex")
        .await;
    assert!(!p.contains("\"><script>x"));
}

async fn only_operators_use_the_console_and_its_forms_need_the_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, _) = app.company_with_users().await;
    for path in [
        "/console".to_owned(),
        "/console/companies".to_owned(),
        format!("/console/companies/{company}"),
        "/console/operators".to_owned(),
        "/console/system".to_owned(),
    ] {
        let p = admin.get(&path).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}");
    }
    let p = admin
        .post_form(&format!("/console/companies/{company}/suspend"), &[])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let anon = Browser::new(&app);
    let p = anon.get("/console/system").await;
    assert_eq!(p.location(), Some("/signin?next=%2Fconsole%2Fsystem"));
    // An operator's form without the token changes nothing.
    let op = app.operator_browser().await;
    let p = op
        .post_form_raw(&format!("/console/companies/{company}/suspend"), &[])
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let p = op
        .post_form_raw(
            &format!("/console/companies/{company}/delete"),
            &[("confirm", &company)],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    let (_, body) = app
        .admin_get(&format!("/admin/v1/companies/{company}"))
        .await;
    assert_eq!(body["status"], "active");
    // Unknown companies are a page, not a crash.
    assert_eq!(
        op.get("/console/companies/no_such_company").await.status,
        StatusCode::NOT_FOUND
    );
    // The console speaks Italian when asked.
    let it = Browser::new(&app);
    it.set_accept_language("it");
    it.sign_in(
        paygate_testkit::OPERATOR_EMAIL,
        paygate_testkit::OPERATOR_PASSWORD,
    )
    .await;
    let p = it.get("/console/companies").await;
    assert!(p.contains("<html lang=\"it\">"));
    assert!(p.contains("Aziende"));
    assert!(p.contains("Crea azienda"));
}

db_tests!(
    operator_creates_searches_suspends_reactivates_and_deletes_companies,
    operator_adds_invites_and_removes_company_users,
    operator_adds_operators,
    system_page_shows_backlog_failures_and_rejections_across_companies,
    a_company_named_like_a_script_renders_as_text,
    only_operators_use_the_console_and_its_forms_need_the_token,
);
