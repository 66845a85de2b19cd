//! The operator admin API.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use paygate_testkit::{Backend, TestApp, db_tests, event, new_secret, unique};
use reqwest::StatusCode;
use serde_json::json;

async fn status_with(app: &TestApp, token: &str) -> StatusCode {
    app.client
        .get(app.url("/admin/v1/companies"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

fn forge(app: &TestApp, claims: serde_json::Value) -> String {
    let key = app
        .app
        .tenants
        .keyring()
        .current()
        .derive("paygate admin jwt v1");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&key),
    )
    .unwrap()
}

async fn tokens_that_are_missing_expired_tampered_or_unsigned_get_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (s, b) = app
        .send(app.client.get(app.url("/admin/v1/companies")))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(b["error"]["code"], "unauthorized");
    // Wrong password.
    let (s, _) = app
        .send(app.client.post(app.url("/admin/v1/auth/token")).json(
            &json!({"email": paygate_testkit::OPERATOR_EMAIL, "password": "wrong password!!"}),
        ))
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let good = app.admin_token().await;
    assert_eq!(status_with(&app, &good).await, StatusCode::OK);
    let (_, ops) = app.admin_get("/admin/v1/operators").await;
    let op_id = ops["data"][0]["id"].as_str().unwrap().to_owned();
    let now = chrono::Utc::now().timestamp();
    // Expired an hour ago, otherwise genuine.
    let expired = forge(
        &app,
        json!({"sub": op_id, "iss": "paygate", "aud": "paygate-admin", "iat": now - 7200, "exp": now - 3600}),
    );
    assert_eq!(status_with(&app, &expired).await, StatusCode::UNAUTHORIZED);
    // A sanity check that forging with the right key and claims works at all.
    let fresh = forge(
        &app,
        json!({"sub": op_id, "iss": "paygate", "aud": "paygate-admin", "iat": now, "exp": now + 60}),
    );
    assert_eq!(status_with(&app, &fresh).await, StatusCode::OK);
    // Wrong issuer / audience.
    let wrong_iss = forge(
        &app,
        json!({"sub": op_id, "iss": "evil", "aud": "paygate-admin", "iat": now, "exp": now + 60}),
    );
    assert_eq!(
        status_with(&app, &wrong_iss).await,
        StatusCode::UNAUTHORIZED
    );
    // Tampered payload (signature no longer matches).
    let parts: Vec<&str> = good.split('.').collect();
    let mut payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    payload["exp"] = json!(now + 100_000);
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(payload.to_string()),
        parts[2]
    );
    assert_eq!(status_with(&app, &tampered).await, StatusCode::UNAUTHORIZED);
    // alg: none.
    let none_header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let none_payload = URL_SAFE_NO_PAD.encode(json!({"sub": op_id, "iss": "paygate", "aud": "paygate-admin", "iat": now, "exp": now + 60}).to_string());
    assert_eq!(
        status_with(&app, &format!("{none_header}.{none_payload}.")).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_with(&app, &format!("{none_header}.{none_payload}")).await,
        StatusCode::UNAUTHORIZED
    );
}

async fn company_and_profile_lifecycle(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = unique("shop-");
    let created = app.create_company(&id).await;
    assert_eq!(created["status"], "active");
    let (s, b) = app
        .admin_post(
            "/admin/v1/companies",
            json!({"company_id": id, "name": "again"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("company_exists"))
    );
    let (s, b) = app
        .admin_post(
            "/admin/v1/companies",
            json!({"company_id": "bad id!", "name": "x"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("company_id"))
    );
    let (s, b) = app
        .admin_post("/admin/v1/companies", json!({"name": "Generated Id GmbH"}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert!(b["company_id"].as_str().unwrap().starts_with("cmp_"));
    let (s, b) = app
        .admin_post("/admin/v1/companies", json!({"nmae": "typo"}))
        .await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_json"))
    );
    // List, search, paginate.
    let (_, all) = app.admin_get("/admin/v1/companies?limit=1").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    assert_eq!(all["has_more"], true);
    let (_, next) = app
        .admin_get(&format!(
            "/admin/v1/companies?limit=1&cursor={}",
            all["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_ne!(next["data"][0]["company_id"], all["data"][0]["company_id"]);
    let (_, found) = app.admin_get("/admin/v1/companies?search=Generated").await;
    assert_eq!(found["data"].as_array().unwrap().len(), 1);
    // Patch.
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{id}"),
            json!({"name": "Renamed S.p.A.", "status": "suspended"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (b["name"].clone(), b["status"].clone()),
        (json!("Renamed S.p.A."), json!("suspended"))
    );
    let (s, _) = app
        .admin_patch(
            &format!("/admin/v1/companies/{id}"),
            json!({"status": "deleted"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    // Profiles.
    let profile = app.create_profile(&id, "test", &new_secret()).await;
    let pid = profile["id"].as_str().unwrap();
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{id}/profiles/{pid}"),
            json!({"secret_key": "sk_live_wrongmode000000000"}),
        )
        .await;
    assert_eq!(
        (s, b["error"]["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("secret_key"))
    );
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{id}/profiles/{pid}"),
            json!({"secret_key": "sk_test_51NewKeyAbcdefghijklmnWXYZ"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["secret_key"], "sk_test_…WXYZ");
    let (s, _) = app
        .admin_get(&format!("/admin/v1/companies/{id}/profiles/prf_unknown"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .admin_delete(&format!("/admin/v1/companies/{id}/profiles/{pid}"))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // Delete the company.
    let (s, _) = app.admin_delete(&format!("/admin/v1/companies/{id}")).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = app.admin_get(&format!("/admin/v1/companies/{id}")).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("company_not_found"))
    );
}

async fn event_list_filters_and_paginates_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let secret = new_secret();
    let company = app.company_with_secret(&secret).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let t = if i % 2 == 0 {
            "payment_intent.succeeded"
        } else {
            "charge.succeeded"
        };
        let ev = event(t, json!({"id": format!("obj_{i}"), "object": "x"}));
        ids.push(ev["id"].as_str().unwrap().to_owned());
        assert_eq!(app.deliver(&company, &secret, &ev).await.0, StatusCode::OK);
    }
    let base = format!("/admin/v1/companies/{company}/events");
    let (s, page1) = app.admin_get(&format!("{base}?limit=2")).await;
    assert_eq!(s, StatusCode::OK);
    let got: Vec<&str> = page1["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[4].as_str(), ids[3].as_str()]);
    assert_eq!(page1["has_more"], true);
    for key in ["id", "type", "livemode", "status", "received_at"] {
        assert!(!page1["data"][0][key].is_null(), "{key} missing");
    }
    let (_, page2) = app
        .admin_get(&format!(
            "{base}?limit=2&cursor={}",
            page1["next_cursor"].as_str().unwrap()
        ))
        .await;
    let got2: Vec<&str> = page2["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(got2, vec![ids[2].as_str(), ids[1].as_str()]);
    let (_, page3) = app
        .admin_get(&format!(
            "{base}?limit=2&cursor={}",
            page2["next_cursor"].as_str().unwrap()
        ))
        .await;
    assert_eq!(page3["data"].as_array().unwrap().len(), 1);
    assert_eq!(page3["has_more"], false);
    let (_, charges) = app
        .admin_get(&format!("{base}?type=charge.succeeded"))
        .await;
    assert_eq!(charges["data"].as_array().unwrap().len(), 2);
    let (s, b) = app.admin_get(&format!("{base}?status=bogus")).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_query"))
    );
    let (s, b) = app.admin_get(&format!("{base}?cursor=garbage!")).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_cursor"))
    );
    let (s, b) = app.admin_get(&format!("{base}/evt_nope")).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("event_not_found"))
    );
    // Another company's events are not visible under this company.
    let other = app.company_with_secret(&new_secret()).await;
    let (s, _) = app
        .admin_get(&format!("/admin/v1/companies/{other}/events/{}", ids[0]))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

async fn health_and_readiness_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (s, b) = app.send(app.client.get(app.url("/healthz"))).await;
    assert_eq!((s, b["status"].clone()), (StatusCode::OK, json!("ok")));
    let (s, b) = app.send(app.client.get(app.url("/readyz"))).await;
    assert_eq!((s, b["status"].clone()), (StatusCode::OK, json!("ready")));
    let (s, b) = app.send(app.client.get(app.url("/no/such/route"))).await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
}

db_tests!(
    tokens_that_are_missing_expired_tampered_or_unsigned_get_401,
    company_and_profile_lifecycle,
    event_list_filters_and_paginates_newest_first,
    health_and_readiness_answer,
);

async fn repeated_failed_sign_ins_are_locked_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let attempt = |password: &'static str| {
        app.send(
            app.client
                .post(app.url("/admin/v1/auth/token"))
                .json(&json!({"email": paygate_testkit::OPERATOR_EMAIL, "password": password})),
        )
    };
    for _ in 0..5 {
        assert_eq!(
            attempt("not the password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let (s, b) = attempt("not the password").await;
    assert_eq!(
        (s, b["error"]["code"].clone()),
        (StatusCode::TOO_MANY_REQUESTS, json!("too_many_attempts"))
    );
    // Even the right password waits out the lockout.
    let (s, _) = attempt(paygate_testkit::OPERATOR_PASSWORD).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
}

async fn every_tenant_change_is_in_the_audit_log_without_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = unique("aud");
    app.create_company(&id).await;
    let secret = new_secret();
    let profile = app.create_profile(&id, "test", &secret).await;
    let pid = profile["id"].as_str().unwrap();
    app.admin_patch(
        &format!("/admin/v1/companies/{id}/profiles/{pid}"),
        json!({"secret_key": "sk_test_51AnotherSecretKey0000"}),
    )
    .await;
    app.admin_post(
        &format!("/admin/v1/companies/{id}/profiles/{pid}/signing-secrets"),
        json!({"webhook_secret": new_secret()}),
    )
    .await;
    app.admin_patch(
        &format!("/admin/v1/companies/{id}"),
        json!({"status": "suspended"}),
    )
    .await;
    let (s, log) = app
        .admin_get(&format!("/admin/v1/audit-log?company={id}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<&str> = log["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec![
            "company.updated",
            "profile.signing_secret_rotated",
            "profile.updated",
            "profile.created",
            "company.created"
        ]
    );
    assert!(
        log["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["actor"] == format!("operator:{}", paygate_testkit::OPERATOR_EMAIL))
    );
    assert_eq!(log["data"][2]["detail"]["fields"], json!(["secret_key"]));
    let text = log.to_string();
    assert!(!text.contains(&secret) && !text.contains("sk_test_51AnotherSecretKey0000"));
}

/// A signing secret the company already has is refused, naming the field, and nothing changes:
/// on the same profile, on another profile, and when a profile is created with it.
async fn a_signing_secret_cannot_be_added_twice(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = unique("dup");
    app.create_company(&id).await;
    let secret = new_secret();
    let profile = app.create_profile(&id, "test", &secret).await;
    let pid = profile["id"].as_str().unwrap();
    let path = format!("/admin/v1/companies/{id}/profiles/{pid}/signing-secrets");
    let (s, b) = app
        .admin_post(&path, json!({"webhook_secret": secret}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "duplicate_signing_secret");
    assert_eq!(b["error"]["field"], "webhook_secret");
    assert!(!b.to_string().contains(&secret), "never echoed");
    let (_, p) = app
        .admin_get(&format!("/admin/v1/companies/{id}/profiles/{pid}"))
        .await;
    let secrets = p["signing_secrets"].as_array().unwrap();
    assert_eq!(secrets.len(), 1, "{p}");
    assert!(
        secrets[0]["expires_at"].is_null(),
        "the old one was not expired: {p}"
    );
    // Another profile of the company cannot take it either.
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{id}/profiles"),
            paygate_testkit::profile_json("test", &secret),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "duplicate_signing_secret");
    let (_, list) = app
        .admin_get(&format!("/admin/v1/companies/{id}/profiles"))
        .await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    // A new secret is taken.
    let (s, b) = app
        .admin_post(&path, json!({"webhook_secret": new_secret()}))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
}

db_tests!(
    repeated_failed_sign_ins_are_locked_out,
    every_tenant_change_is_in_the_audit_log_without_secrets,
    a_signing_secret_cannot_be_added_twice
);
