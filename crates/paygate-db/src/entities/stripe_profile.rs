//! `stripe_profiles`: a company's named Stripe data sets, test or live.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "stripe_profiles")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub company_pk: i64,
    pub name: String,
    /// `test` or `live`.
    pub mode: String,
    /// Equal to `mode` while this is the active profile of its mode, `None` otherwise.
    pub active_mode: Option<String>,
    pub account_id: Option<String>,
    pub publishable_key: String,
    /// The secret (or restricted) key, sealed under the master key.
    #[sea_orm(column_type = "Text")]
    pub secret_key_enc: String,
    pub secret_key_mask: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// The webhook endpoint Paygate created for this profile (`we_…`); `None` when the
    /// merchant registered the endpoint by hand.
    pub webhook_endpoint_id: Option<String>,
    /// What `GET /v1/account` last said about the key's account.
    pub account_country: Option<String>,
    pub account_default_currency: Option<String>,
    pub charges_enabled: Option<bool>,
    pub payouts_enabled: Option<bool>,
    pub details_submitted: Option<bool>,
    /// When that was, ms.
    pub account_checked_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
