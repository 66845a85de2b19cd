//! `fulfill_checkout` (seed 002): safe to run many times, concurrently, from the worker and from
//! the shopper's landing page, on any number of replicas.
//!
//! Policy:
//! - The session row is claimed with a conditional update (`none` → `claimed`, or a `claimed`
//!   whose lease expired), so one caller at a time does the work; the fulfillment itself is one
//!   transaction whose `fulfillments` row is unique per session, so a second fulfillment cannot
//!   be recorded even if two claims ever overlapped. Exactly one fulfillment per session, ever.
//! - Only a session whose `payment_status` is not `unpaid` is fulfilled; an unpaid one releases
//!   its claim and its order awaits payment.
//! - A crash in the middle leaves the claim to expire (claimable again), and a crash between
//!   creating a session's order and its session row leaves an order the next caller adopts.
//! - A session Paygate has never seen is recorded only once Stripe confirms it exists, so a
//!   landing page called with a made-up id writes nothing.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};

use paygate_db::entities::{checkout_session, fulfillment, line_item, order};
use paygate_db::{OrderStatus, Scope, new_id, now_ms};
use paygate_stripe::{CheckoutSession, StripeClient};
use paygate_tenant::TenantService;

use crate::handlers::context::HandlerError;
use crate::handlers::orders;

/// How long a claim holds before another caller may take over.
pub const CLAIM_LEASE_MS: i64 = 60_000;

/// What a call achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FulfillOutcome {
    /// This call fulfilled the session.
    Fulfilled,
    /// It was fulfilled before.
    AlreadyFulfilled,
    /// Another caller holds the claim right now.
    InProgress,
    /// Stripe says the payment has not arrived yet (delayed methods): the order awaits payment.
    Unpaid,
    /// Paygate has no such session and Stripe does not know it either: nothing was recorded.
    Unknown,
}

async fn find_session<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    session_id: &str,
) -> Result<Option<checkout_session::Model>, HandlerError> {
    Ok(scope
        .checkout_sessions()
        .filter(checkout_session::Column::SessionId.eq(session_id))
        .one(db)
        .await?)
}

async fn find_session_order<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    session_id: &str,
) -> Result<Option<order::Model>, HandlerError> {
    Ok(scope
        .orders()
        .filter(order::Column::CheckoutSessionId.eq(session_id))
        .one(db)
        .await?)
}

/// The session row, created (with its order, `kind` `checkout`, status `open`) when Paygate has
/// not seen the session before. Safe under concurrency: both inserts are insert-or-ignore on
/// their unique rule (`uq_orders_company_checkout_session`,
/// `uq_checkout_sessions_company_session`) and the winners are read back, so every caller ends
/// up with the same row and the same order. An order left without its session row (a crash
/// between the two inserts) is adopted.
pub async fn ensure_session<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    session_id: &str,
) -> Result<checkout_session::Model, HandlerError> {
    if let Some(s) = find_session(db, scope, session_id).await? {
        return Ok(s);
    }
    let now = now_ms();
    let order_id = match find_session_order(db, scope, session_id).await? {
        Some(o) => o.id,
        None => {
            order::Entity::insert(order::ActiveModel {
                id: Set(new_id("ord")),
                company_pk: Set(scope.company_pk()),
                livemode: Set(scope.livemode()),
                kind: Set("checkout".into()),
                status: Set("open".into()),
                checkout_session_id: Set(Some(session_id.to_owned())),
                metadata: Set("{}".into()),
                disputed: Set(false),
                status_created: Set(0),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            })
            .on_conflict(
                OnConflict::columns([
                    order::Column::CompanyPk,
                    order::Column::Livemode,
                    order::Column::CheckoutSessionId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(db)
            .await?;
            find_session_order(db, scope, session_id)
                .await?
                .ok_or_else(|| {
                    HandlerError::Other(
                        "the order of a checkout session could not be created".into(),
                    )
                })?
                .id
        }
    };
    checkout_session::Entity::insert(checkout_session::ActiveModel {
        company_pk: Set(scope.company_pk()),
        session_id: Set(session_id.to_owned()),
        order_id: Set(order_id),
        livemode: Set(scope.livemode()),
        fulfillment_status: Set("none".into()),
        state_created: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            checkout_session::Column::CompanyPk,
            checkout_session::Column::Livemode,
            checkout_session::Column::SessionId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    find_session(db, scope, session_id)
        .await?
        .ok_or_else(|| HandlerError::Other("checkout session row could not be created".into()))
}

/// The session from Stripe with every line item, read with the active profile of its mode.
async fn retrieve(
    tenants: &TenantService,
    stripe: &StripeClient,
    scope: Scope,
    session_id: &str,
) -> Result<CheckoutSession, HandlerError> {
    let mode = scope.mode();
    let profile = tenants
        .active_profile_for(scope.company_pk(), mode.as_str())
        .await?
        .ok_or_else(|| {
            HandlerError::Other(format!("no active {mode} profile to read the session with"))
        })?;
    Ok(stripe
        .retrieve_checkout_session(&profile.secret_key, session_id)
        .await?)
}

/// Gives a claim back (only our own: a claim that expired and was taken over is left alone).
async fn release(
    db: &DatabaseConnection,
    scope: Scope,
    row_id: i64,
    claim_until: i64,
) -> Result<(), HandlerError> {
    scope
        .update::<checkout_session::Entity>()
        .col_expr(
            checkout_session::Column::FulfillmentStatus,
            Expr::value("none"),
        )
        .col_expr(
            checkout_session::Column::ClaimUntil,
            Expr::value(Option::<i64>::None),
        )
        .filter(checkout_session::Column::Id.eq(row_id))
        .filter(checkout_session::Column::FulfillmentStatus.eq("claimed"))
        .filter(checkout_session::Column::ClaimUntil.eq(claim_until))
        .exec(db)
        .await?;
    Ok(())
}

/// Fulfills a Checkout Session exactly once. `by` says who called (`worker` or `landing`) and is
/// recorded on the fulfillment. The scope's mode picks the profile (test or live) that reads the
/// session from Stripe, and the rows it may touch: a session of the other mode is not found.
pub async fn fulfill_checkout(
    db: &DatabaseConnection,
    tenants: &TenantService,
    stripe: &StripeClient,
    scope: Scope,
    session_id: &str,
    by: &str,
) -> Result<FulfillOutcome, HandlerError> {
    let mut prefetched = None;
    let row = match find_session(db, scope, session_id).await? {
        Some(row) => row,
        None => {
            // Never seen: record it only if Stripe knows it. The state read here is safe to use
            // after the claim below: a session's payment only moves from unpaid to paid, and its
            // line items are fixed once the shopper completed it.
            match retrieve(tenants, stripe, scope, session_id).await {
                Ok(s) => prefetched = Some(s),
                Err(HandlerError::Stripe(e)) if e.status() == Some(404) => {
                    return Ok(FulfillOutcome::Unknown);
                }
                Err(e) => return Err(e),
            }
            ensure_session(db, scope, session_id).await?
        }
    };
    if row.fulfillment_status == "fulfilled" {
        return Ok(FulfillOutcome::AlreadyFulfilled);
    }
    let now = now_ms();
    let claim_until = now + CLAIM_LEASE_MS;
    let claimed = scope
        .update::<checkout_session::Entity>()
        .col_expr(
            checkout_session::Column::FulfillmentStatus,
            Expr::value("claimed"),
        )
        .col_expr(
            checkout_session::Column::ClaimUntil,
            Expr::value(claim_until),
        )
        .filter(checkout_session::Column::Id.eq(row.id))
        .filter(
            sea_orm::Condition::any()
                .add(checkout_session::Column::FulfillmentStatus.eq("none"))
                .add(
                    sea_orm::Condition::all()
                        .add(checkout_session::Column::FulfillmentStatus.eq("claimed"))
                        .add(checkout_session::Column::ClaimUntil.lt(now)),
                ),
        )
        .exec(db)
        .await?
        .rows_affected;
    if claimed == 0 {
        let cur = scope
            .checkout_sessions()
            .filter(checkout_session::Column::Id.eq(row.id))
            .one(db)
            .await?;
        return Ok(match cur.map(|c| c.fulfillment_status) {
            Some(s) if s == "fulfilled" => FulfillOutcome::AlreadyFulfilled,
            _ => FulfillOutcome::InProgress,
        });
    }
    let session = match prefetched {
        Some(s) => s,
        None => match retrieve(tenants, stripe, scope, session_id).await {
            Ok(s) => s,
            Err(e) => {
                release(db, scope, row.id, claim_until).await?;
                return Err(e);
            }
        },
    };
    if session.payment_status == "unpaid" {
        release(db, scope, row.id, claim_until).await?;
        orders::advance(db, scope, &row.order_id, OrderStatus::AwaitingPayment, 0).await?;
        return Ok(FulfillOutcome::Unpaid);
    }
    record(db, scope, &row, &session, by).await
}

/// Records the fulfillment in one transaction: line items, the `fulfillments` row, the session
/// `fulfilled`, the order `fulfilled` with its amounts and customer.
async fn record(
    db: &DatabaseConnection,
    scope: Scope,
    row: &checkout_session::Model,
    session: &CheckoutSession,
    by: &str,
) -> Result<FulfillOutcome, HandlerError> {
    let session_id = row.session_id.as_str();
    let email = session.email().map(str::to_owned);
    let now = now_ms();
    let txn = db.begin().await?;
    for li in &session.line_items {
        line_item::Entity::insert(line_item::ActiveModel {
            company_pk: Set(scope.company_pk()),
            livemode: Set(scope.livemode()),
            session_id: Set(session_id.to_owned()),
            stripe_line_item_id: Set(li.id.clone()),
            description: Set(li.description.clone()),
            quantity: Set(li.quantity),
            amount_subtotal: Set(li.amount_subtotal),
            amount_total: Set(li.amount_total),
            currency: Set(Some(li.currency.clone()).filter(|c| !c.is_empty())),
            price_id: Set(li.price_id.clone()),
            product_id: Set(li.product_id.clone()),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([
                line_item::Column::CompanyPk,
                line_item::Column::Livemode,
                line_item::Column::SessionId,
                line_item::Column::StripeLineItemId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    }
    let inserted = fulfillment::Entity::insert(fulfillment::ActiveModel {
        company_pk: Set(scope.company_pk()),
        livemode: Set(scope.livemode()),
        session_id: Set(session_id.to_owned()),
        order_id: Set(row.order_id.clone()),
        payment_status: Set(session.payment_status.clone()),
        amount_total: Set(session.amount_total),
        currency: Set(session.currency.clone()),
        customer_email: Set(email.clone()),
        line_item_count: Set(i32::try_from(session.line_items.len()).unwrap_or(i32::MAX)),
        fulfilled_by: Set(by.to_owned()),
        fulfilled_at: Set(now),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            fulfillment::Column::CompanyPk,
            fulfillment::Column::Livemode,
            fulfillment::Column::SessionId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    let mut cs = scope
        .update::<checkout_session::Entity>()
        .col_expr(
            checkout_session::Column::FulfillmentStatus,
            Expr::value("fulfilled"),
        )
        .col_expr(
            checkout_session::Column::ClaimUntil,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(
            checkout_session::Column::PaymentStatus,
            Expr::value(session.payment_status.clone()),
        )
        .col_expr(
            checkout_session::Column::AmountTotal,
            Expr::value(session.amount_total),
        )
        .col_expr(
            checkout_session::Column::Currency,
            Expr::value(session.currency.clone()),
        )
        .col_expr(
            checkout_session::Column::CustomerEmail,
            Expr::value(email.clone()),
        )
        .col_expr(checkout_session::Column::UpdatedAt, Expr::value(now));
    if inserted > 0 {
        cs = cs.col_expr(checkout_session::Column::FulfilledAt, Expr::value(now));
    }
    if let Some(pi) = &session.payment_intent {
        cs = cs.col_expr(
            checkout_session::Column::PaymentIntentId,
            Expr::value(pi.clone()),
        );
    }
    cs.filter(checkout_session::Column::Id.eq(row.id))
        .exec(&txn)
        .await?;
    let mut o = scope
        .update::<order::Entity>()
        .col_expr(order::Column::Amount, Expr::value(session.amount_total))
        .col_expr(
            order::Column::Currency,
            Expr::value(session.currency.clone()),
        )
        .col_expr(order::Column::CustomerEmail, Expr::value(email));
    if let Some(pi) = &session.payment_intent {
        o = o.col_expr(order::Column::PaymentIntentId, Expr::value(pi.clone()));
    }
    if let Some(r) = &session.client_reference_id {
        o = o.col_expr(order::Column::ClientReferenceId, Expr::value(r.clone()));
    }
    o.filter(order::Column::Id.eq(row.order_id.clone()))
        .exec(&txn)
        .await?;
    if let Some(pi) = &session.payment_intent {
        orders::flag_if_disputed(&txn, scope, &row.order_id, pi).await?;
        // Refunds recorded before the order knew its payment.
        let origin = crate::refunds::Origin {
            created: 0,
            batch: None,
            test_event: false,
        };
        crate::refunds::sync_order(&txn, scope, &row.order_id, Some(origin)).await?;
    }
    orders::advance(&txn, scope, &row.order_id, OrderStatus::Fulfilled, 0).await?;
    txn.commit().await?;
    Ok(if inserted > 0 {
        FulfillOutcome::Fulfilled
    } else {
        FulfillOutcome::AlreadyFulfilled
    })
}
