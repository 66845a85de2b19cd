//! `checkout.session.*`: the session and its order; paid sessions are fulfilled, delayed ones
//! await payment (or are cancelled with their payment intent), failed and expired ones say so.
//!
//! Policy: every event first records what it says about the session (only if it is not older
//! than what is stored, by the event's `created`) and the facts about the order that never go
//! stale (payment intent, customer e-mail, amounts, reference, metadata of a session not created
//! through Paygate); the order's status then moves forward only (`orders::advance`), so repeated
//! and out-of-order events converge. Fulfillment goes through `fulfill_checkout`, exactly once;
//! while another caller holds its claim the event is retried, so the webhook always completes it.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, QueryFilter, TransactionTrait};

use paygate_db::entities::{checkout_session, order, payment_intent};
use paygate_db::{Mode, OrderStatus, now_ms};
use paygate_wire::EventType;

use super::context::{HandlerCtx, HandlerError, HandlerResult, Outcome, id_of};
use super::orders;
use crate::fulfillment::{FulfillOutcome, ensure_session, fulfill_checkout};

/// Handles the four Checkout events.
pub async fn handle<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
    kind: EventType,
) -> HandlerResult {
    let o = ctx.object;
    let session_id = ctx.str("id")?.to_owned();
    let scope = ctx.scope;
    // A session id says its mode (`cs_live_…`, `cs_test_…`): an event of the other mode that
    // names it is not Stripe's.
    if Mode::of_stripe_id(&session_id).is_some_and(|m| m != scope.mode()) {
        return Err(HandlerError::Payload(format!(
            "a {} event names the session {session_id} of the other mode",
            scope.mode()
        )));
    }
    let row = ensure_session(ctx.db, scope, &session_id).await?;
    let email = o["customer_details"]["email"]
        .as_str()
        .or_else(|| o["customer_email"].as_str())
        .map(str::to_owned);
    let pi = id_of(&o["payment_intent"]);
    // What the event says about the session, when it is newer than what we hold.
    scope
        .update::<checkout_session::Entity>()
        .col_expr(
            checkout_session::Column::Status,
            Expr::value(o["status"].as_str().map(str::to_owned)),
        )
        .col_expr(
            checkout_session::Column::PaymentStatus,
            Expr::value(o["payment_status"].as_str().map(str::to_owned)),
        )
        .col_expr(
            checkout_session::Column::AmountTotal,
            Expr::value(o["amount_total"].as_i64()),
        )
        .col_expr(
            checkout_session::Column::Currency,
            Expr::value(o["currency"].as_str().map(str::to_owned)),
        )
        .col_expr(
            checkout_session::Column::CustomerEmail,
            Expr::value(email.clone()),
        )
        .col_expr(
            checkout_session::Column::PaymentIntentId,
            Expr::value(pi.clone()),
        )
        .col_expr(
            checkout_session::Column::StateCreated,
            Expr::value(ctx.event.created),
        )
        .col_expr(checkout_session::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(checkout_session::Column::Id.eq(row.id))
        .filter(checkout_session::Column::StateCreated.lte(ctx.event.created))
        .exec(ctx.db)
        .await?;
    // Facts about the order that never go stale.
    let mut q = scope
        .update::<order::Entity>()
        .col_expr(order::Column::UpdatedAt, Expr::value(now_ms()));
    if let Some(pi) = &pi {
        q = q.col_expr(order::Column::PaymentIntentId, Expr::value(pi.clone()));
    }
    if let Some(e) = &email {
        q = q.col_expr(order::Column::CustomerEmail, Expr::value(e.clone()));
    }
    if let Some(a) = o["amount_total"].as_i64() {
        q = q.col_expr(order::Column::Amount, Expr::value(a));
    }
    if let Some(c) = o["currency"].as_str() {
        q = q.col_expr(order::Column::Currency, Expr::value(c));
    }
    if let Some(r) = o["client_reference_id"].as_str() {
        q = q.col_expr(order::Column::ClientReferenceId, Expr::value(r));
    }
    if let Some(l) = o["locale"].as_str().filter(|l| *l != "auto") {
        q = q.col_expr(order::Column::Locale, Expr::value(l));
    }
    q.filter(order::Column::Id.eq(row.order_id.clone()))
        .exec(ctx.db)
        .await?;
    if let Some(pi) = &pi {
        orders::flag_if_disputed(ctx.db, scope, &row.order_id, pi).await?;
        // Refunds recorded before the order knew its payment.
        let origin = crate::refunds::Origin {
            created: ctx.event.created,
            batch: ctx.outbox,
            test_event: ctx.event.is_test_event(),
        };
        crate::refunds::sync_order(ctx.db, scope, &row.order_id, Some(origin)).await?;
    }
    // The session's metadata, for an order whose merchant did not give any through Paygate.
    if let Some(m) = o["metadata"].as_object() {
        let mut m = m.clone();
        m.remove("paygate_order_id");
        if !m.is_empty() {
            scope
                .update::<order::Entity>()
                .col_expr(
                    order::Column::Metadata,
                    Expr::value(serde_json::Value::Object(m).to_string()),
                )
                .filter(order::Column::Id.eq(row.order_id.clone()))
                .filter(order::Column::Metadata.eq("{}"))
                .exec(ctx.db)
                .await?;
        }
    }

    let created = ctx.event.created;
    let fulfill = || async {
        match fulfill_checkout(
            ctx.pool,
            ctx.tenants,
            ctx.stripe,
            scope,
            &session_id,
            "worker",
        )
        .await?
        {
            FulfillOutcome::InProgress => Err(HandlerError::Other(
                "fulfillment in progress elsewhere; will check again".into(),
            )),
            _ => Ok(Outcome::Processed),
        }
    };
    match kind {
        EventType::CheckoutSessionCompleted => match o["payment_status"].as_str() {
            Some("paid") | Some("no_payment_required") => fulfill().await,
            _ => {
                orders::advance(
                    ctx.db,
                    scope,
                    &row.order_id,
                    OrderStatus::AwaitingPayment,
                    created,
                )
                .await?;
                // Its payment intent's cancellation may have come first (issue 20).
                if let Some(pi) = &pi {
                    let stored = scope
                        .payment_intents()
                        .filter(payment_intent::Column::StripeId.eq(pi.as_str()))
                        .one(ctx.db)
                        .await?;
                    if let Some(p) = stored {
                        super::payments::order_follows_canceled_payment(ctx.db, scope, &p).await?;
                    }
                }
                Ok(Outcome::Processed)
            }
        },
        EventType::CheckoutSessionAsyncPaymentSucceeded => fulfill().await,
        EventType::CheckoutSessionAsyncPaymentFailed => {
            orders::advance(
                ctx.db,
                scope,
                &row.order_id,
                OrderStatus::PaymentFailed,
                created,
            )
            .await?;
            Ok(Outcome::Processed)
        }
        EventType::CheckoutSessionExpired => {
            orders::advance(ctx.db, scope, &row.order_id, OrderStatus::Expired, created).await?;
            Ok(Outcome::Processed)
        }
        _ => Ok(Outcome::Ignored),
    }
}
