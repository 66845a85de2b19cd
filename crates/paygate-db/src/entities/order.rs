//! `orders`.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub company_pk: i64,
    pub livemode: bool,
    pub kind: String,
    pub status: String,
    pub checkout_session_id: Option<String>,
    pub source_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub charge_id: Option<String>,
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub customer_email: Option<String>,
    pub client_reference_id: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub description: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub metadata: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub return_url: Option<String>,
    /// The Checkout Session's `cancel_url` (issue 20): where a shopper whose payment failed or
    /// expired goes back to pay again.
    #[sea_orm(column_type = "Text", nullable)]
    pub cancel_url: Option<String>,
    pub disputed: bool,
    pub fulfilled_at: Option<i64>,
    pub status_created: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// The shopper's language (from the Checkout Session or the merchant), for e-mails.
    pub locale: Option<String>,
    /// What is refunded (pending or succeeded refunds; failed ones gave it back).
    pub amount_refunded: i64,
    /// While refunded (`partially_refunded`, `refunded`), the payment status the order goes
    /// back to if every refund fails.
    pub status_before_refund: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
