//! Issue 19: `customer.*`, `customer.subscription.*` and `invoice.*` keep the `customers`,
//! `subscriptions` and `invoices` read models, and tell the company (and its shoppers) what
//! happened.
//!
//! Forward-only like every other object (see `lifecycle`): a row keeps the `created` of the
//! newest event applied (`last_event_created`); an older event changes nothing, the same one
//! again changes nothing, and an ending status (a subscription `canceled`/`incomplete_expired`,
//! an invoice `paid`/`void`) is never replaced by a non-ending one. Ties on `created` go to the
//! status further along its lifecycle. A deleted customer stays deleted; an invoice's attempt
//! count only grows.
//!
//! Shapes of every API version are read: a subscription's current period sits on the
//! subscription (before 2025-03-31) or on each item (since, "basil"); an invoice's subscription
//! is top-level (before) or under `parent.subscription_details` (since); items carry `price` or
//! only the older `plan`; expandable fields come as an id or the object.
//!
//! Messages (each written once, keyed by what changed): `subscription.created` (per
//! subscription), `subscription.updated` (per event that changed it), `subscription.ended` (per
//! subscription, when it reaches `canceled`, `unpaid` or `incomplete_expired`),
//! `subscription.trial_will_end` (per subscription and trial end; with an e-mail to the shopper
//! when the company sends shopper e-mails), `invoice.paid` (per invoice; `invoice.paid` and the
//! older `invoice.payment_succeeded` alike) and `invoice.payment_failed` (per invoice and
//! attempt; with the dunning e-mail when the company's billing settings choose that attempt and
//! the invoice is still unpaid). `invoice.upcoming` is a preview without an id: nothing is
//! recorded or sent (it is `Ignored`, visible in the inbox).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, TransactionTrait};
use serde_json::{Value, json};

use paygate_db::entities::{billing_settings, customer, invoice, subscription};
use paygate_db::{Scope, now_ms};
use paygate_notify::outbox;
use paygate_web::rfc3339_s;
use paygate_wire::EventType;

use super::context::{HandlerCtx, HandlerError, HandlerResult, Outcome, id_of};
use crate::lifecycle::{self, Applied};

/// The message types of this module.
pub const SUBSCRIPTION_CREATED: &str = "subscription.created";
pub const SUBSCRIPTION_UPDATED: &str = "subscription.updated";
pub const SUBSCRIPTION_ENDED: &str = "subscription.ended";
pub const SUBSCRIPTION_TRIAL_WILL_END: &str = "subscription.trial_will_end";
/// It shares Stripe's name for the event (`invoice.payment_succeeded` gives it too).
pub const INVOICE_PAID: &str = EventType::InvoicePaid.as_str();
/// It shares Stripe's name for the event.
pub const INVOICE_PAYMENT_FAILED: &str = EventType::InvoicePaymentFailed.as_str();

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The rank of a subscription status in its lifecycle, and whether it ends it.
pub fn subscription_rank(status: &str) -> (i32, bool) {
    match status {
        "incomplete" => (0, false),
        "trialing" => (1, false),
        "active" => (2, false),
        "paused" => (3, false),
        "past_due" => (4, false),
        "unpaid" => (5, false),
        "incomplete_expired" => (6, true),
        "canceled" => (7, true),
        _ => (-1, false),
    }
}

/// The rank of an invoice status in its lifecycle, and whether it ends it.
pub fn invoice_rank(status: &str) -> (i32, bool) {
    match status {
        "draft" => (0, false),
        "open" => (1, false),
        "uncollectible" => (2, false),
        "void" => (3, true),
        "paid" => (4, true),
        _ => (-1, false),
    }
}

/// Whether (`new`, `new_created`) replaces (`old`, `old_created`): an ending status is only
/// replaced by a newer ending one; otherwise (created, rank) must grow.
fn newer(
    rank: fn(&str) -> (i32, bool),
    old: &str,
    old_created: i64,
    new: &str,
    new_created: i64,
) -> bool {
    let ((old_r, old_t), (new_r, new_t)) = (rank(old), rank(new));
    if old_t && !new_t {
        return false;
    }
    if new_t && !old_t {
        return true;
    }
    (new_created, new_r) > (old_created, old_r)
}

/// Whether a subscription in `status` has ended for good (or stopped being paid).
pub fn subscription_ended(status: &str) -> bool {
    matches!(status, "canceled" | "unpaid" | "incomplete_expired")
}

// ---------------------------------------------------------------------------------------------
// customers

/// `customer.created`, `customer.updated`, `customer.deleted`.
pub async fn customer<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
    kind: EventType,
) -> HandlerResult {
    let o = ctx.object;
    let id = ctx.str("id")?.to_owned();
    let deleted = kind == EventType::CustomerDeleted || o["deleted"].as_bool() == Some(true);
    let email = opt_str(&o["email"]);
    let name = opt_str(&o["name"]);
    let locale = o["preferred_locales"]
        .as_array()
        .and_then(|l| l.first())
        .and_then(opt_str);
    let stub = o.get("email").is_none() && o.get("preferred_locales").is_none();
    let created = ctx.event.created;
    let stripe_created = o["created"].as_i64().unwrap_or(created);
    let scope = ctx.scope;
    lifecycle::apply_forward(
        ctx.db,
        scope
            .customers()
            .filter(customer::Column::StripeCustomerId.eq(&id)),
        [
            customer::Column::CompanyPk,
            customer::Column::Livemode,
            customer::Column::StripeCustomerId,
        ],
        || customer::ActiveModel {
            company_pk: Set(scope.company_pk()),
            livemode: Set(scope.livemode()),
            stripe_customer_id: Set(id.clone()),
            email: Set(email.clone()),
            name: Set(name.clone()),
            locale: Set(locale.clone()),
            deleted: Set(deleted),
            stripe_created: Set(stripe_created),
            last_event_created: Set(if stub { 0 } else { created }),
            updated_at: Set(now_ms()),
            ..Default::default()
        },
        |cur| {
            // A deleted customer's stub (`{"id", "deleted": true}`) says nothing of the rest and
            // moves no time forward (an older event's details still fill in): it only deletes.
            if stub {
                return (!cur.deleted).then(|| {
                    scope
                        .update::<customer::Entity>()
                        .col_expr(customer::Column::Deleted, Expr::value(true))
                        .col_expr(customer::Column::UpdatedAt, Expr::value(now_ms()))
                });
            }
            let is_newer = created > cur.last_event_created;
            // Deleted only ever goes true.
            let grows = deleted && !cur.deleted;
            if !is_newer && !grows {
                return None;
            }
            let mut q = scope
                .update::<customer::Entity>()
                .col_expr(
                    customer::Column::Deleted,
                    Expr::value(cur.deleted || deleted),
                )
                .col_expr(customer::Column::UpdatedAt, Expr::value(now_ms()));
            if is_newer {
                q = q
                    .col_expr(customer::Column::Email, Expr::value(email.clone()))
                    .col_expr(customer::Column::Name, Expr::value(name.clone()))
                    .col_expr(customer::Column::Locale, Expr::value(locale.clone()))
                    .col_expr(customer::Column::LastEventCreated, Expr::value(created))
                    .col_expr(
                        customer::Column::StripeCreated,
                        Expr::value(o["created"].as_i64().unwrap_or(cur.stripe_created)),
                    );
            }
            Some(q)
        },
    )
    .await?;
    Ok(Outcome::Processed)
}

// ---------------------------------------------------------------------------------------------
// subscriptions

/// A subscription as read from a payload of any API version.
#[derive(Clone, Debug)]
struct SubState {
    id: String,
    customer: String,
    status: String,
    items_json: String,
    currency: Option<String>,
    period_start: Option<i64>,
    period_end: Option<i64>,
    trial_end: Option<i64>,
    cancel_at_period_end: bool,
    cancel_at: Option<i64>,
    canceled_at: Option<i64>,
    ended_at: Option<i64>,
    pause_collection: Option<String>,
    latest_invoice: Option<String>,
    stripe_created: i64,
}

/// The items of a subscription (`items.data`), each `{id, price, product, quantity,
/// unit_amount, currency, interval}`; older versions name the price `plan` (with `amount`).
fn items_of(o: &Value) -> Vec<Value> {
    o["items"]["data"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|it| {
            let price = if it["price"].is_null() {
                &it["plan"]
            } else {
                &it["price"]
            };
            let unit_amount = price["unit_amount"]
                .as_i64()
                .or_else(|| price["amount"].as_i64());
            let interval = price["recurring"]["interval"]
                .as_str()
                .or_else(|| price["interval"].as_str());
            json!({
                "id": it["id"].as_str(),
                "price": id_of(price),
                "product": id_of(&price["product"]),
                "quantity": it["quantity"].as_i64(),
                "unit_amount": unit_amount,
                "currency": price["currency"].as_str(),
                "interval": interval,
            })
        })
        .collect()
}

impl SubState {
    fn of(o: &Value, status_override: Option<&str>) -> Option<Self> {
        let id = o["id"].as_str()?.to_owned();
        let status = status_override.or_else(|| o["status"].as_str())?.to_owned();
        let items = items_of(o);
        let raw_items = o["items"]["data"].as_array();
        // Since 2025-03-31 the period is per item: the subscription's is the first item's.
        let item_field = |f: &str| raw_items.and_then(|a| a.iter().find_map(|it| it[f].as_i64()));
        let currency = opt_str(&o["currency"]).or_else(|| {
            items
                .iter()
                .find_map(|i| i["currency"].as_str().map(str::to_owned))
        });
        Some(SubState {
            id,
            customer: id_of(&o["customer"]).unwrap_or_default(),
            status,
            items_json: Value::Array(items).to_string(),
            currency,
            period_start: o["current_period_start"]
                .as_i64()
                .or_else(|| item_field("current_period_start")),
            period_end: o["current_period_end"]
                .as_i64()
                .or_else(|| item_field("current_period_end")),
            trial_end: o["trial_end"].as_i64(),
            cancel_at_period_end: o["cancel_at_period_end"].as_bool().unwrap_or(false),
            cancel_at: o["cancel_at"].as_i64(),
            canceled_at: o["canceled_at"].as_i64(),
            ended_at: o["ended_at"].as_i64(),
            pause_collection: o["pause_collection"]["behavior"]
                .as_str()
                .map(str::to_owned),
            latest_invoice: id_of(&o["latest_invoice"]),
            stripe_created: o["created"].as_i64().unwrap_or(0),
        })
    }
}

/// `customer.subscription.*`.
pub async fn subscription<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
    kind: EventType,
) -> HandlerResult {
    ctx.str("id")?;
    ctx.str("status")?;
    // A `deleted` subscription has ended whatever else its object says.
    let forced = (kind == EventType::CustomerSubscriptionDeleted
        && !matches!(
            ctx.object["status"].as_str(),
            Some("canceled" | "incomplete_expired")
        ))
    .then_some("canceled");
    let Some(s) = SubState::of(ctx.object, forced) else {
        return Err(HandlerError::Payload(
            "data.object is not a subscription".into(),
        ));
    };
    let created = ctx.event.created;
    let scope = ctx.scope;
    let find = scope
        .subscriptions()
        .filter(subscription::Column::StripeSubscriptionId.eq(&s.id));
    let applied = lifecycle::apply_forward(
        ctx.db,
        find.clone(),
        [
            subscription::Column::CompanyPk,
            subscription::Column::Livemode,
            subscription::Column::StripeSubscriptionId,
        ],
        || subscription::ActiveModel {
            company_pk: Set(scope.company_pk()),
            livemode: Set(scope.livemode()),
            stripe_subscription_id: Set(s.id.clone()),
            stripe_customer_id: Set(s.customer.clone()),
            status: Set(s.status.clone()),
            items_json: Set(s.items_json.clone()),
            currency: Set(s.currency.clone()),
            current_period_start: Set(s.period_start),
            current_period_end: Set(s.period_end),
            trial_end: Set(s.trial_end),
            cancel_at_period_end: Set(s.cancel_at_period_end),
            cancel_at: Set(s.cancel_at),
            canceled_at: Set(s.canceled_at),
            ended_at: Set(s.ended_at),
            pause_collection: Set(s.pause_collection.clone()),
            latest_invoice_id: Set(s.latest_invoice.clone()),
            stripe_created: Set(s.stripe_created),
            last_event_created: Set(created),
            updated_at: Set(now_ms()),
            ..Default::default()
        },
        |cur| {
            if !newer(
                subscription_rank,
                &cur.status,
                cur.last_event_created,
                &s.status,
                created,
            ) {
                return None;
            }
            Some(
                scope
                    .update::<subscription::Entity>()
                    .col_expr(
                        subscription::Column::StripeCustomerId,
                        Expr::value(s.customer.clone()),
                    )
                    .col_expr(subscription::Column::Status, Expr::value(s.status.clone()))
                    .col_expr(
                        subscription::Column::ItemsJson,
                        Expr::value(s.items_json.clone()),
                    )
                    .col_expr(
                        subscription::Column::Currency,
                        Expr::value(s.currency.clone()),
                    )
                    .col_expr(
                        subscription::Column::CurrentPeriodStart,
                        Expr::value(s.period_start),
                    )
                    .col_expr(
                        subscription::Column::CurrentPeriodEnd,
                        Expr::value(s.period_end),
                    )
                    .col_expr(subscription::Column::TrialEnd, Expr::value(s.trial_end))
                    .col_expr(
                        subscription::Column::CancelAtPeriodEnd,
                        Expr::value(s.cancel_at_period_end),
                    )
                    .col_expr(subscription::Column::CancelAt, Expr::value(s.cancel_at))
                    .col_expr(subscription::Column::CanceledAt, Expr::value(s.canceled_at))
                    .col_expr(subscription::Column::EndedAt, Expr::value(s.ended_at))
                    .col_expr(
                        subscription::Column::PauseCollection,
                        Expr::value(s.pause_collection.clone()),
                    )
                    .col_expr(
                        subscription::Column::LatestInvoiceId,
                        Expr::value(s.latest_invoice.clone()),
                    )
                    .col_expr(
                        subscription::Column::StripeCreated,
                        Expr::value(s.stripe_created.max(cur.stripe_created)),
                    )
                    .col_expr(subscription::Column::LastEventCreated, Expr::value(created))
                    .col_expr(subscription::Column::UpdatedAt, Expr::value(now_ms())),
            )
        },
    )
    .await?;
    let Some(row) = find.one(ctx.db).await? else {
        return Ok(Outcome::Processed);
    };
    let object = subscription_object(&row);
    let test_event = ctx.event.is_test_event();
    let emit = |t: &'static str, key: String, shopper: Option<(String, Option<String>)>| {
        let object = object.clone();
        async move {
            outbox::emit(
                ctx.db,
                outbox::Emit {
                    scope,
                    event_type: t,
                    dedupe_key: key,
                    object,
                    shopper,
                    batch: None,
                    test_event,
                },
            )
            .await
        }
    };
    if kind == EventType::CustomerSubscriptionCreated {
        emit(
            SUBSCRIPTION_CREATED,
            format!("{SUBSCRIPTION_CREATED}:{}", s.id),
            None,
        )
        .await?;
    } else if applied.wrote()
        && !matches!(applied, Applied::Inserted)
        && matches!(
            kind,
            EventType::CustomerSubscriptionUpdated
                | EventType::CustomerSubscriptionPaused
                | EventType::CustomerSubscriptionResumed
        )
    {
        emit(
            SUBSCRIPTION_UPDATED,
            format!("{SUBSCRIPTION_UPDATED}:{}", ctx.event.id),
            None,
        )
        .await?;
    } else if matches!(applied, Applied::Inserted)
        && kind != EventType::CustomerSubscriptionTrialWillEnd
        && kind != EventType::CustomerSubscriptionDeleted
    {
        // The first news of it was an update: it changed Paygate's view all the same.
        emit(
            SUBSCRIPTION_UPDATED,
            format!("{SUBSCRIPTION_UPDATED}:{}", ctx.event.id),
            None,
        )
        .await?;
    }
    if subscription_ended(&row.status) {
        emit(
            SUBSCRIPTION_ENDED,
            format!("{SUBSCRIPTION_ENDED}:{}", s.id),
            None,
        )
        .await?;
    }
    if kind == EventType::CustomerSubscriptionTrialWillEnd && !subscription_ended(&row.status) {
        let shopper = shopper_of(ctx.db, scope, &s.customer, None, &ctx.object["customer"]).await?;
        emit(
            SUBSCRIPTION_TRIAL_WILL_END,
            format!(
                "{SUBSCRIPTION_TRIAL_WILL_END}:{}:{}",
                s.id,
                s.trial_end.unwrap_or_default()
            ),
            shopper,
        )
        .await?;
    }
    Ok(Outcome::Processed)
}

/// The e-mail address and language of a customer: the `customers` row, else the invoice's
/// `customer_email`, else an expanded customer object.
async fn shopper_of<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    customer_id: &str,
    fallback_email: Option<String>,
    expanded: &Value,
) -> Result<Option<(String, Option<String>)>, sea_orm::DbErr> {
    let row = if customer_id.is_empty() {
        None
    } else {
        scope
            .customers()
            .filter(customer::Column::StripeCustomerId.eq(customer_id))
            .one(db)
            .await?
    };
    let exp_locale = expanded["preferred_locales"]
        .as_array()
        .and_then(|l| l.first())
        .and_then(opt_str);
    let locale = row.as_ref().and_then(|c| c.locale.clone()).or(exp_locale);
    let email = row
        .and_then(|c| c.email)
        .or(fallback_email)
        .or_else(|| opt_str(&expanded["email"]));
    Ok(email.map(|e| (e, locale)))
}

/// The `subscription` object of messages and of the merchant API.
pub fn subscription_object(s: &subscription::Model) -> Value {
    json!({
        "object": "subscription",
        "id": s.stripe_subscription_id,
        "customer": s.stripe_customer_id,
        "status": s.status,
        "items": serde_json::from_str::<Value>(&s.items_json).unwrap_or(Value::Array(vec![])),
        "currency": s.currency,
        "current_period_start": s.current_period_start.map(rfc3339_s),
        "current_period_end": s.current_period_end.map(rfc3339_s),
        "trial_end": s.trial_end.map(rfc3339_s),
        "cancel_at_period_end": s.cancel_at_period_end,
        "cancel_at": s.cancel_at.map(rfc3339_s),
        "canceled_at": s.canceled_at.map(rfc3339_s),
        "ended_at": s.ended_at.map(rfc3339_s),
        "pause_collection": s.pause_collection,
        "latest_invoice": s.latest_invoice_id,
        "livemode": s.livemode,
    })
}

// ---------------------------------------------------------------------------------------------
// invoices

/// The subscription of an invoice: top-level before 2025-03-31, under
/// `parent.subscription_details` since.
fn invoice_subscription(o: &Value) -> Option<String> {
    id_of(&o["subscription"])
        .or_else(|| id_of(&o["parent"]["subscription_details"]["subscription"]))
}

/// `invoice.*` (but `invoice.upcoming`, which has no id: `Ignored`).
pub async fn invoice<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
    kind: EventType,
) -> HandlerResult {
    let o = ctx.object;
    if kind == EventType::InvoiceUpcoming || o["id"].as_str().is_none_or(str::is_empty) {
        return Ok(Outcome::Ignored);
    }
    let id = ctx.str("id")?.to_owned();
    let paid_event = matches!(
        kind,
        EventType::InvoicePaid | EventType::InvoicePaymentSucceeded
    );
    let status = if paid_event {
        "paid".to_owned()
    } else {
        ctx.str("status")?.to_owned()
    };
    let customer_id = id_of(&o["customer"]);
    let sub_id = invoice_subscription(o);
    let number = opt_str(&o["number"]);
    let currency = o["currency"].as_str().unwrap_or_default().to_owned();
    let amount_due = o["amount_due"].as_i64().unwrap_or(0);
    let amount_paid = o["amount_paid"].as_i64().unwrap_or(0);
    let amount_remaining = o["amount_remaining"].as_i64().unwrap_or(0);
    let attempt_count = o["attempt_count"]
        .as_i64()
        .and_then(|a| i32::try_from(a).ok())
        .unwrap_or(0);
    let next_attempt = o["next_payment_attempt"].as_i64();
    let hosted = opt_str(&o["hosted_invoice_url"]);
    let customer_email = opt_str(&o["customer_email"]);
    let billing_reason = opt_str(&o["billing_reason"]);
    let stripe_created = o["created"].as_i64().unwrap_or(0);
    let created = ctx.event.created;
    let scope = ctx.scope;
    let find = scope
        .invoices()
        .filter(invoice::Column::StripeInvoiceId.eq(&id));
    lifecycle::apply_forward(
        ctx.db,
        find.clone(),
        [
            invoice::Column::CompanyPk,
            invoice::Column::Livemode,
            invoice::Column::StripeInvoiceId,
        ],
        || invoice::ActiveModel {
            company_pk: Set(scope.company_pk()),
            livemode: Set(scope.livemode()),
            stripe_invoice_id: Set(id.clone()),
            stripe_customer_id: Set(customer_id.clone()),
            stripe_subscription_id: Set(sub_id.clone()),
            number: Set(number.clone()),
            status: Set(status.clone()),
            currency: Set(currency.clone()),
            amount_due: Set(amount_due),
            amount_paid: Set(amount_paid),
            amount_remaining: Set(amount_remaining),
            attempt_count: Set(attempt_count),
            next_payment_attempt: Set(next_attempt),
            hosted_invoice_url: Set(hosted.clone()),
            customer_email: Set(customer_email.clone()),
            billing_reason: Set(billing_reason.clone()),
            stripe_created: Set(stripe_created),
            last_event_created: Set(created),
            updated_at: Set(now_ms()),
            ..Default::default()
        },
        |cur| {
            let is_newer = newer(
                invoice_rank,
                &cur.status,
                cur.last_event_created,
                &status,
                created,
            );
            let grows = attempt_count > cur.attempt_count;
            // Facts learnt late fill gaps (a number, a link), never blank them.
            let fills = (cur.number.is_none() && number.is_some())
                || (cur.hosted_invoice_url.is_none() && hosted.is_some())
                || (cur.stripe_subscription_id.is_none() && sub_id.is_some());
            if !is_newer && !grows && !fills {
                return None;
            }
            let mut q = scope
                .update::<invoice::Entity>()
                .col_expr(
                    invoice::Column::AttemptCount,
                    Expr::value(cur.attempt_count.max(attempt_count)),
                )
                .col_expr(
                    invoice::Column::Number,
                    Expr::value(cur.number.clone().or(number.clone())),
                )
                .col_expr(
                    invoice::Column::HostedInvoiceUrl,
                    Expr::value(hosted.clone().or(cur.hosted_invoice_url.clone())),
                )
                .col_expr(
                    invoice::Column::StripeSubscriptionId,
                    Expr::value(cur.stripe_subscription_id.clone().or(sub_id.clone())),
                )
                .col_expr(invoice::Column::UpdatedAt, Expr::value(now_ms()));
            if is_newer {
                q = q
                    .col_expr(invoice::Column::Status, Expr::value(status.clone()))
                    .col_expr(
                        invoice::Column::StripeCustomerId,
                        Expr::value(customer_id.clone().or(cur.stripe_customer_id.clone())),
                    )
                    .col_expr(invoice::Column::Currency, Expr::value(currency.clone()))
                    .col_expr(invoice::Column::AmountDue, Expr::value(amount_due))
                    .col_expr(invoice::Column::AmountPaid, Expr::value(amount_paid))
                    .col_expr(
                        invoice::Column::AmountRemaining,
                        Expr::value(amount_remaining),
                    )
                    .col_expr(
                        invoice::Column::NextPaymentAttempt,
                        Expr::value(next_attempt),
                    )
                    .col_expr(
                        invoice::Column::CustomerEmail,
                        Expr::value(customer_email.clone().or(cur.customer_email.clone())),
                    )
                    .col_expr(
                        invoice::Column::BillingReason,
                        Expr::value(billing_reason.clone()),
                    )
                    .col_expr(invoice::Column::LastEventCreated, Expr::value(created));
            }
            Some(q)
        },
    )
    .await?;
    let Some(row) = find.one(ctx.db).await? else {
        return Ok(Outcome::Processed);
    };
    let test_event = ctx.event.is_test_event();
    if paid_event {
        outbox::emit(
            ctx.db,
            outbox::Emit {
                scope,
                event_type: INVOICE_PAID,
                dedupe_key: format!("{INVOICE_PAID}:{id}"),
                object: invoice_object(&row),
                shopper: None,
                batch: None,
                test_event,
            },
        )
        .await?;
    } else if kind == EventType::InvoicePaymentFailed {
        // The message is about this attempt (its count and next attempt), whatever came since.
        let mut object = invoice_object(&row);
        object["attempt_count"] = json!(attempt_count);
        object["next_payment_attempt"] = json!(next_attempt.map(rfc3339_s));
        object["amount_due"] = json!(amount_due);
        let message = outbox::emit(
            ctx.db,
            outbox::Emit {
                scope,
                event_type: INVOICE_PAYMENT_FAILED,
                dedupe_key: format!("{INVOICE_PAYMENT_FAILED}:{id}:{attempt_count}"),
                object,
                shopper: None,
                batch: None,
                test_event,
            },
        )
        .await?;
        // The dunning e-mail: once, with the message (its dedupe key is the ledger), only for
        // an invoice still to pay, for the attempts the company chose.
        let still_due = !invoice_rank(&row.status).1;
        if let (Some(message_id), true, Some(_)) = (message, still_due, &row.hosted_invoice_url) {
            let settings = billing_settings::Entity::find_by_id(scope.company_pk())
                .one(ctx.db)
                .await?;
            if settings.is_some_and(|s| s.mails_attempt(attempt_count)) {
                let shopper = shopper_of(
                    ctx.db,
                    scope,
                    customer_id.as_deref().unwrap_or_default(),
                    row.customer_email.clone(),
                    &o["customer"],
                )
                .await?;
                if let Some((to, lang)) = shopper {
                    paygate_db::entities::notification_delivery::Entity::insert(outbox::delivery(
                        &message_id,
                        scope.company_pk(),
                        "email",
                        None,
                        Some(to),
                        lang,
                        now_ms(),
                    ))
                    .exec_without_returning(ctx.db)
                    .await?;
                }
            }
        }
    }
    Ok(Outcome::Processed)
}

/// The `invoice` object of messages and of the merchant API.
pub fn invoice_object(i: &invoice::Model) -> Value {
    json!({
        "object": "invoice",
        "id": i.stripe_invoice_id,
        "customer": i.stripe_customer_id,
        "subscription": i.stripe_subscription_id,
        "number": i.number,
        "status": i.status,
        "currency": i.currency,
        "amount_due": i.amount_due,
        "amount_paid": i.amount_paid,
        "amount_remaining": i.amount_remaining,
        "attempt_count": i.attempt_count,
        "next_payment_attempt": i.next_payment_attempt.map(rfc3339_s),
        "hosted_invoice_url": i.hosted_invoice_url,
        "customer_email": i.customer_email,
        "billing_reason": i.billing_reason,
        "created": rfc3339_s(i.stripe_created),
        "livemode": i.livemode,
    })
}

/// The `customer` object of the merchant API.
pub fn customer_object(c: &customer::Model) -> Value {
    json!({
        "object": "customer",
        "id": c.stripe_customer_id,
        "email": c.email,
        "name": c.name,
        "locale": c.locale,
        "deleted": c.deleted,
        "created": rfc3339_s(c.stripe_created),
        "livemode": c.livemode,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ending_statuses_stay_and_newer_ones_win() {
        assert!(!newer(subscription_rank, "canceled", 10, "active", 20));
        assert!(newer(subscription_rank, "active", 20, "canceled", 10));
        assert!(newer(subscription_rank, "past_due", 10, "active", 11));
        assert!(!newer(subscription_rank, "active", 11, "past_due", 10));
        assert!(!newer(invoice_rank, "paid", 10, "open", 20));
        assert!(newer(invoice_rank, "open", 20, "paid", 10));
    }

    #[test]
    fn periods_come_from_the_subscription_or_its_items() {
        let old = json!({"id": "sub_1", "status": "active", "customer": {"id": "cus_1"},
            "current_period_start": 1, "current_period_end": 2,
            "items": {"data": [{"id": "si_1", "quantity": 2, "plan": {"id": "plan_1", "amount": 500,
            "currency": "eur", "interval": "month", "product": "prod_1"}}]}});
        let s = SubState::of(&old, None).unwrap_or_else(|| unreachable!());
        assert_eq!((s.period_start, s.period_end), (Some(1), Some(2)));
        assert_eq!(s.customer, "cus_1");
        assert!(s.items_json.contains("\"plan_1\"") && s.items_json.contains("500"));
        let new = json!({"id": "sub_1", "status": "active", "customer": "cus_1",
            "items": {"data": [{"id": "si_1", "quantity": 1, "current_period_start": 3,
            "current_period_end": 4, "price": {"id": "price_1", "unit_amount": 900,
            "currency": "eur", "recurring": {"interval": "year"}, "product": "prod_1"}}]}});
        let s = SubState::of(&new, None).unwrap_or_else(|| unreachable!());
        assert_eq!((s.period_start, s.period_end), (Some(3), Some(4)));
        assert_eq!(s.currency.as_deref(), Some("eur"));
    }
}
