//! The audit log: who changed what in tenant configuration, when. Details name the fields that
//! changed, never their secret values.

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};

use paygate_db::entities::audit_log;

/// Appends one entry.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    actor: &str,
    company_pk: Option<i64>,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), DbErr> {
    audit_log::ActiveModel {
        company_pk: Set(company_pk),
        actor: Set(actor.to_owned()),
        action: Set(action.to_owned()),
        target: Set(target.to_owned()),
        detail: Set(detail.to_string()),
        at: Set(paygate_db::now_ms()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}
