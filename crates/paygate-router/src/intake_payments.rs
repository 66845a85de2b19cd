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

use std::cell::RefCell;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::rc::Rc;
use std::sync::Arc;

use sea_orm::sea_query::{InsertStatement, SqliteQueryBuilder};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, DbErr, EntityTrait, Iterable, QueryFilter,
    QueryTrait, TryIntoModel,
};
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

/// Whether the intake applies `event` itself, and what it leaves. Decided on the request's
/// task before the event is stored, so that it is stored `processed` at once (one write of its
/// row); `None` leaves it `pending` for the workers. `object` is the event's `data.object` as
/// the intake read it with the envelope ([`paygate_wire::envelope::parse_with`]); without it
/// the payload is read here.
pub(crate) fn take(event: &NewInboxEvent, object: Option<ObjectFields>) -> Option<Taken> {
    if event.status != status::PENDING || !takes(&event.event_type) {
        return None;
    }
    let object = match object {
        Some(o) => o,
        None => read_object(&event.payload)?,
    };
    take_object(event, &object.into_value())
}

/// [`take`] for `object`, the event's `data.object` (or as much of it as the row is built
/// from: [`ObjectFields`]).
fn take_object(event: &NewInboxEvent, object: &Value) -> Option<Taken> {
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

/// Of an event's `data.object`, only the fields [`payments::payment_intent_row_of`] reads (what
/// is absent reads as `null`, as indexing a [`Value`] does). Parsing the whole body into a
/// [`Value`] (a map for every object of it, a string for every key) was 14 % of the HTTP
/// workers' time at 5 000 events/s; the fields skipped here are only scanned. A field the row
/// reads but this leaves out would read as missing:
/// `tests::the_slim_object_builds_the_row_the_whole_body_builds` compares the rows. Every field
/// takes any JSON value and a repeated key keeps its last value, as a [`Value`] map does, so
/// reading it never refuses a body the envelope alone would accept.
#[derive(Debug, Default)]
pub struct ObjectFields {
    id: Value,
    status: Value,
    amount: Value,
    amount_capturable: Value,
    amount_received: Value,
    currency: Value,
    customer: Value,
    last_payment_error: Value,
    cancellation_reason: Value,
}

impl<'de> serde::Deserialize<'de> for ObjectFields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(field_identifier, rename_all = "snake_case")]
        enum Key {
            Id,
            Status,
            Amount,
            AmountCapturable,
            AmountReceived,
            Currency,
            Customer,
            LastPaymentError,
            CancellationReason,
            #[serde(other)]
            Other,
        }
        struct Fields;
        impl<'de> serde::de::Visitor<'de> for Fields {
            type Value = ObjectFields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a payment intent")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ObjectFields, A::Error> {
                let mut o = ObjectFields::default();
                while let Some(key) = map.next_key::<Key>()? {
                    let field = match key {
                        Key::Id => &mut o.id,
                        Key::Status => &mut o.status,
                        Key::Amount => &mut o.amount,
                        Key::AmountCapturable => &mut o.amount_capturable,
                        Key::AmountReceived => &mut o.amount_received,
                        Key::Currency => &mut o.currency,
                        Key::Customer => &mut o.customer,
                        Key::LastPaymentError => &mut o.last_payment_error,
                        Key::CancellationReason => &mut o.cancellation_reason,
                        Key::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                            continue;
                        }
                    };
                    *field = map.next_value()?;
                }
                Ok(o)
            }
        }
        d.deserialize_map(Fields)
    }
}

impl ObjectFields {
    fn into_value(self) -> Value {
        let fields = [
            ("id", self.id),
            ("status", self.status),
            ("amount", self.amount),
            ("amount_capturable", self.amount_capturable),
            ("amount_received", self.amount_received),
            ("currency", self.currency),
            ("customer", self.customer),
            ("last_payment_error", self.last_payment_error),
            ("cancellation_reason", self.cancellation_reason),
        ];
        Value::Object(
            fields
                .into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }
}

/// The event's `data.object` as [`ObjectFields`], read from the stored payload.
fn read_object(payload: &str) -> Option<ObjectFields> {
    paygate_wire::envelope::parse_with::<ObjectFields>(payload.as_bytes())
        .ok()?
        .1
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
    for (e, taken) in events {
        // Nothing changed: the stored state was newer.
        let Some(p) = upsert_payment_intent(c, taken)? else {
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
            &outbox::PaymentObject::of(&p),
            test_event,
            &to.company_id,
        );
        messages.push((m, to));
    }
    // Each message, unless the same change was recorded before, and its deliveries: as
    // `OutboxBatch::flush` writes them.
    for (m, to) in messages {
        let row = notification_message::ActiveModel::from(m.clone());
        let insert = statement("notification_message_insert", &row, message_insert_of)?;
        if execute(c, insert)? == 0 {
            continue;
        }
        for d in to.webhook_deliveries(&m.id, m.company_pk, &m.event_type, m.created_at) {
            let (sql, values) = statement("notification_delivery_insert", &d, |row| {
                notification_delivery::Entity::insert(row).into_query()
            })?;
            c.prepare_cached(&sql)
                .map_err(db_err)?
                .execute(rusqlite::params_from_iter(values))
                .map_err(db_err)?;
        }
    }
    Ok(())
}

/// Upserts `taken`'s payment intent; the row as the upsert left it, or `None` when nothing
/// changed (the stored state was newer).
///
/// A payment intent seen for the first time is the row built, with the id SQLite gave it:
/// reading it back was 7 % of the writer's time at 5 000 events/s (docs/benchmarks.md,
/// seventeenth pass). An insert changes the connection's last rowid and the upsert's `DO
/// UPDATE` does not (`tests::only_an_insert_moves_the_last_rowid`); when the two look alike
/// (the rowid before was another table's, equal by chance) the row is read, as after an update.
fn upsert_payment_intent(
    c: &rusqlite::Connection,
    taken: &Taken,
) -> Result<Option<payment_intent::Model>, DbErr> {
    let upsert = statement("payment_intent_upsert", &taken.row, upsert_of)?;
    let before = c.last_insert_rowid();
    if execute(c, upsert)? == 0 {
        return Ok(None);
    }
    let after = c.last_insert_rowid();
    if after != before {
        let row = payment_intent::ActiveModel {
            id: ActiveValue::Set(after),
            ..taken.row.clone()
        };
        if let Ok(p) = row.try_into_model() {
            return Ok(Some(p));
        }
    }
    // The row as the upsert left it (read by the unique key, in this transaction).
    match read_payment_intent(c, &taken.key)? {
        Some(p) => Ok(Some(p)),
        None => Err(db_err("the payment intent just written is not there")),
    }
}

/// The stored payment intent with this company, mode and Stripe id, if any.
fn read_payment_intent(
    c: &rusqlite::Connection,
    (scope, stripe_id): &(Scope, String),
) -> Result<Option<payment_intent::Model>, DbErr> {
    let key = vec![
        rusqlite::types::Value::Integer(scope.company_pk()),
        rusqlite::types::Value::Integer(i64::from(scope.livemode())),
        rusqlite::types::Value::Text(stripe_id.clone()),
    ];
    query_one(c, (select_payment_intent(), key), payment_intent_of)
}

/// The payment intent's upsert of `row`. Its row is read afterwards ([`select_payment_intent`])
/// rather than returned: SQLite gathers a statement's `RETURNING` rows in a temporary b-tree of
/// its own, opened and closed with its pager and page cache for every execution, ~10 % of the
/// writer's time at 5 000 events/s for this statement and the message's insert
/// (docs/benchmarks.md, fifteenth pass).
fn upsert_of(row: payment_intent::ActiveModel) -> InsertStatement {
    payment_intent::Entity::insert(row)
        .on_conflict(payments::payment_intent_upsert())
        .into_query()
}

/// Every column of the payment intent with a company, mode and Stripe id (`?1`–`?3`), in
/// [`payment_intent::Column::iter`]'s order ([`payment_intent_of`]).
fn select_payment_intent() -> Rc<str> {
    thread_local! {
        static SQL: Rc<str> = {
            let (sql, _) = Scope::of_livemode(0, false)
                .payment_intents()
                .filter(payment_intent::Column::StripeId.eq(""))
                .into_query()
                .build(SqliteQueryBuilder);
            sql.into()
        };
    }
    SQL.with(Rc::clone)
}

/// The message's insert, unless its change was recorded before (then it changes nothing).
fn message_insert_of(row: notification_message::ActiveModel) -> InsertStatement {
    notification_message::Entity::insert(row)
        .on_conflict(outbox::dedupe_conflict())
        .into_query()
}

/// A statement's SQL, rendered once for its shape, and what its values end with.
struct Rendered {
    sql: Rc<str>,
    /// The values after the row's own (the constants of an `ON CONFLICT … WHERE`).
    tail: Vec<rusqlite::types::Value>,
}

thread_local! {
    /// [`statement`]'s renderings, by statement and by which columns the row sets.
    static RENDERED: RefCell<HashMap<(&'static str, u64), Rendered>> = RefCell::new(HashMap::new());
}

/// The SQL and values of the one-row `INSERT` that `build` makes of `row`, `shape` naming what
/// `build` does. Building the statement with sea-query and rendering it for every event (the
/// upsert's conflict clause, its conditions, the columns, then dropping it all) was a sixth of
/// the writer's time at 5 000 events/s, for SQL that is the same every time: so the first row
/// of each shape (statement, and which of its columns the row sets) is built and rendered as
/// the workers' statements are, and later rows of the shape only have their values read, in
/// column order, as sea-orm binds them. Checked for each new shape (the row's values must be
/// the first of what sea-query bound) and by `tests::a_statement_is_what_sea_query_builds`.
fn statement<A>(
    shape: &'static str,
    row: &A,
    build: impl FnOnce(A) -> InsertStatement,
) -> Result<(Rc<str>, Vec<rusqlite::types::Value>), DbErr>
where
    A: ActiveModelTrait + Clone,
{
    let mut set = 0u64;
    let mut values = Vec::new();
    for (i, column) in <A::Entity as EntityTrait>::Column::iter().enumerate() {
        if let ActiveValue::Set(v) | ActiveValue::Unchanged(v) = row.get(column) {
            set |= 1 << i;
            values.push(bind(&v)?);
        }
    }
    RENDERED.with_borrow_mut(|rendered| {
        let r = match rendered.entry((shape, set)) {
            Entry::Occupied(r) => r.into_mut(),
            Entry::Vacant(slot) => {
                let (sql, all) = build(row.clone()).build(SqliteQueryBuilder);
                let all = bind_all(&all)?;
                if all.get(..values.len()) != Some(&values[..]) {
                    return Err(db_err(format!(
                        "{shape}: the row's values are not the statement's first"
                    )));
                }
                slot.insert(Rendered {
                    sql: sql.into(),
                    tail: all[values.len()..].to_vec(),
                })
            }
        };
        values.extend(r.tail.iter().cloned());
        Ok((r.sql.clone(), values))
    })
}

/// Runs the statement `sql` with `values` ([`statement`]) and reads its first row, if it
/// returns one. Every row's statement has the same
/// SQL (one row each; a multi-row statement would be prepared anew for each batch size, and
/// SQLite gains nothing from it without a network between), so it is prepared once and kept in
/// the connection's cache from batch to batch (see `inbox_sqlite::Held`).
fn query_one<T>(
    c: &rusqlite::Connection,
    (sql, values): (Rc<str>, Vec<rusqlite::types::Value>),
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, DbErr> {
    let mut st = c.prepare_cached(&sql).map_err(db_err)?;
    let mut rows = st
        .query(rusqlite::params_from_iter(values))
        .map_err(db_err)?;
    match rows.next().map_err(db_err)? {
        Some(r) => Ok(Some(read(r).map_err(db_err)?)),
        None => Ok(None),
    }
}

/// Runs the statement `sql` with `values` ([`statement`]); returns how many rows it changed.
fn execute(
    c: &rusqlite::Connection,
    (sql, values): (Rc<str>, Vec<rusqlite::types::Value>),
) -> Result<usize, DbErr> {
    c.prepare_cached(&sql)
        .and_then(|mut st| st.execute(rusqlite::params_from_iter(values)))
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

/// A payment intent read from a row holding every column in [`payment_intent::Column::iter`]'s
/// order ([`upsert_of`]), by position: finding each column by name compared names, 4 % of the
/// writer's time at 5 000 events/s (docs/benchmarks.md, fifteenth pass).
fn payment_intent_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<payment_intent::Model> {
    use payment_intent::Column as Pi;
    // A field-less enum: its variants' numbers are their places in `Column::iter()`
    // (`tests::a_payment_intent_is_read_by_position`).
    let col = |c: Pi| c as usize;
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

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly")]

    use sea_orm::ActiveValue::Set;
    use serde_json::json;

    use super::*;

    fn event(payload: &Value) -> NewInboxEvent {
        NewInboxEvent {
            company_pk: 7,
            stripe_event_id: "evt_1PgafyB7WZ01zgkWaaaaaaaa".into(),
            event_type: payload["type"].as_str().unwrap().into(),
            livemode: false,
            api_version: payload["api_version"].as_str().map(str::to_owned),
            account_id: None,
            created: 1_722_000_000,
            payload: payload.to_string(),
            origin: "webhook",
            status: status::PENDING,
        }
    }

    /// A payment intent as Stripe sends it, with the fields the row does not read around the
    /// ones it does (nested objects, lists, `null`s): `customer` expanded or an id, a last
    /// payment error or none, the shape of an older API version (`charges` inside) or a newer.
    fn payment_intent(customer: Value, last_error: Value, old_shape: bool) -> Value {
        let mut pi = json!({
            "id": "pi_3PgafyB7WZ01zgkW1abcdefg",
            "object": "payment_intent",
            "amount": 2500,
            "amount_capturable": 0,
            "amount_details": {"tip": {}},
            "amount_received": 2500,
            "application": null,
            "automatic_payment_methods": {"allow_redirects": "always", "enabled": true},
            "cancellation_reason": null,
            "capture_method": "automatic",
            "client_secret": "pi_3Pgafy_secret_xyz",
            "confirmation_method": "automatic",
            "created": 1_722_000_000,
            "currency": "eur",
            "customer": customer,
            "description": "Order \"42\" \u{e9}",
            "last_payment_error": last_error,
            "latest_charge": {"id": "ch_3PgafyB7WZ01zgkW1", "object": "charge", "amount": 2500},
            "livemode": false,
            "metadata": {"order_id": "42", "status": "not the status"},
            "payment_method": "pm_1PgafyB7WZ01zgkW",
            "payment_method_options": {"card": {"request_three_d_secure": "automatic"}},
            "payment_method_types": ["card", "sepa_debit"],
            "status": "succeeded",
            "shipping": null
        });
        if old_shape {
            pi["charges"] = json!({"object": "list", "data": [{"id": "ch_1", "status": "succeeded"}], "has_more": false});
        }
        json!({
            "id": "evt_1PgafyB7WZ01zgkWaaaaaaaa",
            "object": "event",
            "api_version": if old_shape { "2020-08-27" } else { "2024-06-20" },
            "created": 1_722_000_000,
            "data": {"object": pi, "previous_attributes": {"status": "processing"}},
            "livemode": false,
            "pending_webhooks": 1,
            "request": {"id": null, "idempotency_key": null},
            "type": EventType::PaymentIntentSucceeded.as_str()
        })
    }

    /// The row, but for the times it was built at.
    fn stable(mut row: payment_intent::ActiveModel) -> payment_intent::ActiveModel {
        row.created_at = Set(0);
        row.updated_at = Set(0);
        row
    }

    /// What the intake takes from the slim parse of the body is what it takes from the whole
    /// body parsed (the workers' way), for every shape of the fields the row reads.
    #[test]
    fn the_slim_object_builds_the_row_the_whole_body_builds() {
        let customers = [
            json!("cus_QXa1b2c3"),
            json!({"id": "cus_QXa1b2c3", "object": "customer", "email": "a@example.com"}),
            Value::Null,
        ];
        let errors = [
            Value::Null,
            json!({"code": "card_declined", "decline_code": "insufficient_funds", "message": "Your card has insufficient funds.", "type": "card_error", "payment_method": {"id": "pm_1"}}),
        ];
        let mut compared = 0;
        for customer in &customers {
            for error in &errors {
                for old_shape in [false, true] {
                    let body = payment_intent(customer.clone(), error.clone(), old_shape);
                    let e = event(&body);
                    let whole = take_object(&e, &body["data"]["object"]).unwrap();
                    // Read from the stored payload, and as the intake reads it with the envelope.
                    let read = paygate_wire::envelope::parse_with(e.payload.as_bytes());
                    let with_envelope = read.ok().and_then(|(_, o)| o);
                    assert!(with_envelope.is_some());
                    for slim in [take(&e, None), take(&e, with_envelope)] {
                        let slim = slim.unwrap();
                        assert_eq!(slim.key, whole.key);
                        assert_eq!(stable(slim.row), stable(whole.row.clone()), "{body}");
                        compared += 1;
                    }
                }
            }
        }
        assert_eq!(compared, 24);
    }

    /// A key repeated in the object (not what Stripe sends, but JSON) keeps its last value, as
    /// the whole body parsed into a [`Value`] does, and the envelope is still read.
    #[test]
    fn a_repeated_key_reads_as_the_whole_body_reads_it() {
        let body = payment_intent(Value::Null, Value::Null, false).to_string();
        let body = body.replacen(
            r#""status":"succeeded""#,
            r#""status":"processing","status":"succeeded","amount":1"#,
            1,
        );
        assert!(body.contains(r#""status":"processing","status":"succeeded""#));
        let whole: Value = serde_json::from_str(&body).unwrap();
        let e = event(&whole);
        let e = NewInboxEvent { payload: body, ..e };
        let read = paygate_wire::envelope::parse_with(e.payload.as_bytes());
        let object = read.ok().and_then(|(_, o)| o);
        let want = take_object(&e, &whole["data"]["object"]).unwrap();
        let got = take(&e, object).unwrap();
        assert_eq!(stable(got.row), stable(want.row));
    }

    /// What the whole body would refuse, the slim parse refuses too (left to the workers, which
    /// record the failure): no `status`, or a canceled payment intent.
    #[test]
    fn the_slim_object_leaves_what_the_whole_body_leaves() {
        let mut body = payment_intent(Value::Null, Value::Null, false);
        body["data"]["object"]
            .as_object_mut()
            .unwrap()
            .remove("status");
        assert!(take(&event(&body), None).is_none());
        body["data"]["object"]["status"] = json!("canceled");
        assert!(take(&event(&body), None).is_none());
        assert!(
            take(
                &event(&json!({"type": EventType::PaymentIntentSucceeded.as_str()})),
                None
            )
            .is_none()
        );
    }

    /// A payment intent's first state is stored as built, with the id SQLite gave it (the row
    /// the upsert returns is the row then read); a newer state updates it, keeping its id, its
    /// dispute flag and when it was first written, and leaves the connection's last rowid where
    /// it was, so the row is read; an older one changes nothing. What [`upsert_payment_intent`]
    /// tells an insert from an update by, on the SQLite this project links.
    #[test]
    fn only_an_insert_moves_the_last_rowid() {
        let dir = std::env::temp_dir().join(format!("paygate-rowid-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rowid.db");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let opts = paygate_db::DbOptions {
                url: url.clone(),
                max_connections: 1,
            };
            let db = paygate_db::connect(&opts).await.unwrap();
            paygate_db::migrate(&db, &url).await.unwrap();
            db.close().await.unwrap();
        });
        let c = rusqlite::Connection::open(&path).unwrap();
        // The payment intents alone: no company row for them to belong to.
        c.execute_batch("PRAGMA foreign_keys = OFF").unwrap();
        let scope = Scope::of_livemode(7, false);
        let taken = |status: &str, created: i64| {
            let mut body = payment_intent(json!("cus_1"), Value::Null, false);
            body["data"]["object"]["status"] = json!(status);
            let row =
                payments::payment_intent_row_of(&body["data"]["object"], scope, created).unwrap();
            let id = body["data"]["object"]["id"].as_str().unwrap().to_owned();
            Taken {
                key: (scope, id),
                row,
            }
        };
        let read = |t: &Taken| read_payment_intent(&c, &t.key).unwrap().unwrap();
        c.execute_batch("BEGIN").unwrap();
        // Another table's rowid first (3, where the payment intent's will be 1), as the writer
        // inserts the event before applying it.
        c.execute_batch("CREATE TEMP TABLE other (x); INSERT INTO other VALUES (1), (2), (3)")
            .unwrap();
        let first = taken("processing", 10);
        let inserted = upsert_payment_intent(&c, &first).unwrap().unwrap();
        assert_eq!(inserted, read(&first));
        assert_eq!(c.last_insert_rowid(), inserted.id);
        c.execute(
            "UPDATE payment_intents SET disputed = 1, created_at = 5 WHERE id = ?1",
            [inserted.id],
        )
        .unwrap();

        let newer = taken("succeeded", 20);
        let updated = upsert_payment_intent(&c, &newer).unwrap().unwrap();
        assert_eq!(c.last_insert_rowid(), inserted.id, "an update moved it");
        assert_eq!(updated, read(&newer));
        assert_eq!(
            (
                updated.id,
                updated.status.as_str(),
                updated.disputed,
                updated.created_at
            ),
            (inserted.id, "succeeded", true, 5)
        );
        assert!(
            upsert_payment_intent(&c, &taken("processing", 15))
                .unwrap()
                .is_none()
        );

        // Another payment intent after the update: a fresh row again, as built.
        let mut second = taken("succeeded", 30);
        second.key.1 = "pi_second".into();
        second.row.stripe_id = ActiveValue::Set("pi_second".into());
        let fresh = upsert_payment_intent(&c, &second).unwrap().unwrap();
        assert_ne!(fresh.id, inserted.id);
        assert_eq!(fresh, read(&second));
        c.execute_batch("COMMIT").unwrap();
        drop(c);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The payment intent is read back with the columns in `Column::iter()`'s order, by its
    /// key in the order it is bound, and each variant's number is its place there: what
    /// [`payment_intent_of`] reads by.
    #[test]
    fn a_payment_intent_is_read_by_position() {
        use sea_orm::IdenStatic;
        for (i, c) in payment_intent::Column::iter().enumerate() {
            assert_eq!(c as usize, i, "{c:?}");
        }
        let col = |c: &str| format!("\"payment_intents\".\"{c}\"");
        let names: Vec<String> = payment_intent::Column::iter()
            .map(|c| col(c.as_str()))
            .collect();
        assert_eq!(
            &*select_payment_intent(),
            format!(
                "SELECT {} FROM \"payment_intents\" WHERE {} = ? AND {} = ? AND {} = ?",
                names.join(", "),
                col("company_pk"),
                col("livemode"),
                col("stripe_id"),
            )
        );
    }

    /// A statement made by [`statement`] is the one sea-query builds, SQL and values, for rows
    /// of one shape with different values (a later row reuses the first one's rendering), and
    /// for a row that sets other columns.
    #[test]
    fn a_statement_is_what_sea_query_builds() {
        let scope = Scope::of_livemode(7, true);
        let failed = json!({"id": "pi_2", "status": "requires_payment_method", "amount": 900,
            "currency": "usd", "customer": {"id": "cus_9"},
            "last_payment_error": {"code": "card_declined", "message": "declined"}});
        let rows = [
            payments::payment_intent_row_of(
                &payment_intent(Value::Null, Value::Null, false)["data"]["object"],
                scope,
                5,
            )
            .unwrap(),
            payments::payment_intent_row_of(&failed, Scope::of_livemode(8, false), 6).unwrap(),
            payment_intent::ActiveModel {
                id: Set(41),
                ..payments::payment_intent_row_of(&failed, scope, 7).unwrap()
            },
        ];
        for row in rows {
            let (sql, values) = upsert_of(row.clone()).build(SqliteQueryBuilder);
            let made = statement("test_upsert", &row, upsert_of).unwrap();
            assert_eq!(
                (&*made.0, made.1),
                (sql.as_str(), bind_all(&values).unwrap())
            );
        }
        let messages = ["m1", "m2"].map(|key| {
            outbox::message(
                scope,
                "payment.succeeded",
                key.into(),
                &json!({"id": key}),
                false,
                "acme",
            )
        });
        for m in messages {
            let row = notification_message::ActiveModel::from(m);
            let (sql, values) = message_insert_of(row.clone()).build(SqliteQueryBuilder);
            let made = statement("test_message", &row, message_insert_of).unwrap();
            assert_eq!(
                (&*made.0, made.1),
                (sql.as_str(), bind_all(&values).unwrap())
            );
        }
    }
}
