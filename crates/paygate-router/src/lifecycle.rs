//! Forward-only state. Stripe guarantees neither order nor single delivery, so a stored state is
//! replaced only by a *newer* one:
//!
//! 1. a terminal status (a payment `succeeded`/`canceled`, a dispute `won`/`lost`/…) is never
//!    replaced by a non-terminal one, whatever the times say (a late `processing` never
//!    overwrites `succeeded`; an `updated` after `closed` never reopens a dispute);
//! 2. otherwise the event's `created` decides, and on a tie the status's rank in its lifecycle;
//! 3. the same (created, status) again changes nothing, so every handler is idempotent.
//!
//! Monotonic facts (a dispute on a payment, money withdrawn, an amount refunded) only ever grow.
//!
//! Rows keep the `created` and rank of the state they hold (`state_created`, `state_rank`), and
//! every write is conditional on the state it was judged against (or is an insert that does
//! nothing on conflict), so two workers applying events of one object at once cannot step back:
//! the loser re-reads and judges again.

use sea_orm::sea_query::{Alias, Expr, ExprTrait, IntoIden, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, Iterable,
    ModelTrait, QueryFilter, Select, TransactionSession, TransactionTrait, TryInsertResult,
    UpdateMany,
};

use paygate_notify::outbox;

use paygate_db::entities::order;
use paygate_db::{
    ChargeStatus, DisputeStatus, Lifecycle, OrderStatus, PaymentStatus, RefundStatus, Scope,
    SourceStatus,
};

/// Kinds of Stripe object whose status has a lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    PaymentIntent,
    Charge,
    Dispute,
    Source,
    Order,
    Refund,
}

/// The rank of `status` in the lifecycle of `kind` and whether it ends it (an unknown status
/// ranks lowest, -1, and ends nothing): the ranks are written beside the statuses, in
/// `paygate_db::status`.
fn judge(kind: Kind, status: &str) -> (i32, bool) {
    fn of<S: Lifecycle>(status: &str) -> (i32, bool) {
        S::parse(status).map_or((-1, false), |s| (s.rank(), s.is_terminal()))
    }
    match kind {
        Kind::PaymentIntent => of::<PaymentStatus>(status),
        Kind::Charge => of::<ChargeStatus>(status),
        Kind::Dispute => of::<DisputeStatus>(status),
        Kind::Source => of::<SourceStatus>(status),
        Kind::Order => of::<OrderStatus>(status),
        Kind::Refund => of::<RefundStatus>(status),
    }
}

/// The rank of `status` in the lifecycle of `kind` (unknown statuses rank lowest).
pub fn rank(kind: Kind, status: &str) -> i32 {
    judge(kind, status).0
}

/// The statuses that end the lifecycle of `kind` (for SQL that judges many rows at once).
pub fn terminal_statuses(kind: Kind) -> Vec<&'static str> {
    match kind {
        Kind::PaymentIntent => PaymentStatus::terminal_names(),
        Kind::Charge => ChargeStatus::terminal_names(),
        Kind::Dispute => DisputeStatus::terminal_names(),
        Kind::Source => SourceStatus::terminal_names(),
        Kind::Order => OrderStatus::terminal_names(),
        Kind::Refund => RefundStatus::terminal_names(),
    }
}

/// Whether `status` ends the lifecycle of `kind`.
pub fn is_terminal(kind: Kind, status: &str) -> bool {
    judge(kind, status).1
}

/// Whether (`new_status`, `new_created`) should replace (`old_status`, `old_created`).
pub fn is_newer(
    kind: Kind,
    old_status: &str,
    old_created: i64,
    new_status: &str,
    new_created: i64,
) -> bool {
    let (old_t, new_t) = (is_terminal(kind, old_status), is_terminal(kind, new_status));
    if old_t != new_t {
        return new_t;
    }
    (new_created, rank(kind, new_status)) > (old_created, rank(kind, old_status))
}

/// The condition under which an `ON CONFLICT … DO UPDATE` replaces the stored state (columns
/// `status`, `created`, `rank` of `table`) with the proposed one (the same columns of
/// `excluded`): [`is_newer`] written in SQL, for any number of rows at once. A terminal status
/// is never replaced by a non-terminal one; otherwise (created, rank) must grow.
pub fn newer_than_stored<T, C>(table: T, status: C, created: C, rank: C, kind: Kind) -> SimpleExpr
where
    T: IntoIden + Copy + 'static,
    C: IntoIden + Copy + 'static,
{
    let old = |c: C| Expr::col((table, c));
    let excluded = |c: C| Expr::col((Alias::new("excluded"), c));
    let grows = excluded(created).gt(old(created)).or(excluded(created)
        .eq(old(created))
        .and(excluded(rank).gt(old(rank))));
    let finals = || terminal_statuses(kind);
    let old_final = old(status).is_in(finals());
    let new_final = excluded(status).is_in(finals());
    // Stored not final: a final one replaces it, or a newer one. Stored final: only a newer
    // final one.
    old_final
        .clone()
        .not()
        .and(new_final.clone().or(grows.clone()))
        .or(old_final.and(new_final).and(grows))
}

/// The rank of an order status ([`OrderStatus`]; unknown ones lowest).
pub fn order_rank(status: &str) -> i32 {
    OrderStatus::rank_of(status)
}

/// Whether an order may move from `old` to `new`: only to a higher rank (on the same rank the
/// first status stays).
pub fn order_advances(old: &str, new: &str) -> bool {
    order_rank(new) > order_rank(old)
}

/// What [`apply_forward`] did to the row.
#[derive(Clone, Debug, PartialEq)]
pub enum Applied<M> {
    /// There was no row: the proposed one was inserted.
    Inserted,
    /// The row was `before`, and the change was written over it.
    Changed { before: M },
    /// The row is `current`, and the change had nothing to write (not newer, nothing grew).
    Unchanged { current: M },
}

impl<M> Applied<M> {
    /// Whether anything was written.
    pub fn wrote(&self) -> bool {
        !matches!(self, Applied::Unchanged { .. })
    }
}

/// The one forward-only write, for every table that mirrors a Stripe object.
///
/// Reads the row `find` selects (within a scope: company and mode). With none, inserts
/// `insert()` unless a row with the same unique `key` appeared meanwhile (`ON CONFLICT DO
/// NOTHING`: on PostgreSQL a failed statement would poison the worker's transaction). With one,
/// asks `change(&row)` for the update the proposed state makes to *that* row (`None`: nothing
/// to change, e.g. it is not newer by [`is_newer`] and no monotonic fact grew), and writes it
/// only if the row is still exactly as read (compare-and-swap on every column). A writer that
/// lost a race reads again and judges again, so concurrent workers never step back.
pub async fn apply_forward<E, C, K>(
    db: &C,
    find: Select<E>,
    key: K,
    insert: impl Fn() -> E::ActiveModel + Sync,
    change: impl Fn(&E::Model) -> Option<UpdateMany<E>> + Sync,
) -> Result<Applied<E::Model>, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    E::Model: Clone,
    C: ConnectionTrait,
    K: IntoIterator<Item = E::Column>,
{
    let key: Vec<E::Column> = key.into_iter().collect();
    forward(db, find, Some((&key, &insert)), &change).await
}

/// [`apply_forward`] for a row that is never made by the change (an order moved by a status):
/// without a row, nothing happens and the result is `None`.
pub async fn change_forward<E, C>(
    db: &C,
    find: Select<E>,
    change: impl Fn(&E::Model) -> Option<UpdateMany<E>> + Sync,
) -> Result<Option<Applied<E::Model>>, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    E::Model: Clone,
    C: ConnectionTrait,
{
    match forward(db, find, None, &change).await {
        Ok(Applied::Inserted) => Ok(None),
        other => other.map(Some),
    }
}

type Insert<'a, E> = (
    &'a [<E as EntityTrait>::Column],
    &'a (dyn Fn() -> <E as EntityTrait>::ActiveModel + Sync),
);

async fn forward<E, C>(
    db: &C,
    find: Select<E>,
    insert: Option<Insert<'_, E>>,
    change: &(dyn Fn(&E::Model) -> Option<UpdateMany<E>> + Sync),
) -> Result<Applied<E::Model>, DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
    E::Model: Clone,
    C: ConnectionTrait,
{
    for _ in 0..8 {
        match find.clone().one(db).await? {
            None => {
                // Without an insert, `Inserted` stands for "no row" (see `change_forward`).
                let Some((key, insert)) = insert else {
                    return Ok(Applied::Inserted);
                };
                let r = E::insert(insert())
                    .on_conflict_do_nothing_on(key.iter().copied())
                    .exec_without_returning(db)
                    .await?;
                if matches!(r, TryInsertResult::Inserted(n) if n > 0) {
                    return Ok(Applied::Inserted);
                }
                // Lost the race to insert: judge against the winner's row.
            }
            Some(cur) => {
                let Some(update) = change(&cur) else {
                    return Ok(Applied::Unchanged { current: cur });
                };
                if update
                    .filter(unchanged_since(&cur))
                    .exec(db)
                    .await?
                    .rows_affected
                    > 0
                {
                    return Ok(Applied::Changed { before: cur });
                }
                // Someone changed it meanwhile: judge again against what they left.
            }
        }
    }
    Err(DbErr::Custom(format!(
        "a row of {} kept changing under us; will retry",
        E::default().table_name()
    )))
}

/// The condition that a row still holds every value of `m`.
fn unchanged_since<M: ModelTrait>(m: &M) -> Condition {
    let mut all = Condition::all();
    for col in <<M::Entity as EntityTrait>::Column as Iterable>::iter() {
        let v = m.get(col);
        all = all.add(if v == v.as_null() {
            col.is_null()
        } else {
            col.eq(v)
        });
    }
    all
}

/// Moves an order of `scope` to `new_status` if that ranks higher than its current status
/// (`order_rank`); returns whether it moved. `event_created` (Stripe seconds, 0 when no event
/// caused it) is kept as the order's `status_created` when newer. The move goes through
/// [`apply_forward`], so concurrent movers never step back; moving to `fulfilled` stamps
/// `fulfilled_at`. The move and its message commit together.
pub async fn advance_order_status<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    scope: Scope,
    order_id: &str,
    new_status: OrderStatus,
    event_created: i64,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    let find = scope.orders().filter(order::Column::Id.eq(order_id));
    let moved = change_forward(&txn, find.clone(), |o| {
        // A refunded order keeps its payment status aside (`status_before_refund`): that one
        // moves on (a late fulfillment), the refund status stays shown.
        let (current, column) = match &o.status_before_refund {
            Some(before) => (before.as_str(), order::Column::StatusBeforeRefund),
            None => (o.status.as_str(), order::Column::Status),
        };
        if !order_advances(current, new_status.as_str()) {
            return None;
        }
        let now = paygate_db::now_ms();
        let mut q = scope
            .update::<order::Entity>()
            .col_expr(column, Expr::value(new_status.as_str()))
            .col_expr(
                order::Column::StatusCreated,
                Expr::value(Ord::max(event_created, o.status_created)),
            )
            .col_expr(order::Column::UpdatedAt, Expr::value(now));
        if new_status == OrderStatus::Fulfilled {
            q = q.col_expr(order::Column::FulfilledAt, Expr::value(now));
        }
        Some(q)
    })
    .await?;
    let Some(Applied::Changed { before: o }) = moved else {
        return Ok(false);
    };
    if let Some(t) = outbox::order_message_type(new_status) {
        let moved = find.one(&txn).await?.unwrap_or(o.clone());
        // Seed 004: a shopper whose payment was pending learns by e-mail how it ended. Issue
        // 20: a shopper whose checkout expired or whose payment was cancelled is invited back
        // to pay again, whatever came before. Once per order: payment_failed, expired and
        // canceled share a rank, so an order reaches one of them only, and never once paid
        // (paid ranks higher); the message carrying the e-mail is written once (its dedupe
        // key), however often Stripe delivers the event.
        let was_waiting = matches!(
            OrderStatus::parse(&o.status),
            Some(OrderStatus::AwaitingPayment | OrderStatus::Charging)
        );
        let unpaid_end = matches!(new_status, OrderStatus::Expired | OrderStatus::Canceled);
        let shopper = moved
            .customer_email
            .clone()
            .filter(|_| was_waiting || unpaid_end)
            .map(|to| (to, moved.locale.clone()));
        outbox::emit(
            &txn,
            outbox::Emit {
                scope,
                event_type: t,
                dedupe_key: format!("{t}:{order_id}"),
                object: outbox::order_object(&moved),
                shopper,
                batch: None,
                test_event: false,
            },
        )
        .await?;
    }
    txn.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
        if items.len() <= 1 {
            return vec![items.to_vec()];
        }
        let mut out = Vec::new();
        for i in 0..items.len() {
            let mut rest = items.to_vec();
            let first = rest.remove(i);
            for mut p in permutations(&rest) {
                p.insert(0, first.clone());
                out.push(p);
            }
        }
        out
    }

    /// Applies (status, created) updates in the given order, each twice, as a handler would.
    fn fold(kind: Kind, updates: &[(&'static str, i64)]) -> (&'static str, i64) {
        let mut state: Option<(&'static str, i64)> = None;
        for &(status, created) in updates.iter().flat_map(|u| [u, u]) {
            state = match state {
                None => Some((status, created)),
                Some((old, old_c)) if is_newer(kind, old, old_c, status, created) => {
                    Some((status, created))
                }
                keep => keep,
            };
        }
        state.unwrap_or(("", 0))
    }

    /// Every order of `updates` ends in `expected`.
    fn converges(kind: Kind, updates: &[(&'static str, i64)], expected: (&'static str, i64)) {
        for p in permutations(updates) {
            assert_eq!(fold(kind, &p), expected, "{kind:?} in the order {p:?}");
        }
    }

    #[test]
    fn late_processing_never_overwrites_succeeded() {
        assert!(!is_newer(
            Kind::PaymentIntent,
            "succeeded",
            10,
            "processing",
            20
        ));
        assert!(is_newer(
            Kind::PaymentIntent,
            "processing",
            20,
            "succeeded",
            10
        ));
        assert!(is_newer(
            Kind::PaymentIntent,
            "requires_payment_method",
            10,
            "processing",
            10
        ));
        assert!(!is_newer(
            Kind::PaymentIntent,
            "processing",
            10,
            "processing",
            10
        ));
        assert!(!is_newer(
            Kind::PaymentIntent,
            "canceled",
            10,
            "requires_capture",
            99
        ));
    }

    #[test]
    fn payment_intent_flows_converge_in_every_order() {
        converges(
            Kind::PaymentIntent,
            &[
                ("requires_payment_method", 1),
                ("processing", 2),
                ("succeeded", 3),
            ],
            ("succeeded", 3),
        );
        // Same second: the rank decides.
        converges(
            Kind::PaymentIntent,
            &[
                ("requires_payment_method", 5),
                ("processing", 5),
                ("succeeded", 5),
            ],
            ("succeeded", 5),
        );
        // A failed attempt goes back to requires_payment_method, then a retry succeeds.
        converges(
            Kind::PaymentIntent,
            &[
                ("requires_payment_method", 1),
                ("requires_action", 2),
                ("requires_payment_method", 3),
                ("succeeded", 4),
            ],
            ("succeeded", 4),
        );
        // A manual capture canceled.
        converges(
            Kind::PaymentIntent,
            &[
                ("requires_payment_method", 1),
                ("requires_capture", 2),
                ("canceled", 3),
            ],
            ("canceled", 3),
        );
        // Without a terminal status the newest wins: a payment failure after processing.
        converges(
            Kind::PaymentIntent,
            &[
                ("requires_payment_method", 1),
                ("processing", 2),
                ("requires_payment_method", 3),
            ],
            ("requires_payment_method", 3),
        );
    }

    #[test]
    fn closed_dispute_is_never_reopened() {
        assert!(!is_newer(Kind::Dispute, "lost", 5, "under_review", 9));
        assert!(is_newer(Kind::Dispute, "under_review", 9, "won", 5));
        converges(
            Kind::Dispute,
            &[
                ("needs_response", 1),
                ("under_review", 2),
                ("needs_response", 3),
                ("lost", 4),
            ],
            ("lost", 4),
        );
        converges(
            Kind::Dispute,
            &[
                ("warning_needs_response", 1),
                ("warning_under_review", 2),
                ("warning_closed", 3),
            ],
            ("warning_closed", 3),
        );
        // An update stamped after the close still does not reopen it.
        converges(
            Kind::Dispute,
            &[("needs_response", 1), ("won", 4), ("under_review", 9)],
            ("won", 4),
        );
    }

    #[test]
    fn charges_and_sources_converge() {
        converges(
            Kind::Charge,
            &[("pending", 1), ("succeeded", 2)],
            ("succeeded", 2),
        );
        converges(
            Kind::Charge,
            &[("pending", 1), ("failed", 1)],
            ("failed", 1),
        );
        converges(
            Kind::Source,
            &[("pending", 1), ("chargeable", 2), ("consumed", 3)],
            ("consumed", 3),
        );
        converges(
            Kind::Source,
            &[("pending", 1), ("chargeable", 2), ("canceled", 2)],
            ("canceled", 2),
        );
    }

    #[test]
    fn ranks_follow_the_lifecycles() {
        let pi = [
            "requires_payment_method",
            "requires_confirmation",
            "requires_action",
            "processing",
            "requires_capture",
            "canceled",
            "succeeded",
        ];
        assert!(
            pi.windows(2)
                .all(|w| rank(Kind::PaymentIntent, w[0]) < rank(Kind::PaymentIntent, w[1]))
        );
        assert_eq!(rank(Kind::PaymentIntent, "something_new"), -1);
        for s in ["warning_closed", "won", "lost", "prevented"] {
            assert_eq!(rank(Kind::Dispute, s), 9);
            assert!(is_terminal(Kind::Dispute, s));
        }
        assert!(!is_terminal(Kind::Dispute, "under_review"));
    }

    #[test]
    fn orders_only_move_up() {
        assert!(order_advances("open", "awaiting_payment"));
        assert!(order_advances("awaiting_payment", "charging"));
        assert!(order_advances("charging", "paid"));
        assert!(order_advances("charging", "payment_failed"));
        assert!(order_advances("payment_failed", "paid"));
        assert!(order_advances("paid", "fulfilled"));
        assert!(!order_advances("fulfilled", "paid"));
        assert!(!order_advances("paid", "canceled"));
        assert!(!order_advances("expired", "awaiting_payment"));
        assert!(
            !order_advances("expired", "canceled"),
            "same rank keeps the first"
        );
        assert!(!order_advances("charging", "awaiting_payment"));
    }
}
