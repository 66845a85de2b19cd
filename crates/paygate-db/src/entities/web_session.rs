//! `web_sessions`: signed-in back-office sessions of operators and company users.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "web_sessions")]
pub struct Model {
    /// SHA-256 (hex) of the random token in the cookie; the token itself is never stored.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `operator` or `user`.
    pub principal_kind: String,
    /// The operator's or the company user's id.
    pub principal_id: String,
    /// The company of a `user` session; `None` for operators.
    pub company_pk: Option<i64>,
    /// The session's CSRF token, sent back in the `csrf` field of every form.
    pub csrf: String,
    pub created_at: i64,
    /// Absolute expiry.
    pub expires_at: i64,
    /// For the idle expiry.
    pub last_seen_at: i64,
    /// `en`, `it` or `de` once the user picked one.
    pub language: Option<String>,
    /// The operator's `token_epoch` when the session began (0 for company users): a session of
    /// an earlier epoch is over.
    pub principal_epoch: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
