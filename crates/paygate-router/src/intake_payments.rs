//! Payment intents applied by the SQLite intake, in the transaction that stores their events.
//!
//! The most common stream Stripe sends is `payment_intent.*`, and its handler needs nothing
//! but the database. Left to the workers, each such event is written three times on SQLite's
//! one writer (stored; claimed; marked done), committed twice, and its body read back and
//! parsed again. Here the inbox writer applies it in the transaction that stores it, on the
//! connection it already holds: the payment intent's upsert, the `payment.*` message and its
//! deliveries, and the event marked `processed` after one attempt, all committed once, before
//! Stripe has its 200. A crash can never leave an acknowledged payment intent event applied
//! twice or not at all.
//!
//! The statements are the workers' own, built by the same functions
//! ([`payments::payment_intent_row_of`], [`payments::payment_intent_upsert`],
//! [`payments::payment_message`], [`outbox::message`], [`outbox::recipients_query`]) and run
//! through the raw connection with prepared statements, not through the async driver: its
//! hand-over between threads for every statement and every returned row made the earlier
//! sea-orm version of this a third slower (docs/benchmarks.md, fourth pass). Only the plainest
//! case is taken; everything else is left `pending` for the workers, exactly as before:
//! - an event whose payment intent is `canceled` (an order may follow it, see
//!   `payments::order_follows_canceled_payment`);
//! - a second event about the same payment intent in one batch;
//! - an event the handler would refuse (no `id` or `status`): the workers record its failure.
//!
//! Any error of the database rolls the whole batch back, and the writer stores it again
//! without applying anything (the events then wait for the workers).

use std::collections::HashMap;
use std::sync::Arc;

use sea_orm::sea_query::{Query, QueryStatementWriter, SqliteQueryBuilder};
use sea_orm::{DbErr, EntityTrait, IdenStatic, Iterable, QueryTrait};
use serde_json::Value;

use paygate_db::entities::{notification_delivery, notification_message, payment_intent};
use paygate_db::{PaymentStatus, Scope};
use paygate_notify::outbox::{self, CompanyRecipients};
use paygate_wire::{EventFamily, EventType};

use crate::handlers::context::is_test_event;
use crate::handlers::payments;
use crate::inbox_job::{NewInboxEvent, Taken, status};

/// Whether the intake applies events of `event_type` itself (when their payload allows it).
pub(crate) fn takes(event_type: &str) -> bool {
    EventType::parse(event_type).is_some_and(|k| k.family() == EventFamily::PaymentIntent)
}

/// Whether the intake applies `event` (its body parsed: `value`) itself, and what it leaves.
/// Decided before the event is stored, so that it is stored `processed` at once (one write of
/// its row); `None` leaves it `pending` for the workers.
pub(crate) fn take(event: &NewInboxEvent, value: &Value) -> Option<Taken> {
    if event.status != status::PENDING || !takes(&event.event_type) {
        return None;
    }
    let object = &value["data"]["object"];
    if object["status"].as_str() == Some(PaymentStatus::Canceled.as_str()) {
        return None;
    }
    let scope = Scope::of_livemode(event.company_pk, event.livemode);
    let row = payments::payment_intent_row_of(object, scope, event.created).ok()?;
    let id = object["id"].as_str()?.to_owned();
    Some(Taken {
        key: (scope, id),
        row,
    })
}

/// Applies every one of `events` (each stored a moment ago as `processed`, and each about
/// another payment intent) within the open transaction of `c`: the payment intent, and the
/// message of its change with the deliveries. An error leaves the transaction to be rolled back
/// by the caller (some statements may have run).
pub(crate) fn apply(
    c: &rusqlite::Connection,
    events: &[(&NewInboxEvent, &Taken)],
) -> Result<(), DbErr> {
    let mut recipients: HashMap<i64, Option<Arc<CompanyRecipients>>> = HashMap::new();
    let mut messages: Vec<(notification_message::Model, Arc<CompanyRecipients>)> = Vec::new();
    let returning = Query::returning().columns(payment_intent::Column::iter());
    for (e, taken) in events {
        let mut upsert = payment_intent::Entity::insert(taken.row.clone())
            .on_conflict(payments::payment_intent_upsert())
            .into_query();
        upsert.returning(returning.clone());
        // No row: the stored state was newer, nothing changed.
        let Some(p) = query_one(c, &upsert, payment_intent_of)? else {
            continue;
        };
        // The message of the change, as `payments::emit_payment` writes it.
        let kind = EventType::parse(&e.event_type);
        let Some((event_type, dedupe_key)) =
            payments::payment_message(kind, &p.status, &p.stripe_id, &e.stripe_event_id)
        else {
            continue;
        };
        let to = match recipients.get(&p.company_pk) {
            Some(r) => r.clone(),
            None => {
                let r = read_recipients(c, p.company_pk)?.map(Arc::new);
                recipients.insert(p.company_pk, r.clone());
                r
            }
        };
        // The company is gone: no message (as `outbox::emit`).
        let Some(to) = to else { continue };
        let test_event = is_test_event(e.livemode, &e.stripe_event_id);
        let m = outbox::message(
            taken.key.0,
            event_type,
            dedupe_key,
            &outbox::payment_object(&p),
            test_event,
            &to.company_id,
        );
        messages.push((m, to));
    }
    // Each message, unless the same change was recorded before, and its deliveries: as
    // `OutboxBatch::flush` writes them.
    for (m, to) in messages {
        let mut insert = notification_message::Entity::insert(
            notification_message::ActiveModel::from(m.clone()),
        )
        .on_conflict(outbox::dedupe_conflict())
        .into_query();
        insert.returning(Query::returning().column(notification_message::Column::Id));
        if query_one(c, &insert, |r| r.get::<_, String>(0))?.is_none() {
            continue;
        }
        for d in to.webhook_deliveries(&m.id, m.company_pk, &m.event_type, m.created_at) {
            let insert = notification_delivery::Entity::insert(d).into_query();
            execute(c, &insert)?;
        }
    }
    Ok(())
}

/// Runs `q` and reads its first row, if it returns one. Every row's statement has the same
/// SQL (one row each; a multi-row statement would be prepared anew for each batch size, and
/// SQLite gains nothing from it without a network between), so it is prepared once and kept in
/// the connection's cache from batch to batch (see `inbox_sqlite::Held`).
fn query_one<T>(
    c: &rusqlite::Connection,
    q: &impl QueryStatementWriter,
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, DbErr> {
    let (sql, values) = q.build(SqliteQueryBuilder);
    let mut st = c.prepare_cached(&sql).map_err(db_err)?;
    let mut rows = st
        .query(rusqlite::params_from_iter(bind_all(&values)?))
        .map_err(db_err)?;
    match rows.next().map_err(db_err)? {
        Some(r) => Ok(Some(read(r).map_err(db_err)?)),
        None => Ok(None),
    }
}

/// Runs `q` (prepared as [`query_one`]'s); returns the rows it changed.
fn execute(c: &rusqlite::Connection, q: &impl QueryStatementWriter) -> Result<usize, DbErr> {
    let (sql, values) = q.build(SqliteQueryBuilder);
    c.prepare_cached(&sql)
        .map_err(db_err)?
        .execute(rusqlite::params_from_iter(bind_all(&values)?))
        .map_err(db_err)
}

/// A company's public id and enabled endpoints (`outbox::recipients_query`); `None` when the
/// company is gone.
fn read_recipients(
    c: &rusqlite::Connection,
    company_pk: i64,
) -> Result<Option<CompanyRecipients>, DbErr> {
    let (sql, values) = outbox::recipients_query(company_pk).build(SqliteQueryBuilder);
    let mut st = c.prepare_cached(&sql).map_err(db_err)?;
    let rows = st
        .query_map(rusqlite::params_from_iter(bind_all(&values)?), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .map_err(db_err)?;
    CompanyRecipients::from_rows(rows).map_err(db_err)
}

/// A payment intent read from a row holding every column, by name.
fn payment_intent_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<payment_intent::Model> {
    use payment_intent::Column as Pi;
    let col = |c: Pi| c.as_str();
    Ok(payment_intent::Model {
        id: r.get(col(Pi::Id))?,
        company_pk: r.get(col(Pi::CompanyPk))?,
        stripe_id: r.get(col(Pi::StripeId))?,
        livemode: r.get(col(Pi::Livemode))?,
        status: r.get(col(Pi::Status))?,
        amount: r.get(col(Pi::Amount))?,
        amount_capturable: r.get(col(Pi::AmountCapturable))?,
        amount_received: r.get(col(Pi::AmountReceived))?,
        currency: r.get(col(Pi::Currency))?,
        customer: r.get(col(Pi::Customer))?,
        last_payment_error: r.get(col(Pi::LastPaymentError))?,
        cancellation_reason: r.get(col(Pi::CancellationReason))?,
        disputed: r.get(col(Pi::Disputed))?,
        state_created: r.get(col(Pi::StateCreated))?,
        state_rank: r.get(col(Pi::StateRank))?,
        created_at: r.get(col(Pi::CreatedAt))?,
        updated_at: r.get(col(Pi::UpdatedAt))?,
    })
}

/// A value bound by sea-query, as SQLite stores it (what sqlx binds on SQLite).
fn bind(v: &sea_orm::Value) -> Result<rusqlite::types::Value, DbErr> {
    use rusqlite::types::Value as R;
    use sea_orm::Value as V;
    let int = |i: Option<i64>| i.map_or(R::Null, R::Integer);
    Ok(match v {
        V::Bool(b) => int(b.map(i64::from)),
        V::TinyInt(i) => int(i.map(i64::from)),
        V::SmallInt(i) => int(i.map(i64::from)),
        V::Int(i) => int(i.map(i64::from)),
        V::BigInt(i) => int(*i),
        V::TinyUnsigned(i) => int(i.map(i64::from)),
        V::SmallUnsigned(i) => int(i.map(i64::from)),
        V::Unsigned(i) => int(i.map(i64::from)),
        V::BigUnsigned(i) => i
            .and_then(|i| i64::try_from(i).ok())
            .map_or(R::Null, R::Integer),
        V::Float(f) => f.map_or(R::Null, |f| R::Real(f64::from(f))),
        V::Double(f) => f.map_or(R::Null, R::Real),
        V::String(s) => s.clone().map_or(R::Null, R::Text),
        V::Char(ch) => ch.map_or(R::Null, |ch| R::Text(ch.to_string())),
        V::Bytes(b) => b.clone().map_or(R::Null, R::Blob),
        V::Json(j) => j.as_ref().map_or(R::Null, |j| R::Text(j.to_string())),
        // No column written here has another type: refuse rather than store the wrong thing.
        _ => return Err(db_err(format!("cannot bind {v:?}"))),
    })
}

/// Every value of a statement, bound ([`bind`]).
fn bind_all(values: &sea_orm::sea_query::Values) -> Result<Vec<rusqlite::types::Value>, DbErr> {
    values.iter().map(bind).collect()
}

fn db_err(e: impl std::fmt::Display) -> DbErr {
    DbErr::Custom(format!("intake: {e}"))
}
