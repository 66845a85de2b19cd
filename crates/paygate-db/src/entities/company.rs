//! `companies`: the tenants.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "companies")]
pub struct Model {
    /// Internal id: every company-owned row carries it.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Public id, in the callback URL.
    pub company_id: String,
    pub name: String,
    /// `active` or `suspended`.
    pub status: String,
    pub stripe_enabled: bool,
    /// `test` or `live`: which profile the company charges with.
    pub environment: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// Refund a payment automatically when Stripe sends an actionable early fraud warning and
    /// there is no dispute (off by default).
    pub auto_refund_fraud_warnings: bool,
    /// The Stripe connection as the last check found it (`ok`, `repaired`,
    /// `disabled_by_stripe`, `key_revoked`, `unreachable`); `None` before the first check.
    pub stripe_connection: Option<String>,
    /// When the last connection check ran, ms.
    pub stripe_checked_at: Option<i64>,
    /// When a check last found every endpoint right (or put it right), ms.
    pub stripe_last_ok_at: Option<i64>,
    /// A Stripe Connect platform: events on its callback URL that name a connected account
    /// are routed to the linked company of that account.
    pub is_connect_platform: bool,
    /// The public id of the Connect platform this company is linked to.
    pub connect_platform_id: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
