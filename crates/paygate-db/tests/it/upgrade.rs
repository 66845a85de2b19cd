//! Upgrading a database that already holds events: the migrations move what is stored, and
//! undoing one puts it back.

use paygate_db::entities::{company, inbox_event, inbox_payload};
use paygate_migrations::MigratorTrait;
use paygate_testkit::{Backend, TestDatabase, db_tests, event, now_secs};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ActiveModelTrait, ConnectionTrait, Database, EntityTrait, Set};
use serde_json::json;

/// Migrations applied before the inbox bodies moved to `inbox_payloads`.
const BEFORE_PAYLOAD_MOVE: u32 = 6;

async fn stored_event_bodies_survive_the_move_to_their_own_table(backend: Backend) {
    let test_db = TestDatabase::create(backend).await;
    let db = Database::connect(test_db.url.as_str()).await.unwrap();
    paygate_migrations::Migrator::up(&db, Some(BEFORE_PAYLOAD_MOVE))
        .await
        .unwrap();
    let shop = company::ActiveModel {
        company_id: Set("old-shop".into()),
        name: Set("Old Shop".into()),
        status: Set("active".into()),
        stripe_enabled: Set(true),
        environment: Set("test".into()),
        created_at: Set(1),
        updated_at: Set(1),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
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
                shop.id.into(),
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
