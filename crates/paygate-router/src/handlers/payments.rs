//! Payment intents, charges, disputes and legacy sources: the latest known state of each, applied
//! forward only; the orders they belong to follow.

use std::collections::{BTreeMap, HashMap};

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait,
};
use serde_json::Value;

use paygate_db::entities::{charge, dispute, order, payment_intent, source};
use paygate_db::now_ms;
use paygate_stripe::CreateCharge;

use paygate_db::{OrderStatus, PaymentStatus, Scope};
use paygate_wire::EventType;

use super::context::{HandlerCtx, HandlerError, HandlerResult, Outcome, id_of};
use super::orders;
use crate::lifecycle::{self, Applied, Kind, is_newer, newer_than_stored, rank};
use paygate_notify::outbox;

fn i64_of(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

/// `payment_intent.*`: status, amounts, last payment error, cancellation reason.
pub async fn payment_intent<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
) -> HandlerResult {
    let row = payment_intent_row(ctx)?;
    if let Some(p) = upsert_payment_intents(ctx.db, vec![row])
        .await?
        .into_iter()
        .next()
    {
        emit_payment(ctx, &p).await?;
        order_follows_canceled_payment(ctx.db, ctx.scope, &p).await?;
    }
    Ok(Outcome::Processed)
}

/// `payment_intent.*` events of a batch, about different payment intents, applied together:
/// one statement for all of them (per chunk), then the message of each change. The result of
/// each event, or `None` for events left to [`payment_intent`] one by one (a payment intent
/// seen twice in the batch, a payload it would refuse). The order in which events of different
/// objects are applied does not matter.
pub async fn payment_intents<C: ConnectionTrait + TransactionTrait>(
    ctxs: &[&HandlerCtx<'_, C>],
) -> Result<Vec<Option<HandlerResult>>, HandlerError> {
    let mut out: Vec<Option<HandlerResult>> = (0..ctxs.len()).map(|_| None).collect();
    let Some(first) = ctxs.first() else {
        return Ok(out);
    };
    let mut seen: HashMap<(Scope, String), usize> = HashMap::new();
    let mut rows = Vec::new();
    for (i, ctx) in ctxs.iter().enumerate() {
        let (Ok(row), Ok(id)) = (payment_intent_row(ctx), ctx.str("id")) else {
            continue;
        };
        let key = (ctx.scope, id.to_owned());
        if seen.contains_key(&key) {
            continue;
        }
        seen.insert(key.clone(), i);
        rows.push((key, row));
    }
    // In key order, so workers upserting overlapping payment intents lock them in the same
    // order (no deadlock between two batches on PostgreSQL).
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let rows = rows.into_iter().map(|(_, row)| row).collect();
    for p in upsert_payment_intents(first.db, rows).await? {
        let scope = Scope::of_livemode(p.company_pk, p.livemode);
        if let Some(&i) = seen.get(&(scope, p.stripe_id.clone())) {
            emit_payment(ctxs[i], &p).await?;
            order_follows_canceled_payment(ctxs[i].db, scope, &p).await?;
        }
    }
    for &i in seen.values() {
        out[i] = Some(Ok(Outcome::Processed));
    }
    Ok(out)
}

/// The row an event's payment intent would leave.
fn payment_intent_row<C>(
    ctx: &HandlerCtx<'_, C>,
) -> Result<payment_intent::ActiveModel, HandlerError> {
    payment_intent_row_of(ctx.object, ctx.scope, ctx.event.created)
}

/// The row a payment intent (`object`, an event's `data.object`, sent at `created`) would leave
/// in `scope`: what both the workers and the SQLite intake ([`crate::intake_payments`]) store.
pub(crate) fn payment_intent_row_of(
    o: &Value,
    scope: Scope,
    created: i64,
) -> Result<payment_intent::ActiveModel, HandlerError> {
    let field = |f: &str| {
        o[f].as_str()
            .ok_or_else(|| HandlerError::Payload(format!("data.object.{f} is missing")))
    };
    let id = field("id")?.to_owned();
    let status = field("status")?.to_owned();
    let last_error = match &o["last_payment_error"] {
        Value::Null => None,
        e => Some(
            serde_json::json!({"code": e["code"], "decline_code": e["decline_code"], "message": e["message"], "type": e["type"]})
                .to_string(),
        ),
    };
    let now = now_ms();
    Ok(payment_intent::ActiveModel {
        company_pk: Set(scope.company_pk()),
        stripe_id: Set(id),
        livemode: Set(scope.livemode()),
        state_rank: Set(rank(Kind::PaymentIntent, &status)),
        status: Set(status),
        amount: Set(i64_of(&o["amount"])),
        amount_capturable: Set(i64_of(&o["amount_capturable"])),
        amount_received: Set(i64_of(&o["amount_received"])),
        currency: Set(o["currency"].as_str().unwrap_or_default().to_owned()),
        customer: Set(id_of(&o["customer"])),
        last_payment_error: Set(last_error),
        cancellation_reason: Set(opt_str(&o["cancellation_reason"])),
        disputed: Set(false),
        state_created: Set(created),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
}

/// Inserts each payment intent, or replaces its stored state when the proposed one is newer
/// (`lifecycle::is_newer`, in SQL); returns the rows that changed. One statement per chunk,
/// atomic per row on both databases, so concurrent workers cannot step back. `rows` must be
/// about different payment intents.
async fn upsert_payment_intents<C: ConnectionTrait>(
    db: &C,
    rows: Vec<payment_intent::ActiveModel>,
) -> Result<Vec<payment_intent::Model>, DbErr> {
    let mut changed = Vec::new();
    for chunk in paygate_db::chunked(&rows) {
        match payment_intent::Entity::insert_many(chunk.iter().cloned())
            .on_conflict(payment_intent_upsert())
            .exec_with_returning(db)
            .await
        {
            Ok(rows) => changed.extend(rows),
            Err(DbErr::RecordNotInserted) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(changed)
}

/// The `ON CONFLICT` of [`upsert_payment_intents`]: the stored state is replaced only by a
/// newer one (`lifecycle::is_newer`, in SQL).
pub(crate) fn payment_intent_upsert() -> OnConflict {
    use payment_intent::Column as Pi;
    OnConflict::columns([Pi::CompanyPk, Pi::Livemode, Pi::StripeId])
        .update_columns([
            Pi::Status,
            Pi::Amount,
            Pi::AmountCapturable,
            Pi::AmountReceived,
            Pi::LastPaymentError,
            Pi::CancellationReason,
            Pi::StateCreated,
            Pi::StateRank,
            Pi::UpdatedAt,
        ])
        .action_and_where(newer_than_stored(
            payment_intent::Entity,
            Pi::Status,
            Pi::StateCreated,
            Pi::StateRank,
            Kind::PaymentIntent,
        ))
        .to_owned()
}

/// The type and dedupe key of the message about a payment intent's change to `status`, carried
/// by an event of `kind` with id `event_id`, if the change has one: a payment succeeds or is
/// canceled once; each failed attempt and each capturable update is its own change (keyed by
/// the Stripe event that carried it).
pub(crate) fn payment_message(
    kind: Option<EventType>,
    status: &str,
    payment_intent_id: &str,
    event_id: &str,
) -> Option<(&'static str, String)> {
    let (t, key) = match (kind, status) {
        (_, s) if s == PaymentStatus::Succeeded.as_str() => {
            ("payment.succeeded", payment_intent_id)
        }
        (_, s) if s == PaymentStatus::Canceled.as_str() => ("payment.canceled", payment_intent_id),
        (Some(EventType::PaymentIntentPaymentFailed), _) => ("payment.failed", event_id),
        (Some(EventType::PaymentIntentAmountCapturableUpdated), _) => {
            ("payment.amount_capturable_updated", event_id)
        }
        _ => return None,
    };
    Some((t, format!("{t}:{key}")))
}

/// The `payment.*` message of a payment intent's change that was just applied, if it has one
/// ([`payment_message`]).
async fn emit_payment<C: ConnectionTrait>(
    ctx: &HandlerCtx<'_, C>,
    p: &payment_intent::Model,
) -> Result<(), HandlerError> {
    let Some((event_type, dedupe_key)) =
        payment_message(ctx.event.kind, &p.status, &p.stripe_id, &ctx.event.id)
    else {
        return Ok(());
    };
    outbox::emit(
        ctx.db,
        outbox::Emit {
            scope: ctx.scope,
            event_type,
            dedupe_key,
            object: outbox::payment_object(p),
            shopper: None,
            batch: ctx.outbox,
            test_event: ctx.event.is_test_event(),
        },
    )
    .await?;
    Ok(())
}

/// Issue 20: a payment intent cancelled after its Checkout Session completed (an authorization
/// voided before capture, a delayed payment cancelled) cancels the order awaiting it, whose
/// shopper is then invited back to pay again (`lifecycle::advance_order_status`). `p` is the
/// payment intent as stored; nothing happens unless it is `canceled`. Only an order awaiting
/// its payment moves: before its session completes, Stripe cancels the payment intent of a
/// session that expires, and `checkout.session.expired` says so (one end, one message); a paid
/// order never moves back (paid ranks higher). Called when a payment intent's stored state
/// becomes `canceled`, and by the Checkout handler when a session completes after its payment
/// intent's cancellation was recorded (Stripe's events come in any order).
pub(super) async fn order_follows_canceled_payment<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    scope: Scope,
    p: &payment_intent::Model,
) -> Result<(), DbErr> {
    if p.status != PaymentStatus::Canceled.as_str() {
        return Ok(());
    }
    let awaiting = scope
        .orders()
        .filter(order::Column::PaymentIntentId.eq(p.stripe_id.as_str()))
        .filter(order::Column::Status.eq(OrderStatus::AwaitingPayment.as_str()))
        .all(db)
        .await?;
    for o in awaiting {
        orders::advance(db, scope, &o.id, OrderStatus::Canceled, p.state_created).await?;
    }
    Ok(())
}

/// `charge.*`: the charge; for orders paid by a legacy Source, confirm on `charge.succeeded`
/// and fail on `charge.failed` (seed 004).
pub async fn charge<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
    kind: EventType,
) -> HandlerResult {
    let o = ctx.object;
    let id = ctx.str("id")?.to_owned();
    let status = ctx.str("status")?.to_owned();
    let created = ctx.event.created;
    let source_id = id_of(&o["source"]).filter(|s| s.starts_with("src_"));
    let refunded = o["refunded"].as_bool().unwrap_or(false) || kind == EventType::ChargeRefunded;
    let amount_refunded = i64_of(&o["amount_refunded"]);
    let disputed = o["disputed"].as_bool().unwrap_or(false);
    let scope = ctx.scope;
    lifecycle::apply_forward(
        ctx.db,
        scope.charges().filter(charge::Column::StripeId.eq(&id)),
        [
            charge::Column::CompanyPk,
            charge::Column::Livemode,
            charge::Column::StripeId,
        ],
        || {
            let now = now_ms();
            charge::ActiveModel {
                company_pk: Set(scope.company_pk()),
                stripe_id: Set(id.clone()),
                livemode: Set(scope.livemode()),
                payment_intent_id: Set(id_of(&o["payment_intent"])),
                source_id: Set(source_id.clone()),
                status: Set(status.clone()),
                amount: Set(i64_of(&o["amount"])),
                amount_refunded: Set(amount_refunded),
                refunded: Set(refunded),
                currency: Set(o["currency"].as_str().unwrap_or_default().to_owned()),
                failure_code: Set(opt_str(&o["failure_code"])),
                failure_message: Set(opt_str(&o["failure_message"])),
                disputed: Set(disputed),
                state_created: Set(created),
                state_rank: Set(rank(Kind::Charge, &status)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
        },
        |cur| {
            // Refunds and disputes only grow, whatever the order.
            let mut q = scope
                .update::<charge::Entity>()
                .col_expr(
                    charge::Column::Refunded,
                    Expr::value(cur.refunded || refunded),
                )
                .col_expr(
                    charge::Column::AmountRefunded,
                    Expr::value(cur.amount_refunded.max(amount_refunded)),
                )
                .col_expr(
                    charge::Column::Disputed,
                    Expr::value(cur.disputed || disputed),
                )
                .col_expr(charge::Column::UpdatedAt, Expr::value(now_ms()));
            if is_newer(
                Kind::Charge,
                &cur.status,
                cur.state_created,
                &status,
                created,
            ) {
                q = q
                    .col_expr(charge::Column::Status, Expr::value(status.clone()))
                    .col_expr(
                        charge::Column::FailureCode,
                        Expr::value(opt_str(&o["failure_code"])),
                    )
                    .col_expr(
                        charge::Column::FailureMessage,
                        Expr::value(opt_str(&o["failure_message"])),
                    )
                    .col_expr(charge::Column::StateCreated, Expr::value(created))
                    .col_expr(
                        charge::Column::StateRank,
                        Expr::value(rank(Kind::Charge, &status)),
                    );
            }
            Some(q)
        },
    )
    .await?;
    // The order of a legacy Source payment follows its charge: confirmed only by
    // `charge.succeeded`, failed by `charge.failed` (seed 004). A charge of a payment intent
    // belongs to a Checkout order, which follows its session instead.
    let target = match kind {
        EventType::ChargeSucceeded => Some(OrderStatus::Paid),
        EventType::ChargeFailed => Some(OrderStatus::PaymentFailed),
        _ => None,
    };
    let source_payment = source_id.is_some() || id_of(&o["payment_intent"]).is_none();
    if let Some(target) = target.filter(|_| source_payment) {
        let mut q = scope.orders().filter(order::Column::Kind.eq("source"));
        q = match &source_id {
            Some(src) => q.filter(order::Column::SourceId.eq(src.as_str())),
            None => q.filter(order::Column::ChargeId.eq(id.as_str())),
        };
        if let Some(ord) = q.one(ctx.db).await? {
            if ord.charge_id.is_none() {
                scope
                    .update::<order::Entity>()
                    .col_expr(order::Column::ChargeId, Expr::value(id.clone()))
                    .filter(order::Column::Id.eq(ord.id.clone()))
                    .filter(order::Column::ChargeId.is_null())
                    .exec(ctx.db)
                    .await?;
            }
            orders::advance(ctx.db, scope, &ord.id, target, created).await?;
        }
    }
    // Refunds listed on the charge (older API versions), and the orders it paid.
    crate::refunds::from_charge(
        ctx.db,
        scope,
        o,
        crate::refunds::Origin {
            created,
            batch: ctx.outbox,
            test_event: ctx.event.is_test_event(),
        },
    )
    .await?;
    Ok(Outcome::Processed)
}

/// Money withdrawn and reinstated, from the dispute's balance transactions (the full list rides
/// on every later event, so the maximum seen is order-independent).
fn dispute_funds<C>(ctx: &HandlerCtx<'_, C>, kind: EventType) -> (i64, i64) {
    let mut withdrawn = 0;
    let mut reinstated = 0;
    for bt in ctx.object["balance_transactions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let a = bt["amount"].as_i64().unwrap_or(0);
        if a < 0 {
            withdrawn += -a;
        } else {
            reinstated += a;
        }
    }
    let amount = ctx.object["amount"].as_i64().unwrap_or(0);
    match kind {
        EventType::ChargeDisputeFundsWithdrawn if withdrawn == 0 => (amount, reinstated),
        EventType::ChargeDisputeFundsReinstated if reinstated == 0 => {
            (withdrawn.max(amount), amount)
        }
        _ => (withdrawn, reinstated),
    }
}

/// Stripe's `evidence_details` of a dispute (absent parts are zero / false).
struct EvidenceDetails {
    submission_count: i32,
    has_evidence: bool,
    past_due: bool,
}

impl EvidenceDetails {
    fn of(v: &Value) -> Self {
        Self {
            submission_count: v["submission_count"]
                .as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .unwrap_or(0)
                .max(0),
            has_evidence: v["has_evidence"].as_bool().unwrap_or(false),
            past_due: v["past_due"].as_bool().unwrap_or(false),
        }
    }
}

/// `charge.dispute.*`: the dispute; its payment, charge and order are flagged disputed.
pub async fn dispute<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
    kind: EventType,
) -> HandlerResult {
    let o = ctx.object;
    let id = ctx.str("id")?.to_owned();
    let status = ctx.str("status")?.to_owned();
    let created = ctx.event.created;
    let charge_id = id_of(&o["charge"]);
    let pi_id = id_of(&o["payment_intent"]);
    let due_by = o["evidence_details"]["due_by"].as_i64();
    let details = EvidenceDetails::of(&o["evidence_details"]);
    let (withdrawn, reinstated) = dispute_funds(ctx, kind);
    let scope = ctx.scope;
    let applied = lifecycle::apply_forward(
        ctx.db,
        scope.disputes().filter(dispute::Column::StripeId.eq(&id)),
        [
            dispute::Column::CompanyPk,
            dispute::Column::Livemode,
            dispute::Column::StripeId,
        ],
        || {
            let now = now_ms();
            dispute::ActiveModel {
                company_pk: Set(scope.company_pk()),
                stripe_id: Set(id.clone()),
                livemode: Set(scope.livemode()),
                charge_id: Set(charge_id.clone()),
                payment_intent_id: Set(pi_id.clone()),
                status: Set(status.clone()),
                reason: Set(opt_str(&o["reason"])),
                amount: Set(i64_of(&o["amount"])),
                currency: Set(o["currency"].as_str().unwrap_or_default().to_owned()),
                evidence_due_by: Set(due_by),
                funds_withdrawn: Set(withdrawn),
                funds_reinstated: Set(reinstated),
                submission_count: Set(details.submission_count),
                has_evidence: Set(details.has_evidence),
                past_due: Set(details.past_due),
                state_created: Set(created),
                state_rank: Set(rank(Kind::Dispute, &status)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
        },
        |cur| {
            // Money withdrawn and reinstated only grows.
            let mut q = scope
                .update::<dispute::Entity>()
                .col_expr(
                    dispute::Column::FundsWithdrawn,
                    Expr::value(cur.funds_withdrawn.max(withdrawn)),
                )
                .col_expr(
                    dispute::Column::FundsReinstated,
                    Expr::value(cur.funds_reinstated.max(reinstated)),
                )
                // The evidence details only grow too (submissions, evidence, lateness).
                .col_expr(
                    dispute::Column::SubmissionCount,
                    Expr::value(cur.submission_count.max(details.submission_count)),
                )
                .col_expr(
                    dispute::Column::HasEvidence,
                    Expr::value(cur.has_evidence || details.has_evidence),
                )
                .col_expr(
                    dispute::Column::PastDue,
                    Expr::value(cur.past_due || details.past_due),
                )
                .col_expr(dispute::Column::UpdatedAt, Expr::value(now_ms()));
            if is_newer(
                Kind::Dispute,
                &cur.status,
                cur.state_created,
                &status,
                created,
            ) {
                q = q
                    .col_expr(dispute::Column::Status, Expr::value(status.clone()))
                    .col_expr(dispute::Column::Reason, Expr::value(opt_str(&o["reason"])))
                    .col_expr(dispute::Column::Amount, Expr::value(i64_of(&o["amount"])))
                    .col_expr(dispute::Column::EvidenceDueBy, Expr::value(due_by))
                    .col_expr(dispute::Column::StateCreated, Expr::value(created))
                    .col_expr(
                        dispute::Column::StateRank,
                        Expr::value(rank(Kind::Dispute, &status)),
                    );
            }
            Some(q)
        },
    )
    .await?;
    let (opened, changed) = match &applied {
        Applied::Inserted => (true, true),
        Applied::Changed { before } => (
            false,
            is_newer(
                Kind::Dispute,
                &before.status,
                before.state_created,
                &status,
                created,
            ) || withdrawn > before.funds_withdrawn
                || reinstated > before.funds_reinstated
                || details.submission_count > before.submission_count
                || (details.has_evidence && !before.has_evidence)
                || (details.past_due && !before.past_due),
        ),
        Applied::Unchanged { .. } => (false, false),
    };
    if changed {
        emit_dispute(ctx, kind, &id, opened).await?;
    }
    // Flags only ever go true.
    if let Some(pi) = &pi_id {
        scope
            .update::<payment_intent::Entity>()
            .col_expr(payment_intent::Column::Disputed, Expr::value(true))
            .filter(payment_intent::Column::StripeId.eq(pi.as_str()))
            .exec(ctx.db)
            .await?;
        scope
            .update::<order::Entity>()
            .col_expr(order::Column::Disputed, Expr::value(true))
            .filter(order::Column::PaymentIntentId.eq(pi.as_str()))
            .exec(ctx.db)
            .await?;
    }
    if let Some(ch) = &charge_id {
        scope
            .update::<charge::Entity>()
            .col_expr(charge::Column::Disputed, Expr::value(true))
            .filter(charge::Column::StripeId.eq(ch.as_str()))
            .exec(ctx.db)
            .await?;
        scope
            .update::<order::Entity>()
            .col_expr(order::Column::Disputed, Expr::value(true))
            .filter(order::Column::ChargeId.eq(ch.as_str()))
            .exec(ctx.db)
            .await?;
    }
    Ok(Outcome::Processed)
}

/// The `dispute.*` messages of a dispute's change that was just applied: `dispute.opened` once,
/// when Paygate first records the dispute (whichever event arrives first), then one message per
/// Stripe event that changed it (`dispute.closed` once).
async fn emit_dispute<C: ConnectionTrait>(
    ctx: &HandlerCtx<'_, C>,
    kind: EventType,
    id: &str,
    opened: bool,
) -> Result<(), HandlerError> {
    let Some(d) = ctx
        .scope
        .disputes()
        .filter(dispute::Column::StripeId.eq(id))
        .one(ctx.db)
        .await?
    else {
        return Ok(());
    };
    let mut messages = Vec::new();
    if opened {
        messages.push(("dispute.opened", format!("dispute.opened:{id}")));
    }
    let evt = ctx.event.id.as_str();
    match kind {
        EventType::ChargeDisputeUpdated => {
            messages.push(("dispute.updated", format!("dispute.updated:{evt}")))
        }
        EventType::ChargeDisputeClosed => {
            messages.push(("dispute.closed", format!("dispute.closed:{id}")))
        }
        EventType::ChargeDisputeFundsWithdrawn => messages.push((
            "dispute.funds_withdrawn",
            format!("dispute.funds_withdrawn:{evt}"),
        )),
        EventType::ChargeDisputeFundsReinstated => messages.push((
            "dispute.funds_reinstated",
            format!("dispute.funds_reinstated:{evt}"),
        )),
        _ => {}
    }
    for (t, key) in messages {
        outbox::emit(
            ctx.db,
            outbox::Emit {
                scope: ctx.scope,
                event_type: t,
                dedupe_key: key,
                object: outbox::dispute_object(&d),
                shopper: None,
                batch: ctx.outbox,
                test_event: ctx.event.is_test_event(),
            },
        )
        .await?;
    }
    Ok(())
}

/// `source.chargeable` creates the charge (the order id as `Idempotency-Key`, seed 004);
/// `source.failed` / `source.canceled` cancel the order.
pub async fn source<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
    kind: EventType,
) -> HandlerResult {
    let o = ctx.object;
    let id = ctx.str("id")?.to_owned();
    // The event's type says what happened; Stripe's sample payloads carry a generic object
    // whose `status` may lag behind it (a `source.failed` holding a `pending` source).
    let implied = match kind {
        EventType::SourceChargeable => "chargeable",
        EventType::SourceFailed => "failed",
        _ => "canceled",
    };
    let stated = o["status"].as_str().unwrap_or(implied);
    let status = if rank(Kind::Source, stated) >= rank(Kind::Source, implied) {
        stated.to_owned()
    } else {
        implied.to_owned()
    };
    let created = ctx.event.created;
    // The source's own row, forward only.
    let scope = ctx.scope;
    lifecycle::apply_forward(
        ctx.db,
        scope.sources().filter(source::Column::StripeId.eq(&id)),
        [
            source::Column::CompanyPk,
            source::Column::Livemode,
            source::Column::StripeId,
        ],
        || {
            let now = now_ms();
            source::ActiveModel {
                company_pk: Set(scope.company_pk()),
                stripe_id: Set(id.clone()),
                livemode: Set(scope.livemode()),
                status: Set(status.clone()),
                source_type: Set(opt_str(&o["type"])),
                amount: Set(o["amount"].as_i64()),
                currency: Set(opt_str(&o["currency"])),
                state_created: Set(created),
                state_rank: Set(rank(Kind::Source, &status)),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
        },
        |cur| {
            is_newer(
                Kind::Source,
                &cur.status,
                cur.state_created,
                &status,
                created,
            )
            .then(|| {
                scope
                    .update::<source::Entity>()
                    .col_expr(source::Column::Status, Expr::value(status.clone()))
                    .col_expr(source::Column::StateCreated, Expr::value(created))
                    .col_expr(
                        source::Column::StateRank,
                        Expr::value(rank(Kind::Source, &status)),
                    )
                    .col_expr(source::Column::UpdatedAt, Expr::value(now_ms()))
            })
        },
    )
    .await?;
    let Some(ord) = scope
        .orders()
        .filter(order::Column::SourceId.eq(id.as_str()))
        .one(ctx.db)
        .await?
    else {
        return Ok(Outcome::Ignored);
    };
    match kind {
        EventType::SourceChargeable => {
            if ord.status != OrderStatus::AwaitingPayment || ord.charge_id.is_some() {
                // Already charged (a repeated delivery) or no longer payable.
                return Ok(Outcome::Processed);
            }
            let Some(profile) = ctx
                .tenants
                .active_profile_for(scope.company_pk(), ctx.mode().as_str())
                .await?
            else {
                return Err(HandlerError::Other(format!(
                    "no active {} profile to charge the source with",
                    ctx.mode()
                )));
            };
            let mut metadata = BTreeMap::new();
            metadata.insert("order_id".to_owned(), ord.id.clone());
            let charge = ctx
                .stripe
                .create_charge(
                    &profile.secret_key,
                    &CreateCharge {
                        amount: ord.amount.unwrap_or(0),
                        currency: ord.currency.clone().unwrap_or_else(|| "eur".into()),
                        source: id.clone(),
                        description: ord.description.clone(),
                        metadata,
                    },
                    &ord.id,
                )
                .await?;
            let n = scope
                .update::<order::Entity>()
                .col_expr(order::Column::ChargeId, Expr::value(charge.id.clone()))
                .col_expr(order::Column::UpdatedAt, Expr::value(now_ms()))
                .filter(order::Column::Id.eq(ord.id.clone()))
                .filter(order::Column::ChargeId.is_null())
                .exec(ctx.db)
                .await?
                .rows_affected;
            if n > 0 {
                orders::advance(ctx.db, scope, &ord.id, OrderStatus::Charging, created).await?;
            }
            Ok(Outcome::Processed)
        }
        _ => {
            orders::advance(ctx.db, scope, &ord.id, OrderStatus::Canceled, created).await?;
            Ok(Outcome::Processed)
        }
    }
}
