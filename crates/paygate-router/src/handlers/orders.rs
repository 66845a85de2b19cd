//! Orders move forward only (see `lifecycle::order_rank`).

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use paygate_db::entities::order;

use crate::lifecycle::order_rank;

/// Moves an order to `new_status` if that ranks higher than its current status; returns whether
/// it moved. The update is conditional on the status read, so concurrent movers cannot step back.
pub async fn advance<C: ConnectionTrait>(
    db: &C,
    company_pk: i64,
    order_id: &str,
    new_status: &str,
    event_created: i64,
) -> Result<bool, DbErr> {
    for _ in 0..5 {
        let Some(o) = order::Entity::find_by_id(order_id.to_owned())
            .filter(order::Column::CompanyPk.eq(company_pk))
            .one(db)
            .await?
        else {
            return Ok(false);
        };
        if order_rank(new_status) <= order_rank(&o.status) {
            return Ok(false);
        }
        let mut q = order::Entity::update_many()
            .col_expr(order::Column::Status, Expr::value(new_status))
            .col_expr(
                order::Column::StatusCreated,
                Expr::value(event_created.max(o.status_created)),
            )
            .col_expr(order::Column::UpdatedAt, Expr::value(paygate_db::now_ms()))
            .filter(order::Column::Id.eq(order_id))
            .filter(order::Column::CompanyPk.eq(company_pk))
            .filter(order::Column::Status.eq(o.status.clone()));
        if new_status == "fulfilled" {
            q = q.col_expr(
                order::Column::FulfilledAt,
                Expr::value(paygate_db::now_ms()),
            );
        }
        if q.exec(db).await?.rows_affected > 0 {
            return Ok(true);
        }
    }
    Ok(false)
}
