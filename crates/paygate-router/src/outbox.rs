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
//! Message shape (version 1, documented in `docs/api.md`): `{"id", "type", "version": 1,
//! "created_at", "livemode", "company_id", "data": {"object": …}}`.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use paygate_db::entities::{
    company, dispute, notification_delivery, notification_endpoint, notification_message,
    notification_settings, order, payment_intent, stripe_account,
};
use paygate_db::{new_id, now_ms};
use paygate_web::{rfc3339_ms, rfc3339_s};

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
    "account.updated",
];

/// The version of the message shape.
pub const MESSAGE_VERSION: i64 = 1;

/// A message to write.
#[derive(Debug)]
pub struct Emit<'a> {
    pub company_pk: i64,
    pub livemode: bool,
    pub event_type: &'a str,
    /// What makes this change unique (see the module policy).
    pub dedupe_key: String,
    pub object: Value,
    /// A shopper to e-mail about it too (address, language), if the company asked for that.
    pub shopper: Option<(String, Option<String>)>,
}

/// Whether an endpoint listening to `types` (a JSON array; empty is every type) wants
/// `event_type`.
pub fn wants(types: &str, event_type: &str) -> bool {
    match serde_json::from_str::<Vec<String>>(types) {
        Ok(v) => v.is_empty() || v.iter().any(|t| t == event_type || t == "*"),
        Err(_) => false,
    }
}

/// Writes a message and its deliveries on `db`; returns its id, or `None` when the same change
/// was recorded before.
pub async fn emit<C: ConnectionTrait>(db: &C, e: Emit<'_>) -> Result<Option<String>, DbErr> {
    let Some(c) = company::Entity::find_by_id(e.company_pk).one(db).await? else {
        return Ok(None);
    };
    let id = new_id("msg");
    let now = now_ms();
    let payload = json!({
        "id": id,
        "type": e.event_type,
        "version": MESSAGE_VERSION,
        "created_at": rfc3339_ms(now),
        "livemode": e.livemode,
        "company_id": c.company_id,
        "data": {"object": e.object},
    });
    let r = notification_message::Entity::insert(notification_message::ActiveModel {
        id: Set(id.clone()),
        company_pk: Set(e.company_pk),
        event_type: Set(e.event_type.to_owned()),
        livemode: Set(e.livemode),
        dedupe_key: Set(e.dedupe_key),
        payload: Set(payload.to_string()),
        created_at: Set(now),
    })
    .on_conflict(
        OnConflict::columns([
            notification_message::Column::CompanyPk,
            notification_message::Column::DedupeKey,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    if r == 0 {
        return Ok(None);
    }
    let endpoints = notification_endpoint::Entity::find()
        .filter(notification_endpoint::Column::CompanyPk.eq(e.company_pk))
        .filter(notification_endpoint::Column::Enabled.eq(true))
        .all(db)
        .await?;
    let mut rows: Vec<notification_delivery::ActiveModel> = endpoints
        .iter()
        .filter(|ep| wants(&ep.event_types, e.event_type))
        .map(|ep| {
            delivery(
                &id,
                e.company_pk,
                "webhook",
                Some(ep.id.clone()),
                None,
                None,
                now,
            )
        })
        .collect();
    if let Some((to, lang)) = e.shopper {
        let settings = notification_settings::Entity::find_by_id(e.company_pk)
            .one(db)
            .await?;
        if settings.is_some_and(|s| s.shopper_emails) {
            rows.push(delivery(
                &id,
                e.company_pk,
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
        status: Set("pending".into()),
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
        "livemode": o.livemode,
        "created_at": rfc3339_ms(o.created_at),
        "fulfilled_at": o.fulfilled_at.map(rfc3339_ms),
    })
}

/// The `payment` object of messages (a Stripe PaymentIntent as Paygate holds it).
pub fn payment_object(p: &payment_intent::Model) -> Value {
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
pub fn order_message_type(status: &str) -> Option<&'static str> {
    Some(match status {
        "paid" => "order.paid",
        "fulfilled" => "order.fulfilled",
        "payment_failed" => "order.payment_failed",
        "expired" => "order.expired",
        "canceled" => "order.canceled",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_want_their_types_or_all() {
        assert!(wants("[]", "order.paid"));
        assert!(wants(r#"["order.paid"]"#, "order.paid"));
        assert!(!wants(r#"["order.paid"]"#, "order.fulfilled"));
        assert!(wants(r#"["*"]"#, "dispute.closed"));
        assert!(!wants("not json", "order.paid"));
    }
}
