//! `refund.*` and `radar.early_fraud_warning.*`: the refunds of orders and the warnings on their
//! payments (the rules are in `crate::refunds`).

use sea_orm::{ConnectionTrait, TransactionTrait};

use super::context::{HandlerCtx, HandlerError, HandlerResult, Outcome};
use crate::refunds::{self, Origin, RefundError};

impl From<RefundError> for HandlerError {
    fn from(e: RefundError) -> Self {
        match e {
            RefundError::Db(e) => HandlerError::Db(e),
            RefundError::Stripe(e) => HandlerError::Stripe(e),
            RefundError::Tenant(e) => HandlerError::Tenant(e),
            RefundError::Invalid { field, message } => {
                HandlerError::Payload(format!("{field}: {message}"))
            }
            other => HandlerError::Other(other.to_string()),
        }
    }
}

fn origin<'a, C>(ctx: &HandlerCtx<'a, C>) -> Origin<'a> {
    Origin {
        created: ctx.event.created,
        batch: ctx.outbox,
        test_event: ctx.event.is_test_event(),
    }
}

/// `refund.created`, `refund.updated`, `refund.failed`: the refund, forward only, and the
/// orders it belongs to. A `refund.failed` whose object still says otherwise is failed.
pub async fn refund<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
    kind: paygate_wire::EventType,
) -> HandlerResult {
    ctx.str("id")?;
    let mut object = ctx.object.clone();
    if kind == paygate_wire::EventType::RefundFailed
        && refunds::counts(object["status"].as_str().unwrap_or_default())
    {
        object["status"] = serde_json::json!(paygate_db::RefundStatus::Failed.as_str());
    }
    refunds::record(ctx.db, ctx.scope, &object, origin(ctx), None, None).await?;
    Ok(Outcome::Processed)
}

/// `radar.early_fraud_warning.*`: the warning, its message, and the automatic refund when the
/// company asked for it (calls Stripe: `ctx.db` is the pool).
pub async fn early_fraud_warning<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
) -> HandlerResult {
    ctx.str("id")?;
    refunds::early_fraud_warning(
        ctx.pool,
        ctx.tenants,
        ctx.stripe,
        ctx.scope,
        ctx.object,
        Origin {
            created: ctx.event.created,
            // The handler runs on the pool, outside any batch.
            batch: None,
            test_event: ctx.event.is_test_event(),
        },
    )
    .await?;
    Ok(Outcome::Processed)
}
