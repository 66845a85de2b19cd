//! Upgrading a database that already holds events: the migrations move what is stored, and
//! undoing one puts it back.

use paygate_db::entities::{company, inbox_event, inbox_payload};
use paygate_migrations::MigratorTrait;
use paygate_testkit::{Backend, TestDatabase, db_tests, event, now_secs};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ActiveModelTrait, ConnectionTrait, Database, EntityTrait, Set};
use serde_json::json;

/// A company as an older version stored it, working in `environment`; its internal id. Only the
/// columns every version has are written (the entity may have more than the old schema).
async fn shop(db: &sea_orm::DatabaseConnection, id: &str, environment: &str) -> i64 {
    company::Entity::insert(company::ActiveModel {
        company_id: Set(id.into()),
        name: Set(format!("{id} Ltd")),
        status: Set("active".into()),
        stripe_enabled: Set(true),
        environment: Set(environment.into()),
        created_at: Set(1),
        updated_at: Set(1),
        ..Default::default()
    })
    .exec(db)
    .await
    .unwrap()
    .last_insert_id
}

/// Migrations applied before the inbox bodies moved to `inbox_payloads`.
const BEFORE_PAYLOAD_MOVE: u32 = 6;

async fn stored_event_bodies_survive_the_move_to_their_own_table(backend: Backend) {
    let test_db = TestDatabase::create(backend).await;
    let db = Database::connect(test_db.url.as_str()).await.unwrap();
    paygate_migrations::Migrator::up(&db, Some(BEFORE_PAYLOAD_MOVE))
        .await
        .unwrap();
    let shop = shop(&db, "old-shop", "test").await;
    // Two events stored by the previous version, the body inside the inbox row.
    let bodies: Vec<String> = ["pi_old_1", "pi_old_2"]
        .iter()
        .map(|id| {
            event(
                "payment_intent.succeeded",
                json!({"id": id, "object": "payment_intent", "status": "succeeded"}),
            )
            .to_string()
        })
        .collect();
    for (n, body) in bodies.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        let mut q = Query::insert();
        q.into_table(Alias::new("inbox_events"))
            .columns(
                [
                    "company_pk",
                    "stripe_event_id",
                    "event_type",
                    "livemode",
                    "created",
                    "received_at",
                    "origin",
                    "payload",
                    "status",
                    "attempts",
                    "next_attempt_at",
                ]
                .map(Alias::new),
            )
            .values_panic([
                shop.into(),
                v["id"].as_str().unwrap().into(),
                "payment_intent.succeeded".into(),
                false.into(),
                now_secs().into(),
                (n as i64).into(),
                "webhook".into(),
                body.as_str().into(),
                if n == 0 { "processed" } else { "pending" }.into(),
                0i32.into(),
                0i64.into(),
            ]);
        db.execute(&q).await.unwrap();
    }

    paygate_migrations::Migrator::up(&db, None).await.unwrap();
    let rows = inbox_event::Entity::find()
        .find_also_related(inbox_payload::Entity)
        .all(&db)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for ((row, stored), body) in rows.iter().zip(&bodies) {
        let stored = stored.as_ref().expect("every event keeps its body");
        assert_eq!(&stored.payload, body, "byte for byte");
        assert!(body.contains(&row.stripe_event_id));
    }
    assert_eq!(
        rows[0].0.status, "processed",
        "the rows themselves are unchanged"
    );
    assert_eq!(rows[1].0.status, "pending");
    let old_column = db
        .execute_unprepared("SELECT payload FROM inbox_events")
        .await;
    assert!(
        old_column.is_err(),
        "the body is no longer in the inbox row"
    );

    // Deleting an event deletes its body.
    inbox_event::Entity::delete_by_id(rows[0].0.id)
        .exec(&db)
        .await
        .unwrap();
    assert!(
        inbox_payload::Entity::find_by_id(rows[0].0.id)
            .one(&db)
            .await
            .unwrap()
            .is_none()
    );

    // Undone (with everything after it), the body is back in the inbox row.
    let after = paygate_migrations::Migrator::migrations().len() as u32 - BEFORE_PAYLOAD_MOVE;
    paygate_migrations::Migrator::down(&db, Some(after))
        .await
        .unwrap();
    let back = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT payload FROM inbox_events",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back.try_get_by_index::<String>(0).unwrap(), bodies[1]);
}

db_tests!(stored_event_bodies_survive_the_move_to_their_own_table);

/// Migrations applied before the mode became part of every key.
const BEFORE_MODE_KEYS: u32 = 8;

/// Rows stored before the mode joined the keys learn their mode from what says it (their
/// Checkout Session or the session id's prefix, the stored event that carried them, the
/// company's environment for API keys); afterwards the same Stripe id may exist once per mode;
/// undone, the keys are the old ones again and the columns are gone.
async fn existing_rows_learn_their_mode_and_the_keys_take_it(backend: Backend) {
    use paygate_db::entities::{api_key, fulfillment, issuing_object, line_item, payment_method};
    use sea_orm::ColumnTrait;
    use sea_orm::QueryFilter;

    let test_db = TestDatabase::create(backend).await;
    let db = Database::connect(test_db.url.as_str()).await.unwrap();
    paygate_migrations::Migrator::up(&db, Some(BEFORE_MODE_KEYS))
        .await
        .unwrap();
    let shop = shop(&db, "live-shop", "live").await;
    let pk = shop;
    let live_event = event(
        "payment_method.automatically_updated",
        json!({"id": "pm_card_live", "object": "payment_method"}),
    );
    let test_event = event(
        "payment_method.automatically_updated",
        json!({"id": "pm_card_test", "object": "payment_method"}),
    );
    let statements = [
        format!(
            "INSERT INTO checkout_sessions (company_pk, session_id, order_id, livemode, \
             fulfillment_status, state_created, created_at, updated_at) \
             VALUES ({pk}, 'cs_a', 'ord_a', TRUE, 'fulfilled', 0, 1, 1)"
        ),
        format!(
            "INSERT INTO line_items (company_pk, session_id, stripe_line_item_id, \
             amount_subtotal, amount_total) VALUES ({pk}, 'cs_a', 'li_1', 100, 100), \
             ({pk}, 'cs_test_b', 'li_1', 100, 100), ({pk}, 'cs_live_c', 'li_1', 100, 100)"
        ),
        format!(
            "INSERT INTO fulfillments (company_pk, session_id, order_id, payment_status, \
             line_item_count, fulfilled_by, fulfilled_at) \
             VALUES ({pk}, 'cs_a', 'ord_a', 'paid', 1, 'worker', 1)"
        ),
        format!(
            "INSERT INTO payment_methods (company_pk, stripe_id, state_created, updated_at) \
             VALUES ({pk}, 'pm_card_live', 1, 1), ({pk}, 'pm_card_test', 1, 1)"
        ),
        format!(
            "INSERT INTO issuing_objects (company_pk, stripe_id, kind, state_created, updated_at) \
             VALUES ({pk}, 'ic_1', 'card', 1, 1)"
        ),
        format!(
            "INSERT INTO api_keys (id, company_pk, name, prefix, key_hash, created_at) \
             VALUES ('key_1', {pk}, 'backend', 'pgk_0123456', 'hash_1', 1)"
        ),
        format!(
            "INSERT INTO payment_intents (company_pk, stripe_id, livemode, status, amount, \
             amount_capturable, amount_received, currency, disputed, state_created, state_rank, \
             created_at, updated_at) \
             VALUES ({pk}, 'pi_same', TRUE, 'succeeded', 100, 0, 100, 'eur', FALSE, 1, 6, 1, 1)"
        ),
    ];
    for s in &statements {
        db.execute_unprepared(s).await.unwrap();
    }
    for (ev, live) in [(&live_event, true), (&test_event, false)] {
        let id = ev["id"].as_str().unwrap();
        db.execute_unprepared(&format!(
            "INSERT INTO inbox_events (company_pk, stripe_event_id, event_type, livemode, \
             created, received_at, origin, status, attempts, next_attempt_at) \
             VALUES ({pk}, '{id}', 'payment_method.automatically_updated', {live}, 1, 1, \
             'webhook', 'processed', 1, 0)"
        ))
        .await
        .unwrap();
        let row = inbox_event::Entity::find()
            .filter(inbox_event::Column::StripeEventId.eq(id))
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        inbox_payload::ActiveModel {
            inbox_event_id: Set(row.id),
            payload: Set(ev.to_string()),
        }
        .insert(&db)
        .await
        .unwrap();
    }

    paygate_migrations::Migrator::up(&db, None).await.unwrap();
    let items = line_item::Entity::find().all(&db).await.unwrap();
    let mode_of = |session: &str| {
        items
            .iter()
            .find(|i| i.session_id == session)
            .map(|i| i.livemode)
    };
    assert_eq!(mode_of("cs_a"), Some(true), "from its live session");
    assert_eq!(mode_of("cs_test_b"), Some(false), "from the id's prefix");
    assert_eq!(mode_of("cs_live_c"), Some(true), "from the id's prefix");
    let f = fulfillment::Entity::find().one(&db).await.unwrap().unwrap();
    assert!(f.livemode);
    let pms = payment_method::Entity::find().all(&db).await.unwrap();
    for pm in &pms {
        assert_eq!(
            pm.livemode,
            pm.stripe_id == "pm_card_live",
            "from the event that carried it: {}",
            pm.stripe_id
        );
    }
    let ic = issuing_object::Entity::find()
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert!(!ic.livemode, "no event says live: test");
    let key = api_key::Entity::find().one(&db).await.unwrap().unwrap();
    assert!(key.livemode, "the company worked in live");

    // The same Stripe id once per mode, not twice in one.
    let twin = |live: bool| {
        format!(
            "INSERT INTO payment_intents (company_pk, stripe_id, livemode, status, amount, \
             amount_capturable, amount_received, currency, disputed, state_created, state_rank, \
             created_at, updated_at) \
             VALUES ({pk}, 'pi_same', {live}, 'processing', 1, 0, 0, 'eur', FALSE, 2, 3, 1, 1)"
        )
    };
    db.execute_unprepared(&twin(false)).await.unwrap();
    assert!(db.execute_unprepared(&twin(true)).await.is_err());

    // Undone (the twin removed: the old keys cannot hold both), the columns are gone.
    db.execute_unprepared("DELETE FROM payment_intents WHERE livemode = FALSE")
        .await
        .unwrap();
    // (With everything after it.)
    let after = paygate_migrations::Migrator::migrations().len() as u32 - BEFORE_MODE_KEYS;
    paygate_migrations::Migrator::down(&db, Some(after))
        .await
        .unwrap();
    assert!(
        db.execute_unprepared("SELECT livemode FROM line_items")
            .await
            .is_err()
    );
    assert!(
        db.execute_unprepared(&twin(false)).await.is_err(),
        "old key"
    );
    paygate_migrations::Migrator::up(&db, None).await.unwrap();
}

db_tests!(existing_rows_learn_their_mode_and_the_keys_take_it);
