//! `idempotency_keys`: the stored answers of the merchant API's `POST`s sent with an
//! `Idempotency-Key`, per company and mode, kept 24 hours.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    /// `idk_…`: the claim of one request (a later claim of the same key has another id).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub company_pk: i64,
    pub livemode: bool,
    /// The merchant's `Idempotency-Key` (at most 255 characters).
    pub key: String,
    /// SHA-256 (hex) of the first request's method, path and body.
    pub request_hash: String,
    /// `in_flight` or `done`.
    pub state: String,
    /// The stored answer's HTTP status (when `done`).
    pub status: Option<i32>,
    /// The stored answer's body (when `done`).
    #[sea_orm(column_type = "Text", nullable)]
    pub response_body: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
