//! Orders move forward only: see `lifecycle::order_rank` and `lifecycle::advance_order_status`.

pub use crate::lifecycle::advance_order_status as advance;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, PaginatorTrait, QueryFilter};

use paygate_db::Scope;
use paygate_db::entities::{dispute, order};

/// Flags an order disputed when a dispute on `payment_intent` is already recorded: the dispute
/// may have been handled before the event that linked the order to its payment (events of
/// different objects are handled concurrently), and the dispute handler flags only orders it can
/// find at that time.
pub async fn flag_if_disputed<C: ConnectionTrait>(
    db: &C,
    scope: Scope,
    order_id: &str,
    payment_intent: &str,
) -> Result<(), DbErr> {
    let disputes = scope
        .disputes()
        .filter(dispute::Column::PaymentIntentId.eq(payment_intent))
        .count(db)
        .await?;
    if disputes > 0 {
        scope
            .update::<order::Entity>()
            .col_expr(order::Column::Disputed, Expr::value(true))
            .filter(order::Column::Id.eq(order_id))
            .exec(db)
            .await?;
    }
    Ok(())
}
