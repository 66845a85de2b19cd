//! `fulfill_checkout` (seed 002): safe to run many times, concurrently, from the worker and from
//! the shopper's landing page, on any number of replicas.
//!
//! Policy: the session row is claimed with a conditional update (`none` → `claimed`, or a
//! `claimed` whose lease expired), so one caller at a time does the work; the fulfillment itself
//! is one transaction whose `fulfillments` row is unique per session, so a second fulfillment
//! cannot be recorded even if two claims ever overlapped. Only a session whose `payment_status`
//! is not `unpaid` is fulfilled. A crash in the middle leaves the claim to expire.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};

use paygate_db::entities::{checkout_session, fulfillment, line_item, order};
use paygate_db::{is_unique_violation, new_id, now_ms};
use paygate_stripe::StripeClient;
use paygate_tenant::TenantService;

use crate::handlers::HandlerError;
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
}

/// The session row, created (with its order) when Paygate has not seen the session before.
pub async fn ensure_session<C: ConnectionTrait>(
    db: &C,
    company_pk: i64,
    session_id: &str,
    livemode: bool,
) -> Result<checkout_session::Model, HandlerError> {
    for _ in 0..3 {
        if let Some(s) = checkout_session::Entity::find()
            .filter(checkout_session::Column::CompanyPk.eq(company_pk))
            .filter(checkout_session::Column::SessionId.eq(session_id))
            .one(db)
            .await?
        {
            return Ok(s);
        }
        let now = now_ms();
        let order_id = new_id("ord");
        let order_row = order::ActiveModel {
            id: Set(order_id.clone()),
            company_pk: Set(company_pk),
            livemode: Set(livemode),
            kind: Set("checkout".into()),
            status: Set("open".into()),
            checkout_session_id: Set(Some(session_id.to_owned())),
            metadata: Set("{}".into()),
            disputed: Set(false),
            status_created: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        if let Err(e) = order::Entity::insert(order_row)
            .exec_without_returning(db)
            .await
        {
            if is_unique_violation(&e) {
                continue; // another caller created the order for this session
            }
            return Err(e.into());
        }
        let row = checkout_session::ActiveModel {
            company_pk: Set(company_pk),
            session_id: Set(session_id.to_owned()),
            order_id: Set(order_id),
            livemode: Set(livemode),
            fulfillment_status: Set("none".into()),
            state_created: Set(0),
            created_at: Set(now),
            updated_at: Set(now),
            ..Default::default()
        };
        if let Err(e) = checkout_session::Entity::insert(row)
            .exec_without_returning(db)
            .await
            && !is_unique_violation(&e)
        {
            return Err(e.into());
        }
    }
    checkout_session::Entity::find()
        .filter(checkout_session::Column::CompanyPk.eq(company_pk))
        .filter(checkout_session::Column::SessionId.eq(session_id))
        .one(db)
        .await?
        .ok_or_else(|| HandlerError::Other("checkout session row could not be created".into()))
}

async fn release(db: &DatabaseConnection, row_id: i64) -> Result<(), HandlerError> {
    checkout_session::Entity::update_many()
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
        .exec(db)
        .await?;
    Ok(())
}

/// Fulfills a Checkout Session exactly once. `by` says who called (`worker` or `landing`).
pub async fn fulfill_checkout(
    db: &DatabaseConnection,
    tenants: &TenantService,
    stripe: &StripeClient,
    company_pk: i64,
    session_id: &str,
    livemode: bool,
    by: &str,
) -> Result<FulfillOutcome, HandlerError> {
    let row = ensure_session(db, company_pk, session_id, livemode).await?;
    if row.fulfillment_status == "fulfilled" {
        return Ok(FulfillOutcome::AlreadyFulfilled);
    }
    let now = now_ms();
    let claimed = checkout_session::Entity::update_many()
        .col_expr(
            checkout_session::Column::FulfillmentStatus,
            Expr::value("claimed"),
        )
        .col_expr(
            checkout_session::Column::ClaimUntil,
            Expr::value(now + CLAIM_LEASE_MS),
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
        let cur = checkout_session::Entity::find_by_id(row.id).one(db).await?;
        return Ok(match cur.map(|c| c.fulfillment_status) {
            Some(s) if s == "fulfilled" => FulfillOutcome::AlreadyFulfilled,
            _ => FulfillOutcome::InProgress,
        });
    }
    let mode = if row.livemode { "live" } else { "test" };
    let result = async {
        let profile = tenants
            .active_profile_for(company_pk, mode)
            .await?
            .ok_or_else(|| {
                HandlerError::Other(format!("no active {mode} profile to read the session with"))
            })?;
        Ok::<_, HandlerError>(
            stripe
                .retrieve_checkout_session(&profile.secret_key, session_id)
                .await?,
        )
    }
    .await;
    let session = match result {
        Ok(s) => s,
        Err(e) => {
            release(db, row.id).await?;
            return Err(e);
        }
    };
    if session.payment_status == "unpaid" {
        release(db, row.id).await?;
        orders::advance(db, company_pk, &row.order_id, "awaiting_payment", 0).await?;
        return Ok(FulfillOutcome::Unpaid);
    }
    let email = session.email().map(str::to_owned);
    let txn = db.begin().await?;
    for li in &session.line_items {
        line_item::Entity::insert(line_item::ActiveModel {
            company_pk: Set(company_pk),
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
        company_pk: Set(company_pk),
        session_id: Set(session_id.to_owned()),
        order_id: Set(row.order_id.clone()),
        payment_status: Set(session.payment_status.clone()),
        amount_total: Set(session.amount_total),
        currency: Set(session.currency.clone()),
        customer_email: Set(email.clone()),
        line_item_count: Set(session.line_items.len() as i32),
        fulfilled_by: Set(by.to_owned()),
        fulfilled_at: Set(now_ms()),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            fulfillment::Column::CompanyPk,
            fulfillment::Column::SessionId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(&txn)
    .await?;
    checkout_session::Entity::update_many()
        .col_expr(
            checkout_session::Column::FulfillmentStatus,
            Expr::value("fulfilled"),
        )
        .col_expr(checkout_session::Column::FulfilledAt, Expr::value(now_ms()))
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
        .filter(checkout_session::Column::Id.eq(row.id))
        .exec(&txn)
        .await?;
    order::Entity::update_many()
        .col_expr(order::Column::Amount, Expr::value(session.amount_total))
        .col_expr(
            order::Column::Currency,
            Expr::value(session.currency.clone()),
        )
        .col_expr(order::Column::CustomerEmail, Expr::value(email))
        .filter(order::Column::Id.eq(row.order_id.clone()))
        .exec(&txn)
        .await?;
    orders::advance(&txn, company_pk, &row.order_id, "fulfilled", 0).await?;
    txn.commit().await?;
    Ok(if inserted > 0 {
        FulfillOutcome::Fulfilled
    } else {
        FulfillOutcome::AlreadyFulfilled
    })
}
