//! `early_fraud_warnings`: Stripe Radar's early fraud warnings on payments.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "early_fraud_warnings")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub company_pk: i64,
    pub livemode: bool,
    /// Stripe's `issfr_…`.
    pub stripe_id: String,
    pub charge_id: Option<String>,
    pub payment_intent_id: Option<String>,
    /// `card_never_received`, `fraudulent_card_application`, `made_with_counterfeit_card`,
    /// `made_with_lost_card`, `made_with_stolen_card`, `misc`, `unauthorized_use_of_card`.
    pub fraud_type: String,
    /// Whether a refund (or a dispute) can still be made for the charge.
    pub actionable: bool,
    pub state_created: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
