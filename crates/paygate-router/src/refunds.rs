//! Refunds and early fraud warnings (issue 18): the refunds of each order, whoever made them
//! (the merchant API, the back office, the Stripe Dashboard, an automatic refund of a payment
//! warned of fraud), and what they do to the order.
//!
//! Policy:
//! - **A refund is a mirrored object**: its latest state, forward only (`lifecycle`, kind
//!   `Refund`: `failed` and `canceled` end it; `succeeded` may still fail later), unique per
//!   (company, mode, refund id), whatever carried it (a `refund.*` event, the `refunds` list of
//!   a `charge.refunded`, Stripe's answer to our own request).
//! - **An order's refunds are derived, never counted up**: `amount_refunded` is the sum of its
//!   refunds that are not failed or canceled, plus what a charge says is refunded beyond every
//!   refund Paygate knows (newer API versions send `charge.refunded` without its refunds). It is
//!   recomputed from the rows each time, with the order locked (PostgreSQL), so any order of
//!   events, and duplicates, give the same result; a refund that fails gives its amount back.
//!   The order's status shows it (`partially_refunded`, `refunded`), and its payment status
//!   waits in `status_before_refund` for the day every refund failed.
//! - **Our own requests carry our own idempotency key**, derived from the company, the mode, the
//!   order and the merchant's `Idempotency-Key` (or, without one, what the request asks and how
//!   many refunds the order has), and the refund keeps it: the same request answers the same
//!   refund, and concurrent duplicates make one Stripe refund.
//! - **One automatic refund per warned payment**: a claim row unique per (company, mode, charge)
//!   with a lease; only the claimer calls Stripe, and a failed call releases the claim for the
//!   retry of the warning's event.
//! - Messages: `order.refunded` once per refund that counts, `refund.failed` once per refund
//!   that failed or was canceled, `order.fraud_warning` once per warning.

use std::collections::{BTreeMap, HashSet};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr,
    EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set, TransactionTrait, TryInsertResult,
};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use paygate_db::entities::{
    auto_refund, charge, company, dispute, early_fraud_warning, order, refund,
};
use paygate_db::{OrderStatus, RefundStatus, Scope, now_ms};
use paygate_notify::outbox::{self, OutboxBatch};
use paygate_stripe::{CreateRefund, StripeClient, StripeError};
use paygate_tenant::{TenantError, TenantService};

use crate::lifecycle::{self, Applied, Kind, is_newer, rank};

/// The reasons Stripe accepts for a refund.
pub const REFUND_REASONS: &[&str] = &["duplicate", "fraudulent", "requested_by_customer"];

/// How long an automatic refund's claim is held before another attempt may take it over.
const AUTO_REFUND_LEASE_MS: i64 = 60_000;

/// An expandable field: an id, or the expanded object's `id`.
fn id_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("id").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Whether a refund in `status` takes money back (it counts in `amount_refunded`).
pub fn counts(status: &str) -> bool {
    !matches!(
        RefundStatus::parse(status),
        Some(RefundStatus::Failed | RefundStatus::Canceled)
    )
}

/// Where a refund's state came from, for the messages it may cause.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// Stripe's `created` of the state (the event's, or the refund's own for our requests).
    pub created: i64,
    /// The unit of work's batch of messages, if it has one.
    pub batch: Option<&'a OutboxBatch>,
    /// Caused by the back office's *Send test event*.
    pub test_event: bool,
}

/// Records the refund object `o` (forward only) and brings the orders it belongs to up to date,
/// with their messages. `order_id` and `request_key` are set when Paygate made the refund.
/// Returns the refund as stored, or `None` for an object without an id.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    o: &Value,
    origin: Origin<'_>,
    order_id: Option<&str>,
    request_key: Option<&str>,
) -> Result<Option<refund::Model>, DbErr> {
    let Some(id) = opt_str(&o["id"]) else {
        return Ok(None);
    };
    let status = opt_str(&o["status"]).unwrap_or_else(|| RefundStatus::Pending.as_str().into());
    let created = origin.created;
    let charge_id = id_of(&o["charge"]);
    let pi_id = id_of(&o["payment_intent"]);
    let amount = o["amount"].as_i64().unwrap_or(0);
    let reason = opt_str(&o["reason"]);
    let failure_reason = opt_str(&o["failure_reason"]);
    let find = scope
        .refunds()
        .filter(refund::Column::StripeRefundId.eq(id.as_str()));
    lifecycle::apply_forward(
        db,
        find.clone(),
        [
            refund::Column::CompanyPk,
            refund::Column::Livemode,
            refund::Column::StripeRefundId,
        ],
        || {
            let now = now_ms();
            refund::ActiveModel {
                company_pk: Set(scope.company_pk()),
                livemode: Set(scope.livemode()),
                stripe_refund_id: Set(id.clone()),
                charge_id: Set(charge_id.clone()),
                payment_intent_id: Set(pi_id.clone()),
                order_id: Set(order_id.map(str::to_owned)),
                amount: Set(amount),
                currency: Set(o["currency"].as_str().unwrap_or_default().to_owned()),
                status: Set(status.clone()),
                reason: Set(reason.clone()),
                failure_reason: Set(failure_reason.clone()),
                request_key: Set(request_key.map(str::to_owned)),
                state_created: Set(created),
                state_rank: Set(rank(Kind::Refund, &status)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
        },
        |cur| {
            let newer = is_newer(
                Kind::Refund,
                &cur.status,
                cur.state_created,
                &status,
                created,
            );
            // Facts that never go stale are filled in when missing.
            let fill = |have: &Option<String>, got: Option<&str>| have.is_none() && got.is_some();
            let fills = fill(&cur.order_id, order_id)
                || fill(&cur.request_key, request_key)
                || fill(&cur.charge_id, charge_id.as_deref())
                || fill(&cur.payment_intent_id, pi_id.as_deref());
            if !newer && !fills {
                return None;
            }
            let mut q = scope
                .update::<refund::Entity>()
                .col_expr(refund::Column::UpdatedAt, Expr::value(now_ms()));
            if cur.order_id.is_none() && order_id.is_some() {
                q = q.col_expr(refund::Column::OrderId, Expr::value(order_id));
            }
            if cur.request_key.is_none() && request_key.is_some() {
                q = q.col_expr(refund::Column::RequestKey, Expr::value(request_key));
            }
            if cur.charge_id.is_none() && charge_id.is_some() {
                q = q.col_expr(refund::Column::ChargeId, Expr::value(charge_id.clone()));
            }
            if cur.payment_intent_id.is_none() && pi_id.is_some() {
                q = q.col_expr(refund::Column::PaymentIntentId, Expr::value(pi_id.clone()));
            }
            if newer {
                q = q
                    .col_expr(refund::Column::Status, Expr::value(status.clone()))
                    .col_expr(refund::Column::Amount, Expr::value(amount))
                    .col_expr(
                        refund::Column::FailureReason,
                        Expr::value(
                            failure_reason
                                .clone()
                                .or_else(|| cur.failure_reason.clone()),
                        ),
                    )
                    .col_expr(
                        refund::Column::Reason,
                        Expr::value(reason.clone().or_else(|| cur.reason.clone())),
                    )
                    .col_expr(refund::Column::StateCreated, Expr::value(created))
                    .col_expr(
                        refund::Column::StateRank,
                        Expr::value(rank(Kind::Refund, &status)),
                    );
            }
            Some(q)
        },
    )
    .await?;
    let Some(now) = find.one(db).await? else {
        return Ok(None);
    };
    for ord in orders_of_refund(db, scope, &now).await? {
        sync_order(db, scope, &ord.id, Some(origin)).await?;
    }
    Ok(Some(now))
}

async fn emit<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    origin: Origin<'_>,
    event_type: &str,
    dedupe_key: String,
    object: Value,
) -> Result<(), DbErr> {
    outbox::emit(
        db,
        outbox::Emit {
            scope,
            event_type,
            dedupe_key,
            object,
            shopper: None,
            batch: origin.batch,
            test_event: origin.test_event,
        },
    )
    .await?;
    Ok(())
}

/// The `refund` object of messages and of the API.
pub fn refund_object(r: &refund::Model, order_id: Option<&str>) -> Value {
    json!({
        "object": "refund",
        "id": r.stripe_refund_id,
        "order_id": order_id.or(r.order_id.as_deref()),
        "amount": r.amount,
        "currency": r.currency,
        "status": r.status,
        "reason": r.reason,
        "failure_reason": r.failure_reason,
        "charge": r.charge_id,
        "payment_intent": r.payment_intent_id,
        "livemode": r.livemode,
    })
}

/// The orders a refund belongs to: the one it was made for, and those paid by its payment.
async fn orders_of_refund<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    r: &refund::Model,
) -> Result<Vec<order::Model>, DbErr> {
    let mut on = Condition::any();
    if let Some(o) = &r.order_id {
        on = on.add(order::Column::Id.eq(o.as_str()));
    }
    if let Some(pi) = &r.payment_intent_id {
        on = on.add(order::Column::PaymentIntentId.eq(pi.as_str()));
    }
    if let Some(ch) = &r.charge_id {
        on = on.add(order::Column::ChargeId.eq(ch.as_str()));
    }
    if on.is_empty() {
        return Ok(Vec::new());
    }
    scope.orders().filter(on).all(db).await
}

/// The orders paid by a charge (a legacy Source order names the charge; a Checkout order its
/// payment intent).
async fn orders_of_charge<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    charge_id: &str,
    pi: Option<&str>,
) -> Result<Vec<order::Model>, DbErr> {
    let mut on = Condition::any().add(order::Column::ChargeId.eq(charge_id));
    if let Some(pi) = pi {
        on = on.add(order::Column::PaymentIntentId.eq(pi));
    }
    scope.orders().filter(on).all(db).await
}

/// The refunds of an order: made for it, or of its payment intent or charges.
pub async fn refunds_of_order<C: ConnectionTrait>(
    db: &C,
    ord: &order::Model,
    charge_ids: &[String],
) -> Result<Vec<refund::Model>, DbErr> {
    let scope = Scope::of_livemode(ord.company_pk, ord.livemode);
    let mut on = Condition::any().add(refund::Column::OrderId.eq(ord.id.as_str()));
    if let Some(pi) = &ord.payment_intent_id {
        on = on.add(refund::Column::PaymentIntentId.eq(pi.as_str()));
    }
    let mut charges: Vec<&str> = charge_ids.iter().map(String::as_str).collect();
    if let Some(ch) = &ord.charge_id {
        charges.push(ch.as_str());
    }
    if !charges.is_empty() {
        on = on.add(refund::Column::ChargeId.is_in(charges));
    }
    use sea_orm::QueryOrder;
    scope
        .refunds()
        .filter(on)
        .order_by_asc(refund::Column::Id)
        .all(db)
        .await
}

/// The charges of an order: of its payment intent, or its own (legacy Sources).
async fn charges_of_order<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    ord: &order::Model,
) -> Result<Vec<charge::Model>, DbErr> {
    let mut on = Condition::any();
    if let Some(pi) = &ord.payment_intent_id {
        on = on.add(charge::Column::PaymentIntentId.eq(pi.as_str()));
    }
    if let Some(ch) = &ord.charge_id {
        on = on.add(charge::Column::StripeId.eq(ch.as_str()));
    }
    if on.is_empty() {
        return Ok(Vec::new());
    }
    scope.charges().filter(on).all(db).await
}

/// What an order's refunds and charges say is refunded (see the module policy).
pub fn amount_refunded(refunds: &[refund::Model], charges: &[charge::Model]) -> i64 {
    let known: i64 = refunds
        .iter()
        .filter(|r| counts(&r.status))
        .map(|r| r.amount)
        .sum();
    let beyond: i64 = charges
        .iter()
        .map(|c| {
            let all_known: i64 = refunds
                .iter()
                .filter(|r| r.charge_id.as_deref() == Some(c.stripe_id.as_str()))
                .map(|r| r.amount)
                .sum();
            (c.amount_refunded - all_known).max(0)
        })
        .sum();
    known + beyond
}

/// Brings an order's `amount_refunded` and status up to date with its refunds (see the module
/// policy), and with `origin`, tells the merchant of each refund once: `order.refunded` for one
/// that takes money back, `refund.failed` for one that failed or was canceled (a refund first
/// seen failed is never announced as made). The messages are keyed by refund, so calling this
/// again, or for an order that learned its payment late, repeats none. Returns the order as it
/// is now (`None`: no such order).
pub async fn sync_order<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    order_id: &str,
    origin: Option<Origin<'_>>,
) -> Result<Option<order::Model>, DbErr> {
    let find = scope.orders().filter(order::Column::Id.eq(order_id));
    // Two refunds of one order recorded at once: the second waits for the first, then reads
    // both (SQLite has one writer anyway).
    let locked = if db.get_database_backend() == DatabaseBackend::Postgres {
        find.clone().lock_exclusive().one(db).await?
    } else {
        find.clone().one(db).await?
    };
    let Some(ord) = locked else {
        return Ok(None);
    };
    let charges = charges_of_order(db, scope, &ord).await?;
    let charge_ids: Vec<String> = charges.iter().map(|c| c.stripe_id.clone()).collect();
    let refunds = refunds_of_order(db, &ord, &charge_ids).await?;
    let refunded = amount_refunded(&refunds, &charges);
    let changed = lifecycle::change_forward(db, find.clone(), |o| {
        let (status, before) = if refunded > 0 {
            let full = o.amount.is_some_and(|a| refunded >= a);
            let s = if full {
                OrderStatus::Refunded
            } else {
                OrderStatus::PartiallyRefunded
            };
            let before = o
                .status_before_refund
                .clone()
                .unwrap_or_else(|| o.status.clone());
            (s.as_str().to_owned(), Some(before))
        } else {
            match &o.status_before_refund {
                Some(b) => (b.clone(), None),
                None => (o.status.clone(), None),
            }
        };
        if o.amount_refunded == refunded && o.status == status && o.status_before_refund == before {
            return None;
        }
        Some(
            scope
                .update::<order::Entity>()
                .col_expr(order::Column::AmountRefunded, Expr::value(refunded))
                .col_expr(order::Column::Status, Expr::value(status))
                .col_expr(order::Column::StatusBeforeRefund, Expr::value(before))
                .col_expr(order::Column::UpdatedAt, Expr::value(now_ms())),
        )
    })
    .await?;
    let now = match changed {
        None => None,
        Some(Applied::Unchanged { current }) => Some(current),
        Some(_) => find.one(db).await?,
    };
    if let (Some(origin), Some(ord)) = (origin, &now) {
        for r in &refunds {
            let id = &r.stripe_refund_id;
            if counts(&r.status) {
                let t = "order.refunded";
                let mut object = outbox::order_object(ord);
                object["refund"] = refund_object(r, Some(&ord.id));
                emit(db, scope, origin, t, format!("{t}:{id}"), object).await?;
            } else {
                let t = outbox::REFUND_FAILED;
                let object = refund_object(r, Some(&ord.id));
                emit(db, scope, origin, t, format!("{t}:{id}"), object).await?;
            }
        }
    }
    Ok(now)
}

/// A charge's event: its `refunds` list (absent in newer API versions) is recorded, and the
/// orders it paid follow what it says is refunded.
pub async fn from_charge<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    charge: &Value,
    origin: Origin<'_>,
) -> Result<(), DbErr> {
    let Some(charge_id) = opt_str(&charge["id"]) else {
        return Ok(());
    };
    let pi = id_of(&charge["payment_intent"]);
    let listed = charge["refunds"]["data"].as_array();
    for r in listed.into_iter().flatten() {
        let mut r = r.clone();
        // A listed refund may leave out what the charge says.
        if r["charge"].is_null() {
            r["charge"] = json!(charge_id);
        }
        if r["payment_intent"].is_null()
            && let Some(pi) = &pi
        {
            r["payment_intent"] = json!(pi);
        }
        record(db, scope, &r, origin, None, None).await?;
    }
    if charge["amount_refunded"].as_i64().unwrap_or(0) > 0 || listed.is_some() {
        for ord in orders_of_charge(db, scope, &charge_id, pi.as_deref()).await? {
            sync_order(db, scope, &ord.id, Some(origin)).await?;
        }
    }
    Ok(())
}

/// Why a refund could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RefundError {
    #[error("no such order")]
    OrderNotFound,
    #[error("{0}")]
    NotRefundable(String),
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the Idempotency-Key was used for another refund request")]
    KeyReused,
    #[error("the company has no active {0} profile")]
    NoProfile(String),
    #[error("Stripe API")]
    Stripe(#[from] StripeError),
    #[error("database")]
    Db(#[from] DbErr),
    #[error("tenant configuration")]
    Tenant(#[from] TenantError),
}

/// A refund to make.
#[derive(Clone, Debug)]
pub struct RefundRequest<'a> {
    pub order_id: &'a str,
    /// `None`: what is left.
    pub amount: Option<i64>,
    /// One of [`REFUND_REASONS`].
    pub reason: Option<String>,
    /// The merchant's `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
}

fn sha256_hex(s: &str) -> String {
    let mut h = Sha256::new();
    h.update(s.as_bytes());
    hex::encode(h.finalize())
}

/// Whether an order's payment status (before any refund) is one money was taken in.
fn paid(ord: &order::Model) -> bool {
    let base = ord.status_before_refund.as_deref().unwrap_or(&ord.status);
    matches!(
        OrderStatus::parse(base),
        Some(OrderStatus::Paid | OrderStatus::Fulfilled)
    )
}

/// Refunds an order of `scope` through Stripe (`POST /v1/refunds` with our own idempotency key)
/// and records the refund. Returns the refund and whether this request made it (`false`: the
/// same request was answered before).
pub async fn create_refund(
    db: &DatabaseConnection,
    tenants: &TenantService,
    stripe: &StripeClient,
    scope: Scope,
    req: RefundRequest<'_>,
) -> Result<(refund::Model, bool), RefundError> {
    let ord = scope
        .orders()
        .filter(order::Column::Id.eq(req.order_id))
        .one(db)
        .await?
        .ok_or(RefundError::OrderNotFound)?;
    if let Some(r) = &req.reason
        && !REFUND_REASONS.contains(&r.as_str())
    {
        return Err(RefundError::Invalid {
            field: "reason",
            message: format!("must be one of {}", REFUND_REASONS.join(", ")),
        });
    }
    if let Some(a) = req.amount
        && a <= 0
    {
        return Err(RefundError::Invalid {
            field: "amount",
            message: "must be a positive amount in minor units".into(),
        });
    }
    let prefix = format!(
        "paygate-refund:{}:{}:{}",
        scope.company_pk(),
        scope.mode(),
        ord.id
    );
    let request_key = match req.idempotency_key {
        Some(k) => {
            let key = format!("{prefix}:key:{}", &sha256_hex(k)[..40]);
            let seen = scope
                .refunds()
                .filter(refund::Column::RequestKey.eq(key.as_str()))
                .one(db)
                .await?;
            if let Some(r) = seen {
                if req.amount.is_some_and(|a| a != r.amount) {
                    return Err(RefundError::KeyReused);
                }
                return Ok((r, false));
            }
            key
        }
        None => {
            let made = scope
                .refunds()
                .filter(refund::Column::OrderId.eq(ord.id.as_str()))
                .count(db)
                .await?;
            let what = format!(
                "{}:{}",
                req.amount
                    .map_or_else(|| "rest".to_owned(), |a| a.to_string()),
                req.reason.as_deref().unwrap_or("")
            );
            format!("{prefix}:n{made}:{}", &sha256_hex(&what)[..16])
        }
    };
    if ord.payment_intent_id.is_none() && ord.charge_id.is_none() || !paid(&ord) {
        return Err(RefundError::NotRefundable(
            "the order has no payment to refund".into(),
        ));
    }
    let left = ord.amount.unwrap_or(0) - ord.amount_refunded;
    if left <= 0 {
        return Err(RefundError::NotRefundable(
            "the order is refunded in full".into(),
        ));
    }
    if let Some(a) = req.amount
        && a > left
    {
        return Err(RefundError::Invalid {
            field: "amount",
            message: format!("at most {left} is left to refund"),
        });
    }
    let profile = tenants
        .active_profile_for(scope.company_pk(), scope.mode().as_str())
        .await?
        .ok_or_else(|| RefundError::NoProfile(scope.mode().to_string()))?;
    let mut metadata = BTreeMap::new();
    metadata.insert("paygate_order_id".to_owned(), ord.id.clone());
    let params = CreateRefund {
        payment_intent: ord.payment_intent_id.clone(),
        charge: ord
            .charge_id
            .clone()
            .filter(|_| ord.payment_intent_id.is_none()),
        amount: req.amount,
        reason: req.reason.clone(),
        metadata,
    };
    let answer = stripe
        .create_refund(&profile.secret_key, &params, &request_key)
        .await?;
    let txn = db.begin().await?;
    let created = answer["created"].as_i64().unwrap_or(0);
    let origin = Origin {
        created,
        batch: None,
        test_event: false,
    };
    let recorded = record(
        &txn,
        scope,
        &answer,
        origin,
        Some(&ord.id),
        Some(&request_key),
    )
    .await;
    let r = match recorded {
        Ok(r) => r,
        // Requests with the same key at the same moment: Stripe answered each the same refund,
        // and another one recorded it first (PostgreSQL reports the second unique key's
        // conflict rather than waiting on the first). That refund is the answer.
        Err(e) if paygate_db::is_unique_violation(&e) => {
            txn.rollback().await?;
            let seen = scope
                .refunds()
                .filter(refund::Column::RequestKey.eq(request_key.as_str()))
                .one(db)
                .await?;
            return seen.map(|r| (r, false)).ok_or_else(|| RefundError::from(e));
        }
        Err(e) => return Err(e.into()),
    }
    .ok_or_else(|| RefundError::NotRefundable("Stripe answered without a refund".into()))?;
    txn.commit().await?;
    Ok((r, true))
}

/// The early fraud warning of an order, if any: the newest on its payment.
pub async fn warning_of_order<C: ConnectionTrait>(
    db: &C,
    ord: &order::Model,
    charge_ids: &[String],
) -> Result<Option<early_fraud_warning::Model>, DbErr> {
    let scope = Scope::of_livemode(ord.company_pk, ord.livemode);
    let mut on = Condition::any();
    if let Some(pi) = &ord.payment_intent_id {
        on = on.add(early_fraud_warning::Column::PaymentIntentId.eq(pi.as_str()));
    }
    let mut charges: Vec<&str> = charge_ids.iter().map(String::as_str).collect();
    if let Some(ch) = &ord.charge_id {
        charges.push(ch.as_str());
    }
    if !charges.is_empty() {
        on = on.add(early_fraud_warning::Column::ChargeId.is_in(charges));
    }
    if on.is_empty() {
        return Ok(None);
    }
    use sea_orm::QueryOrder;
    scope
        .early_fraud_warnings()
        .filter(on)
        .order_by_desc(early_fraud_warning::Column::StateCreated)
        .order_by_desc(early_fraud_warning::Column::Id)
        .one(db)
        .await
}

/// What [`early_fraud_warning`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WarningOutcome {
    /// Recorded; no automatic refund (the setting is off, the warning not actionable, a dispute
    /// exists, or another attempt holds or made it).
    Recorded,
    /// Recorded, and this attempt refunded the payment (`re_…`).
    Refunded(String),
}

/// `radar.early_fraud_warning.*`: records the warning (newest state wins; an event's `created`
/// decides), tells the merchant once, and refunds the payment when the company asked for it
/// (see the module policy). `db` is the pool: the Stripe call holds no transaction.
pub async fn early_fraud_warning(
    db: &DatabaseConnection,
    tenants: &TenantService,
    stripe: &StripeClient,
    scope: Scope,
    w: &Value,
    origin: Origin<'_>,
) -> Result<WarningOutcome, RefundError> {
    let Some(id) = opt_str(&w["id"]) else {
        return Err(RefundError::Invalid {
            field: "id",
            message: "data.object.id is missing".into(),
        });
    };
    let charge_id = id_of(&w["charge"]);
    let pi_id = id_of(&w["payment_intent"]);
    let fraud_type = opt_str(&w["fraud_type"]).unwrap_or_else(|| "misc".into());
    let actionable = w["actionable"].as_bool().unwrap_or(false);
    let created = origin.created;
    let find = scope
        .early_fraud_warnings()
        .filter(early_fraud_warning::Column::StripeId.eq(id.as_str()));
    let txn = db.begin().await?;
    let applied = lifecycle::apply_forward(
        &txn,
        find.clone(),
        [
            early_fraud_warning::Column::CompanyPk,
            early_fraud_warning::Column::Livemode,
            early_fraud_warning::Column::StripeId,
        ],
        || {
            let now = now_ms();
            early_fraud_warning::ActiveModel {
                company_pk: Set(scope.company_pk()),
                livemode: Set(scope.livemode()),
                stripe_id: Set(id.clone()),
                charge_id: Set(charge_id.clone()),
                payment_intent_id: Set(pi_id.clone()),
                fraud_type: Set(fraud_type.clone()),
                actionable: Set(actionable),
                state_created: Set(created),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
        },
        |cur| {
            // A later state wins; at the same second, not actionable (a refund or dispute
            // happened) wins over actionable.
            let newer = (created, !actionable) > (cur.state_created, !cur.actionable);
            newer.then(|| {
                scope
                    .update::<early_fraud_warning::Entity>()
                    .col_expr(
                        early_fraud_warning::Column::FraudType,
                        Expr::value(fraud_type.clone()),
                    )
                    .col_expr(
                        early_fraud_warning::Column::Actionable,
                        Expr::value(actionable),
                    )
                    .col_expr(
                        early_fraud_warning::Column::StateCreated,
                        Expr::value(created),
                    )
                    .col_expr(
                        early_fraud_warning::Column::UpdatedAt,
                        Expr::value(now_ms()),
                    )
            })
        },
    )
    .await?;
    let warning = find.one(&txn).await?;
    if let (Applied::Inserted, Some(wm)) = (&applied, &warning) {
        let mut on = Condition::any();
        if let Some(ch) = &charge_id {
            on = on.add(order::Column::ChargeId.eq(ch.as_str()));
        }
        if let Some(pi) = &pi_id {
            on = on.add(order::Column::PaymentIntentId.eq(pi.as_str()));
        }
        let ord = if on.is_empty() {
            None
        } else {
            scope.orders().filter(on).one(&txn).await?
        };
        let t = "order.fraud_warning";
        let object = json!({
            "object": "fraud_warning",
            "id": wm.stripe_id,
            "order_id": ord.as_ref().map(|o| o.id.clone()),
            "order": ord.as_ref().map(outbox::order_object),
            "fraud_type": wm.fraud_type,
            "actionable": wm.actionable,
            "charge": wm.charge_id,
            "payment_intent": wm.payment_intent_id,
            "livemode": wm.livemode,
        });
        emit(&txn, scope, origin, t, format!("{t}:{id}"), object).await?;
    }
    txn.commit().await?;
    let Some(wm) = warning else {
        return Ok(WarningOutcome::Recorded);
    };
    auto_refund(db, tenants, stripe, scope, &wm).await
}

/// The automatic refund of a warned payment, when the company wants it, the stored warning is
/// actionable, no dispute exists, and this attempt holds the payment's claim.
async fn auto_refund(
    db: &DatabaseConnection,
    tenants: &TenantService,
    stripe: &StripeClient,
    scope: Scope,
    w: &early_fraud_warning::Model,
) -> Result<WarningOutcome, RefundError> {
    let Some(charge_id) = w.charge_id.clone() else {
        return Ok(WarningOutcome::Recorded);
    };
    let wanted = company::Entity::find_by_id(scope.company_pk())
        .one(db)
        .await?
        .is_some_and(|c| c.auto_refund_fraud_warnings);
    if !wanted || !w.actionable {
        return Ok(WarningOutcome::Recorded);
    }
    let mut on = Condition::any().add(dispute::Column::ChargeId.eq(charge_id.as_str()));
    if let Some(pi) = &w.payment_intent_id {
        on = on.add(dispute::Column::PaymentIntentId.eq(pi.as_str()));
    }
    let disputed = scope.disputes().filter(on).count(db).await? > 0
        || scope
            .charges()
            .filter(charge::Column::StripeId.eq(charge_id.as_str()))
            .filter(charge::Column::Disputed.eq(true))
            .count(db)
            .await?
            > 0;
    if disputed {
        return Ok(WarningOutcome::Recorded);
    }
    if !claim(db, scope, &charge_id, &w.stripe_id).await? {
        return Ok(WarningOutcome::Recorded);
    }
    let result = refund_warned(db, tenants, stripe, scope, w, &charge_id).await;
    let now = now_ms();
    let (status, refund_id, error) = match &result {
        Ok(Some(r)) => ("refunded", Some(r.clone()), None),
        // Stripe will never refund it (refunded already, disputed meanwhile): done.
        Err(RefundError::Stripe(e @ StripeError::Api { status, .. }))
            if (400..500).contains(status) && *status != 429 =>
        {
            let msg: String = e.to_string().chars().take(250).collect();
            ("not_refundable", None, Some(msg))
        }
        Ok(None) => ("not_refundable", None, None),
        Err(_) => {
            // Released for the retry of the warning's event.
            scope
                .update::<auto_refund::Entity>()
                .col_expr(auto_refund::Column::LeaseUntil, Expr::value(0))
                .col_expr(auto_refund::Column::UpdatedAt, Expr::value(now))
                .filter(auto_refund::Column::ChargeId.eq(charge_id.as_str()))
                .exec(db)
                .await?;
            return result.map(|_| WarningOutcome::Recorded);
        }
    };
    scope
        .update::<auto_refund::Entity>()
        .col_expr(auto_refund::Column::Status, Expr::value(status))
        .col_expr(
            auto_refund::Column::RefundId,
            Expr::value(refund_id.clone()),
        )
        .col_expr(auto_refund::Column::Error, Expr::value(error))
        .col_expr(auto_refund::Column::UpdatedAt, Expr::value(now))
        .filter(auto_refund::Column::ChargeId.eq(charge_id.as_str()))
        .exec(db)
        .await?;
    Ok(match refund_id {
        Some(r) => WarningOutcome::Refunded(r),
        None => WarningOutcome::Recorded,
    })
}

/// Takes the payment's automatic-refund claim: a new row, or one whose earlier claimer let go
/// (a failed attempt) or whose lease ran out (a crashed one). Exactly one attempt wins.
async fn claim(
    db: &DatabaseConnection,
    scope: Scope,
    charge_id: &str,
    warning_id: &str,
) -> Result<bool, DbErr> {
    let now = now_ms();
    let row = auto_refund::ActiveModel {
        company_pk: Set(scope.company_pk()),
        livemode: Set(scope.livemode()),
        charge_id: Set(charge_id.to_owned()),
        warning_id: Set(warning_id.to_owned()),
        status: Set("claimed".into()),
        lease_until: Set(now + AUTO_REFUND_LEASE_MS),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    let inserted = auto_refund::Entity::insert(row)
        .on_conflict_do_nothing_on([
            auto_refund::Column::CompanyPk,
            auto_refund::Column::Livemode,
            auto_refund::Column::ChargeId,
        ])
        .exec_without_returning(db)
        .await?;
    if matches!(inserted, TryInsertResult::Inserted(n) if n > 0) {
        return Ok(true);
    }
    let taken = scope
        .update::<auto_refund::Entity>()
        .col_expr(
            auto_refund::Column::LeaseUntil,
            Expr::value(now + AUTO_REFUND_LEASE_MS),
        )
        .col_expr(auto_refund::Column::UpdatedAt, Expr::value(now))
        .filter(auto_refund::Column::ChargeId.eq(charge_id))
        .filter(auto_refund::Column::Status.eq("claimed"))
        .filter(auto_refund::Column::LeaseUntil.lt(now))
        .exec(db)
        .await?
        .rows_affected;
    Ok(taken > 0)
}

/// The automatic refund's request to Stripe: what is left of the charge, reason `fraudulent`,
/// one idempotency key per payment. Returns the refund's id.
async fn refund_warned(
    db: &DatabaseConnection,
    tenants: &TenantService,
    stripe: &StripeClient,
    scope: Scope,
    w: &early_fraud_warning::Model,
    charge_id: &str,
) -> Result<Option<String>, RefundError> {
    let profile = tenants
        .active_profile_for(scope.company_pk(), scope.mode().as_str())
        .await?
        .ok_or_else(|| RefundError::NoProfile(scope.mode().to_string()))?;
    let ord = orders_of_charge(db, scope, charge_id, w.payment_intent_id.as_deref())
        .await?
        .into_iter()
        .next();
    let mut metadata = BTreeMap::new();
    metadata.insert(
        "paygate_early_fraud_warning".to_owned(),
        w.stripe_id.clone(),
    );
    if let Some(o) = &ord {
        metadata.insert("paygate_order_id".to_owned(), o.id.clone());
    }
    let params = CreateRefund {
        charge: Some(charge_id.to_owned()),
        reason: Some("fraudulent".into()),
        metadata,
        ..Default::default()
    };
    let key = format!(
        "paygate-fraud-refund:{}:{}:{charge_id}",
        scope.company_pk(),
        scope.mode()
    );
    let answer = stripe
        .create_refund(&profile.secret_key, &params, &key)
        .await?;
    let txn = db.begin().await?;
    let origin = Origin {
        created: answer["created"].as_i64().unwrap_or(0),
        batch: None,
        test_event: false,
    };
    let r = record(
        &txn,
        scope,
        &answer,
        origin,
        ord.as_ref().map(|o| o.id.as_str()),
        Some(&key),
    )
    .await?;
    txn.commit().await?;
    Ok(r.map(|r| r.stripe_refund_id))
}

/// The ids of the charges in `charges`, for the lookups above.
pub fn charge_ids(charges: &[charge::Model]) -> Vec<String> {
    let mut seen = HashSet::new();
    charges
        .iter()
        .filter(|c| seen.insert(c.stripe_id.clone()))
        .map(|c| c.stripe_id.clone())
        .collect()
}
