//! The outbox: what Paygate tells a company's own systems (issue 5).
//!
//! Policy:
//! - A message is written with `emit`, on the connection of the change that caused it (the
//!   worker's transaction, or a transaction of the caller's), so no change is ever without its
//!   message and no message is ever sent for a change that rolled back.
//! - One domain change, one message: every message has a `dedupe_key` unique per company, built
//!   from what changed (an order reaching a status happens once; a dispute update is keyed by
//!   the Stripe event that carried it), so repeated and replayed Stripe events, and two replicas
//!   racing, write it once (`ON CONFLICT DO NOTHING`).
//! - The deliveries (one per enabled endpoint that wants the type, and the shopper's e-mail when
//!   the company asked for it) are written with the message; delivery workers send them.
//!
//! - A message has the mode of the change it is about (`livemode`), and its dedupe key is
//!   unique within that mode: test traffic never writes, replaces or suppresses a live message.
//!
//! Message shape (version 1, documented in `docs/api.md`): `{"id", "type", "version": 1,
//! "created_at", "livemode", "test_event", "company_id", "data": {"object": …}}`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sea_orm::sea_query::{Expr, ExprTrait, JoinType, OnConflict, Query};
use sea_orm::{Condition, ConnectionTrait, DbErr, EntityTrait, Set};
use serde_json::{Value, json};

use paygate_db::chunked;

use paygate_db::entities::{
    company, dispute, notification_delivery, notification_endpoint, notification_message,
    notification_settings, order, payment_intent, stripe_account,
};
use paygate_db::{NotificationStatus, OrderStatus, Scope, new_ordered_id, now_ms};
use paygate_web::{rfc3339_ms, rfc3339_s};
use paygate_wire::EventType;

/// The message about a changed Stripe account (it shares Stripe's name for the event).
pub const ACCOUNT_UPDATED: &str = EventType::AccountUpdated.as_str();

/// The message about a refund that failed (it shares Stripe's name for the event).
pub const REFUND_FAILED: &str = EventType::RefundFailed.as_str();

/// The message about a paid invoice (it shares Stripe's name for the event).
pub const INVOICE_PAID: &str = EventType::InvoicePaid.as_str();

/// The message about a failed invoice payment (it shares Stripe's name for the event).
pub const INVOICE_PAYMENT_FAILED: &str = EventType::InvoicePaymentFailed.as_str();

/// Every type of message Paygate emits (besides `ping`, the test message).
pub const MESSAGE_TYPES: &[&str] = &[
    "order.paid",
    "order.fulfilled",
    "order.payment_failed",
    "order.expired",
    "order.canceled",
    "payment.succeeded",
    "payment.failed",
    "payment.canceled",
    "payment.amount_capturable_updated",
    "dispute.opened",
    "dispute.updated",
    "dispute.closed",
    "dispute.funds_withdrawn",
    "dispute.funds_reinstated",
    "dispute.due_soon",
    "order.refunded",
    REFUND_FAILED,
    "order.fraud_warning",
    ACCOUNT_UPDATED,
    // Issue 19: subscriptions and invoices.
    "subscription.created",
    "subscription.updated",
    "subscription.ended",
    "subscription.trial_will_end",
    INVOICE_PAID,
    INVOICE_PAYMENT_FAILED,
    // Issue 17: Paygate's own, the Stripe connection's state changed.
    "paygate.stripe_connection.changed",
];

/// The version of the message shape.
pub const MESSAGE_VERSION: i64 = 1;

/// A message to write.
#[derive(Debug)]
pub struct Emit<'a> {
    /// The company and the mode of the change: the message has the mode of what it is about.
    pub scope: Scope,
    pub event_type: &'a str,
    /// What makes this change unique (see the module policy).
    pub dedupe_key: String,
    pub object: Value,
    /// A shopper to e-mail about it too (address, language), if the company asked for that.
    pub shopper: Option<(String, Option<String>)>,
    /// The unit of work's batch of messages, if it has one.
    pub batch: Option<&'a OutboxBatch>,
    /// Caused by the back office's *Send test event* (`"test_event": true` in the message).
    pub test_event: bool,
}

/// Whether an endpoint listening to `types` (a JSON array; empty is every type) wants
/// `event_type`.
pub fn wants(types: &str, event_type: &str) -> bool {
    match serde_json::from_str::<Vec<String>>(types) {
        Ok(v) => v.is_empty() || v.iter().any(|t| t == event_type || t == "*"),
        Err(_) => false,
    }
}

/// A company's public id and its enabled endpoints (id, wanted types), as read for a message
/// ([`recipients_query`]).
#[derive(Debug)]
pub struct CompanyRecipients {
    pub company_id: String,
    pub endpoints: Vec<(String, String)>,
}

impl CompanyRecipients {
    /// The recipients from the rows of [`recipients_query`] (company id, endpoint id, wanted
    /// types); `None` when there is no row (the company is gone).
    pub fn from_rows<E>(
        rows: impl IntoIterator<Item = Result<(String, Option<String>, Option<String>), E>>,
    ) -> Result<Option<Self>, E> {
        let mut found: Option<Self> = None;
        for row in rows {
            let (company_id, id, types) = row?;
            let to = found.get_or_insert_with(|| Self {
                company_id,
                endpoints: Vec::new(),
            });
            if let (Some(id), Some(types)) = (id, types) {
                to.endpoints.push((id, types));
            }
        }
        Ok(found)
    }

    /// A pending delivery of message `id` to each endpoint that wants `event_type`.
    pub fn webhook_deliveries<'a>(
        &'a self,
        id: &'a str,
        company_pk: i64,
        event_type: &'a str,
        now: i64,
    ) -> impl Iterator<Item = notification_delivery::ActiveModel> + 'a {
        self.endpoints
            .iter()
            .filter(move |(_, types)| wants(types, event_type))
            .map(move |(endpoint_id, _)| {
                delivery(
                    id,
                    company_pk,
                    "webhook",
                    Some(endpoint_id.clone()),
                    None,
                    None,
                    now,
                )
            })
    }
}

/// The messages of one unit of work (the worker's batch transaction), written together just
/// before it commits: one multi-row `INSERT` for all of them instead of one per message, and
/// each company's recipients read once. Only for work inside one transaction: on SQLite nothing
/// else runs meanwhile; on PostgreSQL an endpoint added during the batch is as if added just
/// after it.
#[derive(Debug, Default)]
pub struct OutboxBatch {
    recipients: Mutex<HashMap<i64, Arc<CompanyRecipients>>>,
    pending: Mutex<Vec<Pending>>,
}

/// A message waiting for its batch to be written.
#[derive(Debug)]
struct Pending {
    message: notification_message::Model,
    recipients: Arc<CompanyRecipients>,
}

impl OutboxBatch {
    fn recipients(&self, company_pk: i64) -> Option<Arc<CompanyRecipients>> {
        lock(&self.recipients).get(&company_pk).cloned()
    }

    fn remember(&self, company_pk: i64, r: Arc<CompanyRecipients>) {
        lock(&self.recipients).insert(company_pk, r);
    }

    /// Writes the waiting messages (a repeat of a message recorded before is skipped, as by
    /// [`emit`]) and the deliveries of the new ones; returns how many were new.
    pub async fn flush<C: ConnectionTrait>(&self, db: &C) -> Result<usize, DbErr> {
        let mut pending = std::mem::take(&mut *lock(&self.pending));
        // In key order, so workers writing the same message lock it in the same order.
        pending.sort_by(|a, b| {
            let key =
                |m: &notification_message::Model| (m.company_pk, m.livemode, m.dedupe_key.clone());
            key(&a.message).cmp(&key(&b.message))
        });
        let mut new_ids: HashSet<String> = HashSet::new();
        for chunk in chunked(&pending) {
            let rows = chunk
                .iter()
                .map(|p| notification_message::ActiveModel::from(p.message.clone()));
            let inserted = notification_message::Entity::insert_many(rows)
                .on_conflict(dedupe_conflict())
                .exec_with_returning_keys(db)
                .await;
            match inserted {
                Ok(ids) => new_ids.extend(ids),
                Err(DbErr::RecordNotInserted) => {}
                Err(e) => return Err(e),
            }
        }
        let deliveries: Vec<notification_delivery::ActiveModel> = pending
            .iter()
            .filter(|p| new_ids.contains(&p.message.id))
            .flat_map(|p| {
                let m = &p.message;
                p.recipients
                    .webhook_deliveries(&m.id, m.company_pk, &m.event_type, m.created_at)
            })
            .collect();
        for chunk in chunked(&deliveries) {
            notification_delivery::Entity::insert_many(chunk.iter().cloned())
                .exec_without_returning(db)
                .await?;
        }
        Ok(new_ids.len())
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One message per change: a repeat of a `(company, mode, dedupe_key)` is not written.
pub fn dedupe_conflict() -> OnConflict {
    OnConflict::columns([
        notification_message::Column::CompanyPk,
        notification_message::Column::Livemode,
        notification_message::Column::DedupeKey,
    ])
    .do_nothing()
    .to_owned()
}

/// The statement reading a company's public id (column 0) and its enabled endpoints (id and
/// wanted types, columns 1 and 2, null when it has none): no row when the company is gone.
pub fn recipients_query(company_pk: i64) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column((company::Entity, company::Column::CompanyId))
        .column((
            notification_endpoint::Entity,
            notification_endpoint::Column::Id,
        ))
        .column((
            notification_endpoint::Entity,
            notification_endpoint::Column::EventTypes,
        ))
        .from(company::Entity)
        .join(
            JoinType::LeftJoin,
            notification_endpoint::Entity,
            Condition::all()
                .add(
                    Expr::col((
                        notification_endpoint::Entity,
                        notification_endpoint::Column::CompanyPk,
                    ))
                    .equals((company::Entity, company::Column::Id)),
                )
                .add(
                    Expr::col((
                        notification_endpoint::Entity,
                        notification_endpoint::Column::Enabled,
                    ))
                    .eq(true),
                ),
        )
        .and_where(Expr::col((company::Entity, company::Column::Id)).eq(company_pk))
        .to_owned()
}

/// Reads a company's public id and enabled endpoints in one statement; `None` when the company
/// is gone.
async fn read_recipients<C: ConnectionTrait>(
    db: &C,
    company_pk: i64,
) -> Result<Option<CompanyRecipients>, DbErr> {
    let q = recipients_query(company_pk);
    let found = db.query_all(&q).await?;
    let rows = found.iter().map(|r| {
        Ok((
            r.try_get_by_index(0)?,
            r.try_get_by_index(1)?,
            r.try_get_by_index(2)?,
        ))
    });
    CompanyRecipients::from_rows(rows)
}

/// A new message (a fresh id, created now) about `object`, a change of `event_type` in `scope`
/// for the company whose public id is `company_id`: the row [`emit`] writes.
///
/// The payload is serialised straight from a struct whose fields are in the order a
/// [`serde_json::Map`] sorts its keys, so it reads exactly as the `json!` object it replaces
/// (`tests::a_message_reads_as_the_map_it_was`); building that map, with `object` copied into
/// it, and dropping it was most of the 8 % of the SQLite intake writer's time this took at
/// 5 000 events/s (docs/benchmarks.md, fifteenth pass).
pub fn message<O: serde::Serialize + ?Sized>(
    scope: Scope,
    event_type: &str,
    dedupe_key: String,
    object: &O,
    test_event: bool,
    company_id: &str,
) -> notification_message::Model {
    #[derive(serde::Serialize)]
    struct Payload<'a, O: ?Sized> {
        company_id: &'a str,
        created_at: String,
        data: Data<'a, O>,
        id: &'a str,
        livemode: bool,
        test_event: bool,
        #[serde(rename = "type")]
        event_type: &'a str,
        version: i64,
    }
    #[derive(serde::Serialize)]
    struct Data<'a, O: ?Sized> {
        object: &'a O,
    }
    let id = new_ordered_id("msg");
    let now = now_ms();
    let payload = Payload {
        company_id,
        created_at: rfc3339_ms(now),
        data: Data { object },
        id: &id,
        livemode: scope.livemode(),
        test_event,
        event_type,
        version: MESSAGE_VERSION,
    };
    // Strings, numbers and `Value`s: serialising them cannot fail.
    let payload = serde_json::to_string(&payload).unwrap_or_default();
    notification_message::Model {
        id,
        company_pk: scope.company_pk(),
        event_type: event_type.to_owned(),
        livemode: scope.livemode(),
        dedupe_key,
        payload,
        created_at: now,
    }
}

/// Writes a message and its deliveries on `db`; returns its id, or `None` when the same change
/// was recorded before. With `e.batch` and no shopper, the message joins the batch instead
/// (written by [`OutboxBatch::flush`] in the same transaction) and its id is returned even if
/// it turns out to be a repeat.
pub async fn emit<C: ConnectionTrait>(db: &C, e: Emit<'_>) -> Result<Option<String>, DbErr> {
    let company_pk = e.scope.company_pk();
    let cached = e.batch.and_then(|b| b.recipients(company_pk));
    let recipients = match cached {
        Some(r) => r,
        None => {
            let Some(r) = read_recipients(db, company_pk).await? else {
                return Ok(None);
            };
            let r = Arc::new(r);
            if let Some(b) = e.batch {
                b.remember(company_pk, r.clone());
            }
            r
        }
    };
    let message = message(
        e.scope,
        e.event_type,
        e.dedupe_key,
        &e.object,
        e.test_event,
        &recipients.company_id,
    );
    let (id, now) = (message.id.clone(), message.created_at);
    if let (Some(batch), None) = (e.batch, &e.shopper) {
        lock(&batch.pending).push(Pending {
            message,
            recipients,
        });
        return Ok(Some(id));
    }
    let r = notification_message::Entity::insert(notification_message::ActiveModel::from(message))
        .on_conflict(dedupe_conflict())
        .exec_without_returning(db)
        .await?;
    if r == 0 {
        return Ok(None);
    }
    let mut rows: Vec<notification_delivery::ActiveModel> = recipients
        .webhook_deliveries(&id, company_pk, e.event_type, now)
        .collect();
    if let Some((to, lang)) = e.shopper {
        let settings = notification_settings::Entity::find_by_id(company_pk)
            .one(db)
            .await?;
        if settings.is_some_and(|s| s.shopper_emails) {
            rows.push(delivery(
                &id,
                company_pk,
                "email",
                None,
                Some(to),
                lang,
                now,
            ));
        }
    }
    if !rows.is_empty() {
        notification_delivery::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
    }
    Ok(Some(id))
}

/// A pending delivery of message `id`.
pub fn delivery(
    id: &str,
    company_pk: i64,
    channel: &str,
    endpoint_id: Option<String>,
    recipient: Option<String>,
    language: Option<String>,
    now: i64,
) -> notification_delivery::ActiveModel {
    notification_delivery::ActiveModel {
        message_id: Set(id.to_owned()),
        company_pk: Set(company_pk),
        channel: Set(channel.to_owned()),
        endpoint_id: Set(endpoint_id),
        recipient: Set(recipient),
        language: Set(language),
        status: Set(NotificationStatus::Pending.as_str().into()),
        attempts: Set(0),
        next_attempt_at: Set(now),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

fn parse_json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

/// The `order` object of messages.
pub fn order_object(o: &order::Model) -> Value {
    json!({
        "object": "order",
        "id": o.id,
        "kind": o.kind,
        "status": o.status,
        "amount": o.amount,
        "currency": o.currency,
        "customer_email": o.customer_email,
        "client_reference_id": o.client_reference_id,
        "checkout_session_id": o.checkout_session_id,
        "payment_intent_id": o.payment_intent_id,
        "charge_id": o.charge_id,
        "source_id": o.source_id,
        "description": o.description,
        "metadata": parse_json(&o.metadata),
        "disputed": o.disputed,
        "amount_refunded": o.amount_refunded,
        "livemode": o.livemode,
        "created_at": rfc3339_ms(o.created_at),
        "fulfilled_at": o.fulfilled_at.map(rfc3339_ms),
    })
}

/// The `payment` object of messages (a Stripe PaymentIntent as Paygate holds it).
pub fn payment_object(p: &payment_intent::Model) -> Value {
    serde_json::to_value(PaymentObject::of(p)).unwrap_or(Value::Null)
}

/// The `payment` object of messages ([`payment_object`]), serialised as it is, without a
/// [`Value`] built first (the SQLite intake's messages). Its fields are in the order a
/// [`serde_json::Map`] sorts its keys: `tests::a_payment_object_reads_as_the_map_it_was`.
#[derive(Debug, serde::Serialize)]
pub struct PaymentObject<'a> {
    amount: i64,
    amount_capturable: i64,
    amount_received: i64,
    cancellation_reason: Option<&'a str>,
    currency: &'a str,
    customer: Option<&'a str>,
    disputed: bool,
    id: &'a str,
    last_payment_error: Option<Value>,
    livemode: bool,
    object: &'static str,
    status: &'a str,
}

impl<'a> PaymentObject<'a> {
    pub fn of(p: &'a payment_intent::Model) -> Self {
        Self {
            amount: p.amount,
            amount_capturable: p.amount_capturable,
            amount_received: p.amount_received,
            cancellation_reason: p.cancellation_reason.as_deref(),
            currency: &p.currency,
            customer: p.customer.as_deref(),
            disputed: p.disputed,
            id: &p.stripe_id,
            last_payment_error: p.last_payment_error.as_deref().map(parse_json),
            livemode: p.livemode,
            object: "payment",
            status: &p.status,
        }
    }
}

/// The `dispute` object of messages.
pub fn dispute_object(d: &dispute::Model) -> Value {
    json!({
        "object": "dispute",
        "id": d.stripe_id,
        "status": d.status,
        "reason": d.reason,
        "amount": d.amount,
        "currency": d.currency,
        "charge_id": d.charge_id,
        "payment_intent_id": d.payment_intent_id,
        "evidence_due_by": d.evidence_due_by.map(rfc3339_s),
        "funds_withdrawn": d.funds_withdrawn,
        "funds_reinstated": d.funds_reinstated,
        "livemode": d.livemode,
    })
}

/// The `account` object of messages.
pub fn account_object(a: &stripe_account::Model) -> Value {
    json!({
        "object": "account",
        "id": a.account_id,
        "charges_enabled": a.charges_enabled,
        "payouts_enabled": a.payouts_enabled,
        "details_submitted": a.details_submitted,
        "requirements_currently_due": parse_json(&a.currently_due),
        "disabled_reason": a.disabled_reason,
        "livemode": a.livemode,
    })
}

/// The message type of an order reaching `status`, if any is sent for it.
pub fn order_message_type(status: OrderStatus) -> Option<&'static str> {
    Some(match status {
        OrderStatus::Paid => "order.paid",
        OrderStatus::Fulfilled => "order.fulfilled",
        OrderStatus::PaymentFailed => "order.payment_failed",
        OrderStatus::Expired => "order.expired",
        OrderStatus::Canceled => "order.canceled",
        // Refunds have messages of their own (`order.refunded`, `refund.failed`), per refund.
        OrderStatus::Open
        | OrderStatus::AwaitingPayment
        | OrderStatus::Charging
        | OrderStatus::PartiallyRefunded
        | OrderStatus::Refunded => return None,
    })
}

#[cfg(test)]
mod tests {
    #![expect(clippy::unwrap_used, reason = "tests fail loudly")]

    use super::*;

    fn payment(
        customer: Option<&str>,
        error: Option<&str>,
        reason: Option<&str>,
    ) -> payment_intent::Model {
        payment_intent::Model {
            id: 7,
            company_pk: 3,
            stripe_id: "pi_3PgafyB7WZ01zgkW1abcdefg".into(),
            livemode: false,
            status: "requires_payment_method".into(),
            amount: 2500,
            amount_capturable: 0,
            amount_received: 0,
            currency: "eur".into(),
            customer: customer.map(str::to_owned),
            last_payment_error: error.map(str::to_owned),
            cancellation_reason: reason.map(str::to_owned),
            disputed: true,
            state_created: 1_722_000_000,
            state_rank: 2,
            created_at: 1,
            updated_at: 2,
        }
    }

    /// The payment object as it was built before it had a struct of its own: a `json!` map.
    fn payment_map(p: &payment_intent::Model) -> Value {
        json!({
            "object": "payment",
            "id": p.stripe_id,
            "status": p.status,
            "amount": p.amount,
            "amount_capturable": p.amount_capturable,
            "amount_received": p.amount_received,
            "currency": p.currency,
            "customer": p.customer,
            "last_payment_error": p.last_payment_error.as_deref().map(parse_json),
            "cancellation_reason": p.cancellation_reason,
            "disputed": p.disputed,
            "livemode": p.livemode,
        })
    }

    /// The same bytes as the map (keys sorted), with and without the optional fields, an error
    /// with nested keys out of order, and text that needs escaping.
    #[test]
    fn a_payment_object_reads_as_the_map_it_was() {
        for p in [
            payment(None, None, None),
            payment(
                Some("cus_\"quoted\" \u{e9}"),
                Some(
                    r#"{"type":"card_error","code":"card_declined","message":"No.","decline_code":"x"}"#,
                ),
                Some("abandoned"),
            ),
            payment(Some("cus_1"), Some("not json"), None),
        ] {
            let map = payment_map(&p);
            assert_eq!(
                serde_json::to_string(&PaymentObject::of(&p)).unwrap(),
                map.to_string()
            );
            assert_eq!(payment_object(&p), map);
        }
    }

    /// A message's payload is the map it was built as before, byte for byte, whatever the
    /// object: a `Value` or the payment object's struct.
    #[test]
    fn a_message_reads_as_the_map_it_was() {
        let p = payment(Some("cus_1"), None, None);
        for (livemode, test_event) in [(false, false), (false, true), (true, false)] {
            let scope = Scope::of_livemode(3, livemode);
            let m = message(
                scope,
                "payment.failed",
                "k".into(),
                &PaymentObject::of(&p),
                test_event,
                "acme",
            );
            let v = message(
                scope,
                "payment.failed",
                "k".into(),
                &payment_map(&p),
                test_event,
                "acme",
            );
            let stored: Value = serde_json::from_str(&m.payload).unwrap();
            let map = json!({
                "id": m.id,
                "type": "payment.failed",
                "version": MESSAGE_VERSION,
                "created_at": stored["created_at"],
                "livemode": livemode,
                "test_event": test_event,
                "company_id": "acme",
                "data": {"object": payment_map(&p)},
            });
            assert_eq!(m.payload, map.to_string());
            assert_eq!(v.payload.len(), m.payload.len());
            assert_eq!(stored["created_at"], json!(rfc3339_ms(m.created_at)));
        }
    }

    #[test]
    fn endpoints_want_their_types_or_all() {
        assert!(wants("[]", "order.paid"));
        assert!(wants(r#"["order.paid"]"#, "order.paid"));
        assert!(!wants(r#"["order.paid"]"#, "order.fulfilled"));
        assert!(wants(r#"["*"]"#, "dispute.closed"));
        assert!(!wants("not json", "order.paid"));
    }
}
