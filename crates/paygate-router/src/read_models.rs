//! What the operators' API and the back office show about the objects the handlers keep: one
//! query of each, so both surfaces see the same thing.
//!
//! Policy: a view reads only rows of its object's own company and mode (the scope the object
//! was found in), and its lists are in a stable order (oldest first).

use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, QueryFilter, QueryOrder};

use paygate_db::Scope;
use paygate_db::entities::{
    charge, dispute, early_fraud_warning, fulfillment, line_item, order, payment_intent, refund,
};

/// An order with everything Paygate knows around it.
#[derive(Clone, Debug)]
pub struct OrderView {
    pub order: order::Model,
    /// The payment intent the order was paid with (Checkout), if known.
    pub payment: Option<payment_intent::Model>,
    /// The charges of that payment intent, or the order's own charge (legacy Sources).
    pub charges: Vec<charge::Model>,
    /// Disputes on those charges or that payment intent.
    pub disputes: Vec<dispute::Model>,
    pub fulfillment: Option<fulfillment::Model>,
    pub line_items: Vec<line_item::Model>,
    /// Its refunds, whoever made them, oldest first.
    pub refunds: Vec<refund::Model>,
    /// The newest early fraud warning on its payment.
    pub fraud_warning: Option<early_fraud_warning::Model>,
}

impl OrderView {
    /// The scope every row of the view belongs to.
    pub fn scope(&self) -> Scope {
        Scope::of_livemode(self.order.company_pk, self.order.livemode)
    }
}

/// The view of `order` (found by the caller in its scope).
pub async fn order_view<C: ConnectionTrait>(
    db: &C,
    order: order::Model,
) -> Result<OrderView, DbErr> {
    let scope = Scope::of_livemode(order.company_pk, order.livemode);
    let payment = match &order.payment_intent_id {
        Some(p) => {
            scope
                .payment_intents()
                .filter(payment_intent::Column::StripeId.eq(p.as_str()))
                .one(db)
                .await?
        }
        None => None,
    };
    let charges = match (&order.payment_intent_id, &order.charge_id) {
        (Some(p), _) => Some(charge::Column::PaymentIntentId.eq(p.as_str())),
        (None, Some(c)) => Some(charge::Column::StripeId.eq(c.as_str())),
        (None, None) => None,
    };
    let charges = match charges {
        Some(on) => {
            scope
                .charges()
                .filter(on)
                .order_by_asc(charge::Column::Id)
                .all(db)
                .await?
        }
        None => Vec::new(),
    };
    let mut on = Condition::any();
    let charge_ids: Vec<&str> = charges.iter().map(|c| c.stripe_id.as_str()).collect();
    if !charge_ids.is_empty() {
        on = on.add(dispute::Column::ChargeId.is_in(charge_ids));
    }
    if let Some(p) = &order.payment_intent_id {
        on = on.add(dispute::Column::PaymentIntentId.eq(p.as_str()));
    }
    let disputes = if on.is_empty() {
        Vec::new()
    } else {
        scope
            .disputes()
            .filter(on)
            .order_by_asc(dispute::Column::Id)
            .all(db)
            .await?
    };
    let (fulfillment, line_items) = match &order.checkout_session_id {
        Some(cs) => (
            scope
                .fulfillments()
                .filter(fulfillment::Column::SessionId.eq(cs.as_str()))
                .one(db)
                .await?,
            scope
                .line_items()
                .filter(line_item::Column::SessionId.eq(cs.as_str()))
                .order_by_asc(line_item::Column::Id)
                .all(db)
                .await?,
        ),
        None => (None, Vec::new()),
    };
    let ids = crate::refunds::charge_ids(&charges);
    let refunds = crate::refunds::refunds_of_order(db, &order, &ids).await?;
    let fraud_warning = crate::refunds::warning_of_order(db, &order, &ids).await?;
    Ok(OrderView {
        refunds,
        fraud_warning,
        order,
        payment,
        charges,
        disputes,
        fulfillment,
        line_items,
    })
}
