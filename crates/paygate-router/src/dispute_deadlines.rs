//! `dispute.due_soon`: the merchant is told three days and again one day before a dispute's
//! evidence is due (Stripe's `evidence_details.due_by`).
//!
//! Policy:
//! - The decision takes `now` (seconds) as a parameter ([`notices_due`], [`notify_due_soon`]):
//!   the server's periodic task passes the clock, tests pass the time they want.
//! - A notice is due for a dispute still waiting for evidence (`needs_response`,
//!   `warning_needs_response`) whose deadline is ahead: `3d` when it is at most three days
//!   away (and more than one), `1d` when at most one day away. A dispute found already within
//!   a day gets only `1d`. None once the merchant submitted evidence or accepted the dispute
//!   through Paygate (`dispute_evidence`), even before Stripe's event saying so arrives.
//! - Each notice is sent once per dispute: a row in `dispute_due_notices` (unique company +
//!   mode + dispute + notice) is written with its message in one transaction, and the message's
//!   dedupe key (`dispute.due_soon:<dispute>:<notice>`) is unique too; reruns, overlapping
//!   sweeps and replicas change nothing.
//! - Each dispute is handled in its own scope (its company and mode): a test dispute's notice
//!   is a test message.

use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set, TransactionTrait,
};

use paygate_db::entities::{dispute, dispute_due_notice, dispute_evidence};
use paygate_db::{Scope, now_ms};
use paygate_notify::outbox;

/// The message type.
pub const DUE_SOON: &str = "dispute.due_soon";

const DAY: i64 = 86_400;

/// The statuses in which Stripe waits for the merchant's evidence.
const WAITING: [&str; 2] = ["needs_response", "warning_needs_response"];

/// The notice due for a dispute of `status` due at `due_by` (seconds) at `now`: `"3d"`,
/// `"1d"` or none.
#[must_use]
pub fn notices_due(status: &str, due_by: Option<i64>, now: i64) -> Option<&'static str> {
    let due_by = due_by?;
    if !WAITING.contains(&status) || due_by <= now {
        return None;
    }
    let left = due_by - now;
    if left <= DAY {
        Some("1d")
    } else if left <= 3 * DAY {
        Some("3d")
    } else {
        None
    }
}

/// Sends every `dispute.due_soon` notice due at `now` (seconds) that was not sent yet, over
/// every company and mode; returns how many were sent.
///
/// # Errors
///
/// A database error; the notices written before it stay written (each in its own
/// transaction).
pub async fn notify_due_soon(db: &DatabaseConnection, now: i64) -> Result<usize, DbErr> {
    // Every company's disputes at once: each row is then handled in its own scope.
    let candidates = dispute::Entity::find()
        .filter(dispute::Column::Status.is_in(WAITING))
        .filter(dispute::Column::EvidenceDueBy.gt(now))
        .filter(dispute::Column::EvidenceDueBy.lte(now + 3 * DAY))
        .all(db)
        .await?;
    let mut sent = 0;
    for d in candidates {
        let Some(notice) = notices_due(&d.status, d.evidence_due_by, now) else {
            continue;
        };
        let due_by = d.evidence_due_by.unwrap_or_default();
        let scope = Scope::of_livemode(d.company_pk, d.livemode);
        let answered = scope
            .find::<dispute_evidence::Entity>()
            .filter(dispute_evidence::Column::DisputeId.eq(d.stripe_id.as_str()))
            .filter(dispute_evidence::Column::Status.is_in(["submitted", "accepted"]))
            .one(db)
            .await?
            .is_some();
        if answered {
            continue;
        }
        let txn = db.begin().await?;
        let inserted = dispute_due_notice::Entity::insert(dispute_due_notice::ActiveModel {
            company_pk: Set(scope.company_pk()),
            livemode: Set(scope.livemode()),
            dispute_id: Set(d.stripe_id.clone()),
            notice: Set(notice.to_owned()),
            due_by: Set(due_by),
            sent_at: Set(now_ms()),
            ..Default::default()
        })
        .on_conflict(
            OnConflict::columns([
                dispute_due_notice::Column::CompanyPk,
                dispute_due_notice::Column::Livemode,
                dispute_due_notice::Column::DisputeId,
                dispute_due_notice::Column::Notice,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        if inserted == 0 {
            txn.rollback().await?;
            continue;
        }
        let mut object = outbox::dispute_object(&d);
        object["deadline_notice"] = serde_json::json!(notice);
        object["seconds_left"] = serde_json::json!(due_by - now);
        outbox::emit(
            &txn,
            outbox::Emit {
                scope,
                event_type: DUE_SOON,
                dedupe_key: format!("{DUE_SOON}:{}:{notice}", d.stripe_id),
                object,
                shopper: None,
                batch: None,
                test_event: false,
            },
        )
        .await?;
        txn.commit().await?;
        sent += 1;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_days_then_one_day_then_nothing() {
        let due = 1_000_000;
        assert_eq!(
            notices_due("needs_response", Some(due), due - 4 * DAY),
            None
        );
        assert_eq!(
            notices_due("needs_response", Some(due), due - 3 * DAY),
            Some("3d")
        );
        assert_eq!(
            notices_due("warning_needs_response", Some(due), due - DAY - 1),
            Some("3d")
        );
        assert_eq!(
            notices_due("needs_response", Some(due), due - DAY),
            Some("1d")
        );
        assert_eq!(notices_due("needs_response", Some(due), due), None);
        assert_eq!(notices_due("under_review", Some(due), due - DAY), None);
        assert_eq!(notices_due("needs_response", None, due), None);
    }
}
