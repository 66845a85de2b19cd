//! Upgrading sealed secrets to the owner-bound format: values sealed by an older version (`pg1`,
//! purpose-only associated data) are bound to their rows at the first start after migration
//! `m20261205_000002_bind_sealed_secrets` and keep working; a `pg1` value written after that is
//! never used, nor bound by a later start.

use paygate_db::entities::{
    notification_endpoint_secret, pending_upgrade, signing_secret, stripe_profile,
};
use paygate_migrations::MigratorTrait;
use paygate_tenant::crypto::field;
use paygate_tenant::{Keyring, MasterKey};
use paygate_testkit::{
    Backend, Paygate, Settings, TestApp, TestDatabase, db_tests, event, new_secret, now_secs, sign,
};
use reqwest::StatusCode;
use sea_orm::sea_query::{Alias, Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, Database, EntityTrait, QueryFilter};
use secrecy::ExposeSecret;
use serde_json::json;

const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Migrations applied by the version before the binding.
fn before_binding() -> u32 {
    let all = paygate_migrations::Migrator::migrations();
    let i = all
        .iter()
        .position(|m| m.name() == "m20261205_000002_bind_sealed_secrets")
        .unwrap();
    u32::try_from(i).unwrap()
}

fn insert(table: &str, cols: &[(&str, sea_orm::Value)]) -> sea_orm::sea_query::InsertStatement {
    let mut q = Query::insert();
    q.into_table(Alias::new(table))
        .columns(cols.iter().map(|(c, _)| Alias::new(*c)))
        .values_panic(cols.iter().map(|(_, v)| Expr::val(v.clone())));
    q
}

/// Delivers a signed event over HTTP; the status.
async fn deliver(base: &str, company: &str, secret: &str, id: &str) -> StatusCode {
    let ev = event(
        "payment_intent.succeeded",
        json!({"id": id, "object": "payment_intent", "status": "succeeded"}),
    );
    let body = serde_json::to_vec(&ev).unwrap();
    reqwest::Client::new()
        .post(format!("{base}/callbacks/v1.0/stripe/{company}"))
        .header("content-type", "application/json")
        .header("Stripe-Signature", sign(secret, now_secs(), &body))
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

async fn legacy_secrets_are_bound_to_their_rows_at_start_and_keep_working(backend: Backend) {
    let test_db = TestDatabase::create(backend).await;
    let db = Database::connect(test_db.url.as_str()).await.unwrap();
    paygate_migrations::Migrator::up(&db, Some(before_binding()))
        .await
        .unwrap();
    // What the previous version stored: one company, its test profile, signing secret and a
    // notification endpoint, every secret sealed in the legacy format.
    let ring = Keyring::new(MasterKey::from_base64(MASTER_KEY).unwrap(), vec![]);
    let (sk, whsec, endpoint_secret) = (
        "sk_test_51LegacySecretKey0000000001",
        new_secret(),
        "whsec_bGVnYWN5IGVuZHBvaW50IHNlY3JldA==",
    );
    let backend_of = db.get_database_backend();
    db.execute(&insert(
        "companies",
        &[
            ("company_id", "legacy-shop".into()),
            ("name", "Legacy Ltd".into()),
            ("status", "active".into()),
            ("stripe_enabled", true.into()),
            ("environment", "test".into()),
            ("created_at", 1i64.into()),
            ("updated_at", 1i64.into()),
        ],
    ))
    .await
    .unwrap();
    let company_pk: i64 = db
        .query_one_raw(sea_orm::Statement::from_string(
            backend_of,
            "SELECT id FROM companies WHERE company_id = 'legacy-shop'",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index(0)
        .unwrap();
    for stmt in [
        insert(
            "stripe_profiles",
            &[
                ("id", "prf_legacy".into()),
                ("company_pk", company_pk.into()),
                ("name", "old".into()),
                ("mode", "test".into()),
                ("active_mode", "test".into()),
                ("account_id", Option::<String>::None.into()),
                ("publishable_key", "pk_test_1".into()),
                (
                    "secret_key_enc",
                    ring.seal_legacy(field::STRIPE_SECRET_KEY, sk).into(),
                ),
                ("secret_key_mask", "sk_test_…0001".into()),
                ("created_at", 1i64.into()),
                ("updated_at", 1i64.into()),
            ],
        ),
        insert(
            "signing_secrets",
            &[
                ("id", "whs_legacy".into()),
                ("company_pk", company_pk.into()),
                ("profile_id", "prf_legacy".into()),
                (
                    "secret_enc",
                    ring.seal_legacy(field::SIGNING_SECRET, &whsec).into(),
                ),
                ("secret_mask", "whsec_…".into()),
                ("created_at", 1i64.into()),
                ("expires_at", Option::<i64>::None.into()),
            ],
        ),
        insert(
            "notification_endpoints",
            &[
                ("id", "ne_legacy".into()),
                ("company_pk", company_pk.into()),
                ("url", "https://shop.example/hook".into()),
                ("description", Option::<String>::None.into()),
                ("event_types", "[]".into()),
                ("enabled", true.into()),
                ("disabled_reason", Option::<String>::None.into()),
                ("failing_since", Option::<i64>::None.into()),
                ("created_at", 1i64.into()),
                ("updated_at", 1i64.into()),
            ],
        ),
        insert(
            "notification_endpoint_secrets",
            &[
                ("endpoint_id", "ne_legacy".into()),
                (
                    "secret_sealed",
                    ring.seal_legacy(field::NOTIFICATION_ENDPOINT_SECRET, endpoint_secret)
                        .into(),
                ),
                ("created_at", 1i64.into()),
                ("expires_at", Option::<i64>::None.into()),
            ],
        ),
    ] {
        db.execute(&stmt).await.unwrap();
    }
    let _ = db.close().await;

    // The new version starts: the remaining migrations, then the binding.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let settings = Settings {
        bind: addr.to_string(),
        data_dir: test_db.data_dir.clone(),
        database_url: Some(test_db.url.clone().into()),
        master_key: Some(MASTER_KEY.to_owned().into()),
        http_workers: Some(1),
        ..Settings::default()
    };
    let app = Paygate::build(settings.validated().unwrap(), Some(addr))
        .await
        .unwrap();
    let running = app.serve_http(listener).unwrap();
    let handle = running.server.handle();
    tokio::spawn(running.server);
    let base = format!("http://{addr}");

    let profile = stripe_profile::Entity::find_by_id("prf_legacy")
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let secret = signing_secret::Entity::find_by_id("whs_legacy")
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let ep_secret = notification_endpoint_secret::Entity::find()
        .filter(notification_endpoint_secret::Column::EndpointId.eq("ne_legacy"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    for v in [
        &profile.secret_key_enc,
        &secret.secret_enc,
        &ep_secret.secret_sealed,
    ] {
        assert!(v.starts_with("pg2."), "bound at start: {v}");
    }
    assert!(
        pending_upgrade::Entity::find()
            .all(&app.db)
            .await
            .unwrap()
            .is_empty(),
        "the task is done"
    );
    // Everything still works with the bound values.
    assert_eq!(
        deliver(&base, "legacy-shop", &whsec, "pi_after_upgrade").await,
        StatusCode::OK
    );
    let active = app
        .tenants
        .active_profile_for(company_pk, "test")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(active.secret_key.expose_secret(), sk);
    assert_eq!(
        app.admin
            .notify
            .live_secrets(company_pk, "ne_legacy")
            .await
            .unwrap(),
        vec![endpoint_secret.to_owned()]
    );
    // A second start changes nothing (idempotent).
    let again = Paygate::build(app.settings.clone(), None).await.unwrap();
    let after = stripe_profile::Entity::find_by_id("prf_legacy")
        .one(&again.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.secret_key_enc, profile.secret_key_enc);
    handle.stop(false).await;
}

async fn a_legacy_value_written_after_the_upgrade_is_never_used_nor_bound(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let old_secret = new_secret();
    let company = app.company_with_secret(&new_secret()).await;
    let pk = app.app.tenants.company(&company).await.unwrap().id;
    // A database writer plants a legacy value (say, from a backup taken before the upgrade).
    let planted = app
        .app
        .tenants
        .keyring()
        .seal_legacy(field::SIGNING_SECRET, &old_secret);
    signing_secret::Entity::update_many()
        .col_expr(
            signing_secret::Column::SecretEnc,
            Expr::value(planted.clone()),
        )
        .filter(signing_secret::Column::CompanyPk.eq(pk))
        .exec(&app.app.db)
        .await
        .unwrap();
    app.app.tenants.invalidate(&company);
    let ev = event(
        "payment_intent.succeeded",
        json!({"id": "pi_planted", "object": "payment_intent", "status": "succeeded"}),
    );
    assert_eq!(
        app.deliver(&company, &old_secret, &ev).await.0,
        StatusCode::BAD_REQUEST,
        "a legacy value is never opened by the intake"
    );
    // A restart does not bind it to the row it was planted in.
    let again = Paygate::build(app.app.settings.clone(), None)
        .await
        .unwrap();
    let row = signing_secret::Entity::find()
        .filter(signing_secret::Column::CompanyPk.eq(pk))
        .one(&again.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.secret_enc, planted, "left as it was");
    app.app.tenants.invalidate(&company);
    assert_eq!(
        app.deliver(&company, &old_secret, &ev).await.0,
        StatusCode::BAD_REQUEST
    );
    // `paygate rekey` reports it rather than binding it.
    let r = paygate_server::keys::reseal_all(&app.app.db, app.app.tenants.keyring())
        .await
        .unwrap();
    assert_eq!(r.refused.len(), 1, "{:?}", r.refused);
    assert_eq!(r.refused[0].table, "signing_secrets");
}

db_tests!(
    legacy_secrets_are_bound_to_their_rows_at_start_and_keep_working,
    a_legacy_value_written_after_the_upgrade_is_never_used_nor_bound,
);
