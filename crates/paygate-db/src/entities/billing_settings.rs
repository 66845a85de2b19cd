//! `billing_settings`: a company's dunning choices (issue 19). No row: dunning e-mails off.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "billing_settings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub company_pk: i64,
    /// Whether shoppers get an e-mail when a subscription invoice's payment fails.
    pub dunning_emails: bool,
    /// JSON array of the attempt numbers that get one (e.g. `[1,2,3]`).
    pub dunning_attempts: String,
    pub updated_at: i64,
}

impl Model {
    /// The attempt numbers that get an e-mail (an unreadable value: none).
    pub fn attempts(&self) -> Vec<i32> {
        serde_json::from_str(&self.dunning_attempts).unwrap_or_default()
    }

    /// Whether a failed `attempt` gets an e-mail.
    pub fn mails_attempt(&self, attempt: i32) -> bool {
        self.dunning_emails && self.attempts().contains(&attempt)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
