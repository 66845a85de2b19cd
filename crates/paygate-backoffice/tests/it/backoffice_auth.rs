//! The back office's sign-in, sessions, CSRF, roles, company isolation, invitations, languages
//! and security headers, over real HTTP.

use paygate_db::entities::{company_user, user_invitation, web_session};
use paygate_testkit::backoffice::{Browser, USER_PASSWORD};
use paygate_testkit::{Backend, OPERATOR_EMAIL, OPERATOR_PASSWORD, TestApp, db_tests, unique};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'";

async fn user_count(app: &TestApp, company_id: &str) -> usize {
    let (s, body) = app
        .admin_get(&format!("/admin/v1/companies/{company_id}/users"))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["data"].as_array().unwrap().len()
}

async fn user_id(app: &TestApp, company_id: &str, email: &str) -> String {
    let (_, body) = app
        .admin_get(&format!("/admin/v1/companies/{company_id}/users"))
        .await;
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == email)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn operator_signs_in_with_a_strict_cookie_and_signs_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = Browser::new(&app);
    // Not signed in: every page sends to the sign-in form, remembering where to come back.
    let p = b.get("/console/companies").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), Some("/signin?next=%2Fconsole%2Fcompanies"));
    let p = b.get("/").await;
    assert_eq!(p.location(), Some("/signin"));

    let p = b.try_sign_in(OPERATOR_EMAIL, OPERATOR_PASSWORD).await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.location(), Some("/console"));
    let cookie = p.set_cookie("paygate_session").unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    let token = b.cookie("paygate_session").unwrap();
    // Only the hash of the token is stored.
    let stored = web_session::Entity::find().all(&app.app.db).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0].id, token);
    assert_eq!(stored[0].principal_kind, "operator");

    let p = b.get("/console/companies").await;
    assert_eq!(p.status, StatusCode::OK);
    assert!(p.contains(OPERATOR_EMAIL));
    // An operator has no merchant pages.
    assert_eq!(b.get("/app").await.location(), Some("/console"));

    let out = b.sign_out().await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), Some("/signin"));
    assert!(b.cookie("paygate_session").is_none());
    assert_eq!(
        web_session::Entity::find()
            .count(&app.app.db)
            .await
            .unwrap(),
        0
    );
    // The old cookie opens nothing any more.
    b.set_cookie("paygate_session", Some(&token));
    assert_eq!(
        b.get("/console/companies").await.status,
        StatusCode::SEE_OTHER
    );
    // The flash says so, once.
    let p = b.get("/signin").await;
    assert_eq!(p.status, StatusCode::OK);
    // The e-mail field has the focus.
    assert!(
        p.body
            .split("<input")
            .any(|i| i.contains("id=\"email\"") && i.contains("autofocus")),
        "{}",
        p.body
    );
}

async fn company_user_signs_in_to_their_dashboard(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    app.create_company(&company).await;
    let (email, password) = app.company_user(&company, "viewer").await;
    let b = Browser::new(&app);
    let p = b.sign_in(&email, &password).await;
    assert_eq!(p.location(), Some("/app"));
    let dash = b.get("/app").await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(dash.contains(&company));
    assert!(dash.contains(&format!("/callbacks/v1.0/stripe/{company}")));
    assert!(dash.contains("<html lang=\"en\">"));
    // A user has no console.
    assert_eq!(
        b.get("/console/companies").await.status,
        StatusCode::FORBIDDEN
    );
    // `next` brings the user back to the page asked for, within their area only.
    let b2 = Browser::new(&app);
    let p = b2.get("/app/users").await;
    assert_eq!(p.location(), Some("/signin?next=%2Fapp%2Fusers"));
    let form = b2.get("/signin?next=%2Fapp%2Fusers").await;
    let res = b2
        .post_form_raw(
            "/signin",
            &[
                ("csrf", &form.csrf().unwrap()),
                ("email", &email),
                ("password", &password),
                ("next", "/app/users"),
            ],
        )
        .await;
    assert_eq!(res.location(), Some("/app/users"));
    let b3 = Browser::new(&app);
    let form = b3.get("/signin").await;
    let res = b3
        .post_form_raw(
            "/signin",
            &[
                ("csrf", &form.csrf().unwrap()),
                ("email", &email),
                ("password", &password),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(res.location(), Some("/app"));
    // last_sign_in_at is recorded.
    let u = company_user::Entity::find()
        .filter(company_user::Column::Email.eq(email.as_str()))
        .one(&app.app.db)
        .await
        .unwrap()
        .unwrap();
    assert!(u.last_sign_in_at.is_some());
}

async fn wrong_password_is_refused_with_a_message_and_no_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = Browser::new(&app);
    let p = b.try_sign_in(OPERATOR_EMAIL, "not the password").await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        p.field_error("form").as_deref(),
        Some("Wrong e-mail or password.")
    );
    // What was typed stays, the password does not.
    assert!(p.contains(&format!("value=\"{OPERATOR_EMAIL}\"")));
    assert!(!p.contains("not the password"));
    assert!(b.cookie("paygate_session").is_none());
    // An unknown e-mail gets the same answer.
    let p = b
        .try_sign_in("nobody@example.test", "whatever password")
        .await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        p.field_error("form").as_deref(),
        Some("Wrong e-mail or password.")
    );
    // An invited user without a password cannot sign in.
    let company = unique("co");
    app.create_company(&company).await;
    let (email, _) = app.invite_user(&company, "admin").await;
    let p = b.try_sign_in(&email, "").await;
    assert_eq!(p.status, StatusCode::UNAUTHORIZED);
}

async fn repeated_failures_lock_the_email_out_with_a_clear_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    app.create_company(&company).await;
    let (email, password) = app.company_user(&company, "admin").await;
    let b = Browser::new(&app);
    for _ in 0..5 {
        let p = b.try_sign_in(&email, "wrong password!").await;
        assert_eq!(p.status, StatusCode::UNAUTHORIZED);
    }
    // Even the right password is refused now, and the page says why and for how long.
    let p = b.try_sign_in(&email, &password).await;
    assert_eq!(p.status, StatusCode::TOO_MANY_REQUESTS);
    let msg = p.field_error("form").unwrap();
    assert!(msg.contains("Too many failed sign-ins"), "{msg}");
    assert!(msg.contains("15 minutes"), "{msg}");
    assert!(b.cookie("paygate_session").is_none());
    // Other accounts are not affected.
    let (other, other_pw) = app.company_user(&company, "viewer").await;
    Browser::new(&app).sign_in(&other, &other_pw).await;
}

async fn forms_without_the_right_csrf_token_are_refused_and_change_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, _viewer) = app.company_with_users().await;
    let before = user_count(&app, &company).await;
    // No token.
    let p = admin
        .post_form_raw(
            "/app/users",
            &[("email", "new@example.test"), ("role", "viewer")],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(p.contains("nothing was changed"), "{}", p.body);
    assert_eq!(p.header("content-security-policy"), Some(CSP));
    // A wrong token, and the pre-session token of another visitor.
    let stranger = Browser::new(&app);
    stranger.get("/signin").await;
    for token in ["x".repeat(43), stranger.csrf().unwrap()] {
        let p = admin
            .post_form_raw(
                "/app/users",
                &[
                    ("csrf", &token),
                    ("email", "new@example.test"),
                    ("role", "viewer"),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);
    }
    assert_eq!(user_count(&app, &company).await, before);
    // Sign-out needs it too: the session survives a forged sign-out.
    let p = admin.post_form_raw("/signout", &[]).await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert_eq!(admin.get("/app").await.status, StatusCode::OK);
    // The sign-in form needs the visitor's token.
    let b = Browser::new(&app);
    let p = b
        .post_form_raw(
            "/signin",
            &[("email", OPERATOR_EMAIL), ("password", OPERATOR_PASSWORD)],
        )
        .await;
    assert_eq!(p.status, StatusCode::FORBIDDEN);
    assert!(b.cookie("paygate_session").is_none());
    // With the right token it works.
    let p = admin
        .post_form(
            "/app/users",
            &[("email", "new@example.test"), ("role", "viewer")],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(user_count(&app, &company).await, before + 1);
}

async fn a_viewer_is_refused_every_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, _admin, viewer) = app.company_with_users().await;
    let (target, _) = app.company_user(&company, "viewer").await;
    let target_id = user_id(&app, &company, &target).await;
    let before = user_count(&app, &company).await;
    let page = viewer.get("/app/users").await;
    assert_eq!(page.status, StatusCode::OK);
    // The viewer sees the users but no forms to change them.
    assert!(page.contains(&target));
    assert!(!page.contains("action=\"/app/users\""));
    for (path, fields) in [
        (
            "/app/users".to_owned(),
            vec![("email", "new@example.test"), ("role", "admin")],
        ),
        (format!("/app/users/{target_id}/remove"), vec![]),
    ] {
        let p = viewer.post_form(&path, &fields).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN, "{path}");
        assert!(p.contains("Your role is viewer"), "{path}: {}", p.body);
    }
    assert_eq!(user_count(&app, &company).await, before);
}

async fn a_user_of_one_company_never_reaches_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (a, a_admin, _) = app.company_with_users().await;
    let (b, _b_admin, _) = app.company_with_users().await;
    let (b_user, _) = app.company_user(&b, "viewer").await;
    let b_user_id = user_id(&app, &b, &b_user).await;
    let before = user_count(&app, &b).await;
    // Pages show only the user's own company.
    for path in ["/app", "/app/users"] {
        let p = a_admin.get(path).await;
        assert_eq!(p.status, StatusCode::OK, "{path}");
        assert!(!p.contains(&b), "{path} shows company {b}");
        assert!(!p.contains(&b_user), "{path} shows {b_user}");
    }
    assert!(a_admin.get("/app").await.contains(&a));
    // Another company's user id is "not found", and stays.
    let p = a_admin
        .post_form(&format!("/app/users/{b_user_id}/remove"), &[])
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert_eq!(user_count(&app, &b).await, before);
    // No merchant URL takes a company from the outside.
    for path in [
        format!("/app?company={b}"),
        format!("/app/{b}"),
        format!("/app/users?company_id={b}"),
    ] {
        let p = a_admin.get(&path).await;
        assert!(!p.contains(&b_user), "{path}");
        assert!(
            p.status == StatusCode::OK || p.status == StatusCode::NOT_FOUND,
            "{path}: {}",
            p.status
        );
    }
}

async fn invitations_work_once_and_expire(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    app.create_company(&company).await;
    let (email, url) = app.invite_user(&company, "admin").await;
    let path = url.strip_prefix(&app.base_url).unwrap().to_owned();
    assert!(path.starts_with("/invitations/"), "{url}");
    let b = Browser::new(&app);
    let form = b.get(&path).await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.contains(&email));
    // Validation next to the fields, nothing used up.
    let p = b
        .post_form(
            &path,
            &[("password", "short"), ("password_confirm", "short")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("password").unwrap().contains("12 characters"));
    let p = b
        .post_form(
            &path,
            &[
                ("password", "a perfectly long password"),
                ("password_confirm", "another long password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("password_confirm").as_deref(),
        Some("The two passwords differ.")
    );
    // Accepted: signed in straight away.
    let p = b
        .post_form(
            &path,
            &[
                ("password", "a perfectly long password"),
                ("password_confirm", "a perfectly long password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(p.location(), Some("/app"));
    let dash = b.get("/app").await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(dash.contains("Welcome!"));
    // Once only.
    let again = Browser::new(&app);
    let p = again.get(&path).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.contains("not valid"));
    let p = again
        .post_form(
            &path,
            &[
                ("password", "an attacker's password"),
                ("password_confirm", "an attacker's password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    Browser::new(&app)
        .sign_in(&email, "a perfectly long password")
        .await;
    // An expired invitation is refused.
    let (_, url2) = app.invite_user(&company, "viewer").await;
    user_invitation::Entity::update_many()
        .col_expr(
            user_invitation::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(paygate_db::now_ms() - 1),
        )
        .filter(user_invitation::Column::UsedAt.is_null())
        .exec(&app.app.db)
        .await
        .unwrap();
    let p = Browser::new(&app).get(&url2).await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    // A made-up token too.
    let p = Browser::new(&app)
        .get(&format!("/invitations/{}", "A".repeat(43)))
        .await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
}

async fn an_invitation_used_from_two_tabs_at_once_works_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    app.create_company(&company).await;
    let (email, url) = app.invite_user(&company, "viewer").await;
    let tabs: Vec<Browser> = (0..4).map(|_| Browser::new(&app)).collect();
    for t in &tabs {
        t.get(&url).await;
    }
    let results = futures_util::future::join_all(tabs.iter().enumerate().map(|(i, t)| {
        let url = url.clone();
        async move {
            let pw = format!("password number {i} of four");
            let p = t
                .post_form(&url, &[("password", &pw), ("password_confirm", &pw)])
                .await;
            (p.status, pw)
        }
    }))
    .await;
    let winners: Vec<&String> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::SEE_OTHER)
        .map(|(_, pw)| pw)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|(s, _)| *s == StatusCode::SEE_OTHER || *s == StatusCode::NOT_FOUND),
        "{results:?}"
    );
    // The password that won is the one that works.
    Browser::new(&app).sign_in(&email, winners[0]).await;
    for (s, pw) in &results {
        if *s != StatusCode::SEE_OTHER {
            let p = Browser::new(&app).try_sign_in(&email, pw).await;
            assert_eq!(p.status, StatusCode::UNAUTHORIZED);
        }
    }
}

async fn a_company_admin_invites_and_removes_users_with_errors_next_to_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, _) = app.company_with_users().await;
    let p = admin
        .post_form(
            "/app/users",
            &[("email", "not-an-email"), ("role", "viewer")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("email").as_deref(),
        Some("Enter an e-mail address like name@example.com.")
    );
    assert!(p.contains("value=\"not-an-email\""));
    let p = admin
        .post_form(
            "/app/users",
            &[("email", "ok@example.test"), ("role", "owner")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p.field_error("role").is_some());
    let p = admin
        .post_form(
            "/app/users",
            &[("email", "New.Person@Example.test"), ("role", "viewer")],
        )
        .await;
    // Post/Redirect/Get: the link is shown once, by the GET after the redirect.
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let p = admin.get(p.location().unwrap()).await;
    assert_eq!(p.status, StatusCode::OK);
    let link = p
        .body
        .split("id=\"invitation-url\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .to_owned();
    assert!(link.contains("/invitations/"), "{link}");
    // The same e-mail again.
    let p = admin
        .post_form(
            "/app/users",
            &[("email", "new.person@example.test"), ("role", "viewer")],
        )
        .await;
    assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        p.field_error("email").as_deref(),
        Some("This company already has a user with this e-mail.")
    );
    // The invitation works, then the admin removes the user: their session ends.
    let newcomer = Browser::new(&app);
    let p = newcomer
        .post_form(
            link.strip_prefix(&app.base_url).unwrap(),
            &[
                ("password", "the newcomer's password"),
                ("password_confirm", "the newcomer's password"),
            ],
        )
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
    assert_eq!(newcomer.get("/app").await.status, StatusCode::OK);
    let id = user_id(&app, &company, "new.person@example.test").await;
    admin.get("/app/users").await;
    let p = admin
        .post_form(&format!("/app/users/{id}/remove"), &[("confirm", "yes")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    let list = admin.get("/app/users").await;
    assert!(list.contains("The user was removed."));
    assert!(!list.contains("new.person@example.test"));
    assert_eq!(newcomer.get("/app").await.status, StatusCode::SEE_OTHER);
    // The audit log has both.
    let (_, audit) = app
        .admin_get(&format!("/admin/v1/audit-log?company={company}"))
        .await;
    let actions: Vec<&str> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"user.removed"), "{actions:?}");
    assert!(actions.contains(&"user.created"), "{actions:?}");
}

async fn language_follows_accept_language_then_the_remembered_switch(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = Browser::new(&app);
    b.set_accept_language("it-IT,it;q=0.9,en;q=0.5");
    let p = b.get("/signin").await;
    assert!(p.contains("<html lang=\"it\">"));
    assert!(p.contains("Accedi"));
    b.set_accept_language("de-DE,de;q=0.9");
    let p = b.get("/signin").await;
    assert!(p.contains("<html lang=\"de\">"));
    assert!(p.contains("Anmelden"));
    // The switch wins over the header, and is remembered.
    let p = b
        .post_form("/language", &[("lang", "it"), ("next", "/signin")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert_eq!(p.location(), Some("/signin"));
    let p = b.get("/signin").await;
    assert!(p.contains("<html lang=\"it\">"), "{}", p.body);
    // An unsafe `next` goes home.
    let p = b
        .post_form(
            "/language",
            &[("lang", "en"), ("next", "https://evil.example/")],
        )
        .await;
    assert_eq!(p.location(), Some("/"));
    // Signed in, the session remembers it too.
    let company = unique("co");
    app.create_company(&company).await;
    let (email, password) = app.company_user(&company, "admin").await;
    let u = Browser::new(&app);
    u.set_accept_language("de");
    u.sign_in(&email, &password).await;
    let dash = u.get("/app").await;
    assert!(dash.contains("Übersicht"));
    u.post_form("/language", &[("lang", "it"), ("next", "/app")])
        .await;
    u.set_cookie("paygate_lang", None);
    let dash = u.get("/app").await;
    assert!(dash.contains("<html lang=\"it\">"));
    assert!(dash.contains("Panoramica"));
    // Errors speak the language too.
    let p = u
        .post_form("/app/users", &[("email", "nope"), ("role", "viewer")])
        .await;
    assert_eq!(
        p.field_error("email").as_deref(),
        Some("Inserisci un indirizzo e-mail come nome@esempio.it.")
    );
}

async fn every_page_carries_the_security_headers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    app.create_company(&company).await;
    let (email, password) = app.company_user(&company, "admin").await;
    let anon = Browser::new(&app);
    let user = Browser::new(&app);
    user.sign_in(&email, &password).await;
    let op = app.operator_browser().await;
    for (b, path) in [
        (&anon, "/signin"),
        (&anon, "/app"),
        (&anon, "/invitations/nope"),
        (&user, "/app"),
        (&user, "/app/users"),
        (&user, "/app/no-such-page"),
        (&op, "/console/companies"),
    ] {
        let p = b.get(path).await;
        assert_eq!(p.header("content-security-policy"), Some(CSP), "{path}");
        assert_eq!(
            p.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert!(p.header("referrer-policy").is_some(), "{path}");
        if p.status == StatusCode::OK {
            assert!(!p.contains("<script>"), "{path}: inline script");
            assert!(!p.contains(" style="), "{path}: inline style");
            assert!(!p.contains(" onclick="), "{path}: inline handler");
        }
    }
    let p = user.get("/app/no-such-page").await;
    assert_eq!(p.status, StatusCode::NOT_FOUND);
    assert!(p.contains("This page does not exist"));
    let css = anon.get("/static/backoffice.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.header("content-type").unwrap().starts_with("text/css"));
}

async fn cookies_are_secure_behind_tls(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = client
        .get(app.url("/signin"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let pre = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("paygate_csrf="))
        .unwrap();
    assert!(pre.contains("Secure"), "{pre}");
    let pre_value = pre.split(';').next().unwrap().to_owned();
    let token = pre_value.split_once('=').unwrap().1.to_owned();
    let res = client
        .post(app.url("/signin"))
        .header("x-forwarded-proto", "https")
        .header("cookie", pre_value)
        .form(&[
            ("csrf", token.as_str()),
            ("email", OPERATOR_EMAIL),
            ("password", OPERATOR_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let session = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("paygate_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
        assert!(session.contains(attr), "{session}");
    }
}

async fn sessions_end_when_idle_or_when_the_user_goes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (company, admin, viewer) = app.company_with_users().await;
    // Idle for longer than the idle timeout.
    web_session::Entity::update_many()
        .col_expr(
            web_session::Column::LastSeenAt,
            sea_orm::sea_query::Expr::value(paygate_db::now_ms() - 3 * 3600 * 1000),
        )
        .filter(web_session::Column::PrincipalKind.eq("user"))
        .exec(&app.app.db)
        .await
        .unwrap();
    let p = admin.get("/app/users").await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    assert!(p.location().unwrap().starts_with("/signin"));
    // A form of an expired session goes to the sign-in page too, changing nothing.
    let p = viewer
        .post_form("/app/users", &[("email", "x@example.test")])
        .await;
    assert_eq!(p.status, StatusCode::SEE_OTHER);
    // Past the absolute expiry, however active.
    let (email, _) = app.company_user(&company, "viewer").await;
    let b = Browser::new(&app);
    b.sign_in(&email, USER_PASSWORD).await;
    web_session::Entity::update_many()
        .col_expr(
            web_session::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(paygate_db::now_ms() - 1),
        )
        .exec(&app.app.db)
        .await
        .unwrap();
    assert_eq!(b.get("/app").await.status, StatusCode::SEE_OTHER);
    // A user removed by an operator is signed out at once.
    let c = Browser::new(&app);
    let (e2, _) = app.company_user(&company, "admin").await;
    c.sign_in(&e2, USER_PASSWORD).await;
    let id = user_id(&app, &company, &e2).await;
    let (s, _) = app
        .admin_delete(&format!("/admin/v1/companies/{company}/users/{id}"))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(c.get("/app").await.status, StatusCode::SEE_OTHER);
}

async fn admin_api_manages_company_users(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    app.create_company(&company).await;
    let base = format!("/admin/v1/companies/{company}/users");
    let (s, body) = app
        .admin_post(
            &base,
            json!({"email": "Owner@Example.test", "role": "admin", "password": "long enough password"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["email"], "owner@example.test");
    assert_eq!(body["status"], "active");
    assert!(body.get("invitation_url").is_none());
    assert!(body.get("password_hash").is_none());
    let (s, body) = app
        .admin_post(
            &base,
            json!({"email": "guest@example.test", "role": "viewer"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(body["status"], "invited");
    let url = body["invitation_url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/invitations/", app.base_url)),
        "{url}"
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(body["invitation_expires_at"].as_str().unwrap())
            .unwrap();
    let days = (expires.timestamp() - chrono::Utc::now().timestamp()) / 86_400;
    assert!((6..=7).contains(&days), "{days}");
    // Validation errors name the field.
    for (input, field, code, status) in [
        (
            json!({"email": "nope", "role": "admin"}),
            "email",
            "invalid_email",
            422,
        ),
        (
            json!({"email": "a@example.test", "role": "root"}),
            "role",
            "invalid_role",
            422,
        ),
        (
            json!({"email": "a@example.test", "role": "admin", "password": "short"}),
            "password",
            "weak_password",
            422,
        ),
        (
            json!({"email": "owner@example.test", "role": "viewer"}),
            "email",
            "user_exists",
            409,
        ),
    ] {
        let (s, body) = app.admin_post(&base, input).await;
        assert_eq!(s.as_u16(), status, "{body}");
        assert_eq!(body["error"]["code"], code);
        assert_eq!(body["error"]["field"], field);
    }
    let (s, body) = app
        .admin_post(&base, json!({"email": "x@example.test"}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, body) = app.admin_get(&base).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    // Another company's user cannot be deleted through this company.
    let other = unique("co");
    app.create_company(&other).await;
    let id = user_id(&app, &company, "guest@example.test").await;
    let (s, body) = app
        .admin_delete(&format!("/admin/v1/companies/{other}/users/{id}"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "user_not_found");
    let (s, _) = app.admin_delete(&format!("{base}/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, body) = app.admin_get(&base).await;
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    let (s, _) = app.admin_get("/admin/v1/companies/no_such/users").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // Without a token: 401.
    let (s, _) = app.send(app.client.get(app.url(&base))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

db_tests!(
    operator_signs_in_with_a_strict_cookie_and_signs_out,
    company_user_signs_in_to_their_dashboard,
    wrong_password_is_refused_with_a_message_and_no_session,
    repeated_failures_lock_the_email_out_with_a_clear_message,
    forms_without_the_right_csrf_token_are_refused_and_change_nothing,
    a_viewer_is_refused_every_change,
    a_user_of_one_company_never_reaches_another,
    invitations_work_once_and_expire,
    an_invitation_used_from_two_tabs_at_once_works_once,
    a_company_admin_invites_and_removes_users_with_errors_next_to_the_field,
    language_follows_accept_language_then_the_remembered_switch,
    every_page_carries_the_security_headers,
    cookies_are_secure_behind_tls,
    sessions_end_when_idle_or_when_the_user_goes,
    admin_api_manages_company_users,
);
