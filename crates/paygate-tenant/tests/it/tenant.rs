//! Tenant configuration: validation, masking, encryption at rest, the master key file.

use paygate_testkit::{Backend, TestApp, db_tests, new_secret, profile_json, unique};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;

async fn live_profile_with_test_key_is_refused_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    app.create_company(&company).await;
    let mut body = profile_json("live", &new_secret());
    body["secret_key"] = json!("sk_test_51ThisIsATestKey0000000");
    let (s, b) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/profiles"),
            body.clone(),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["field"], "secret_key");
    assert!(
        b["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("secret_key:"),
        "{b}"
    );
    for (field, value) in [
        ("publishable_key", "pk_test_51Something"),
        ("webhook_secret", "sk_live_notasigningsecret"),
        ("account_id", "acc_123"),
        ("mode", "production"),
    ] {
        let mut bad = profile_json("live", &new_secret());
        bad[field] = json!(value);
        let (s, b) = app
            .admin_post(&format!("/admin/v1/companies/{company}/profiles"), bad)
            .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {b}");
        assert_eq!(b["error"]["field"], field, "{b}");
    }
    let (_, list) = app
        .admin_get(&format!("/admin/v1/companies/{company}/profiles"))
        .await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        0,
        "nothing was stored: {list}"
    );
    // Whitespace pasted along with the keys is trimmed.
    let mut padded = profile_json("live", &format!("  {}\n", new_secret()));
    padded["secret_key"] = json!(format!(" {} ", padded["secret_key"].as_str().unwrap()));
    let (s, b) = app
        .admin_post(&format!("/admin/v1/companies/{company}/profiles"), padded)
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert!(b["secret_key"].as_str().unwrap().starts_with("sk_live_…"));
}

async fn secrets_are_masked_everywhere_and_encrypted_at_rest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    app.create_company(&company).await;
    let secret = new_secret();
    let body = profile_json("test", &secret);
    let secret_key = body["secret_key"].as_str().unwrap().to_owned();
    let (s, created) = app
        .admin_post(&format!("/admin/v1/companies/{company}/profiles"), body)
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("prf_"));
    assert_eq!(
        created["secret_key"],
        format!("sk_test_…{}", &secret_key[secret_key.len() - 4..])
    );
    assert_eq!(
        created["signing_secrets"][0]["secret"],
        format!("whsec_…{}", &secret[secret.len() - 4..])
    );
    assert_eq!(created["active"], true);
    let mut seen = created.to_string();
    for path in [
        format!("/admin/v1/companies/{company}/profiles"),
        format!("/admin/v1/companies/{company}/profiles/{id}"),
        format!("/admin/v1/companies/{company}"),
        "/admin/v1/companies".to_owned(),
    ] {
        let (s, b) = app.admin_get(&path).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        seen.push_str(&b.to_string());
    }
    let (_, patched) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}/profiles/{id}"),
            json!({"name": "renamed"}),
        )
        .await;
    seen.push_str(&patched.to_string());
    assert!(!seen.contains(&secret_key), "secret key leaked");
    assert!(!seen.contains(&secret), "signing secret leaked");
    // The database holds no plaintext secret: read the raw rows.
    let rows = app
        .app
        .db
        .query_all_raw(Statement::from_string(
            app.app.db.get_database_backend(),
            "SELECT p.secret_key_enc, s.secret_enc FROM stripe_profiles p JOIN signing_secrets s ON s.profile_id = p.id".to_owned(),
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let enc_key: String = rows[0].try_get_by_index(0).unwrap();
    let enc_secret: String = rows[0].try_get_by_index(1).unwrap();
    assert!(enc_key.starts_with("pg2.") && enc_secret.starts_with("pg2."));
    assert!(!enc_key.contains(&secret_key[8..]) && !enc_secret.contains(&secret[6..]));
    // A dump of every text column of the tenant tables holds neither secret.
    for table in [
        "stripe_profiles",
        "signing_secrets",
        "audit_log",
        "companies",
    ] {
        let dump = app
            .app
            .db
            .query_all_raw(Statement::from_string(
                app.app.db.get_database_backend(),
                format!("SELECT * FROM {table}"),
            ))
            .await
            .unwrap();
        let text = format!("{dump:?}");
        assert!(
            !text.contains(&secret_key[8..]) && !text.contains(&secret[6..]),
            "{table} holds a plaintext secret"
        );
    }
}

async fn master_key_file_is_created_private(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = app.db.data_dir.join("master.key");
    let meta = std::fs::metadata(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }
    let key = std::fs::read_to_string(&path).unwrap();
    assert_eq!(key.trim().len(), 44, "32 bytes in base64");
}

async fn one_active_profile_per_mode_and_enabling_needs_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let company = unique("co");
    let created = app.create_company(&company).await;
    assert_eq!(created["stripe_enabled"], false, "off by default");
    assert_eq!(created["environment"], "test");
    assert!(
        created["callback_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/callbacks/v1.0/stripe/{company}"))
    );
    let events: Vec<&str> = created["stripe_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for e in [
        "checkout.session.completed",
        "checkout.session.async_payment_failed",
        "charge.dispute.funds_reinstated",
        "payment_method.automatically_updated",
        "issuing_cardholder.updated",
        "source.chargeable",
        "charge.succeeded",
    ] {
        assert!(events.contains(&e), "{e} missing");
    }
    // Enabling Stripe in live without a live profile is refused.
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"stripe_enabled": true, "environment": "live"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["error"]["code"], "active_profile_missing");
    let first = app.create_profile(&company, "live", &new_secret()).await;
    let mut second_body = profile_json("live", &new_secret());
    second_body["active"] = json!(true);
    let (s, second) = app
        .admin_post(
            &format!("/admin/v1/companies/{company}/profiles"),
            second_body,
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(second["active"], true);
    let (_, first_now) = app
        .admin_get(&format!(
            "/admin/v1/companies/{company}/profiles/{}",
            first["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        first_now["active"], false,
        "the earlier live profile was deactivated"
    );
    // Going live needs an account Stripe lets charge and pay out (issue 17).
    paygate_testkit::stripe_account::live_account_ready(&app, &company, "acct_1TestAccount000")
        .await;
    let (s, b) = app
        .admin_patch(
            &format!("/admin/v1/companies/{company}"),
            json!({"stripe_enabled": true, "environment": "live"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["stripe_enabled"].clone(), b["environment"].clone()),
        (json!(true), json!("live"))
    );
    // The profile in use cannot be removed.
    let (s, b) = app
        .admin_delete(&format!(
            "/admin/v1/companies/{company}/profiles/{}",
            second["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{b}");
    let (s, _) = app
        .admin_delete(&format!(
            "/admin/v1/companies/{company}/profiles/{}",
            first["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

db_tests!(
    live_profile_with_test_key_is_refused_naming_the_field,
    secrets_are_masked_everywhere_and_encrypted_at_rest,
    master_key_file_is_created_private,
    one_active_profile_per_mode_and_enabling_needs_one,
);
