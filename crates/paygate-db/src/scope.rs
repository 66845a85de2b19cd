//! Tenancy and mode by construction.
//!
//! Policy: every query of a company's data starts from a scope this module gives out, never
//! from an entity with a hand-written company filter. A [`Tenant`] is one company: it reaches
//! the company's configuration (profiles, users, keys, endpoints, audit). A [`Scope`] is one
//! company *in one mode* (test or live): it reaches the rows that mirror Stripe (events,
//! sessions, orders, payments, disputes, …) and the messages about them, and only those of its
//! mode. So a test-mode event, key or button cannot name a live row: its scope cannot reach it.
//!
//! ```ignore
//! let scope = Scope::new(company_pk, Mode::Test);
//! let order = scope.orders().filter(order::Column::Id.eq(id)).one(db).await?;
//! scope.update::<order::Entity>().col_expr(…).filter(…).exec(db).await?;
//! ```
//!
//! The check `.ci/lint-structure` fails when code outside this crate filters by company itself.

use std::fmt;
use std::str::FromStr;

use sea_orm::{ColumnTrait, DeleteMany, EntityTrait, QueryFilter, Select, UpdateMany};
use serde::{Deserialize, Serialize};

use crate::entities::*;

/// Test or live: the two worlds of a Stripe account, which never mix.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    /// Both modes, test first.
    pub const ALL: [Mode; 2] = [Mode::Test, Mode::Live];

    /// The mode of an object whose `livemode` is `livemode`.
    pub fn from_livemode(livemode: bool) -> Self {
        if livemode { Mode::Live } else { Mode::Test }
    }

    /// Stripe's `livemode` of this mode.
    pub fn livemode(self) -> bool {
        self == Mode::Live
    }

    /// `"test"` or `"live"`, as stored in profiles and companies' environment.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }

    /// The mode a Stripe id names by its prefix (`cs_live_…`, `sk_test_…`, `pk_live_…`), if it
    /// names one.
    pub fn of_stripe_id(id: &str) -> Option<Mode> {
        if id.contains("_live_") {
            Some(Mode::Live)
        } else if id.contains("_test_") {
            Some(Mode::Test)
        } else {
            None
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A mode that is neither `test` nor `live`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("mode must be test or live")]
pub struct BadMode;

impl FromStr for Mode {
    type Err = BadMode;
    fn from_str(s: &str) -> Result<Self, BadMode> {
        match s {
            "test" => Ok(Mode::Test),
            "live" => Ok(Mode::Live),
            _ => Err(BadMode),
        }
    }
}

/// A table whose rows belong to one company.
pub trait CompanyOwned: EntityTrait {
    /// The column holding the company's internal id.
    const COMPANY_PK: Self::Column;
}

/// A table whose rows belong to one company and one mode.
pub trait ModeOwned: CompanyOwned {
    /// The column holding the row's `livemode`.
    const LIVEMODE: Self::Column;
}

macro_rules! company_owned {
    ($($m:ident),* $(,)?) => {$(
        impl CompanyOwned for $m::Entity {
            const COMPANY_PK: $m::Column = $m::Column::CompanyPk;
        }
    )*};
}

macro_rules! mode_owned {
    ($($m:ident),* $(,)?) => {$(
        company_owned!($m);
        impl ModeOwned for $m::Entity {
            const LIVEMODE: $m::Column = $m::Column::Livemode;
        }
    )*};
}

company_owned!(
    api_key,
    audit_log,
    billing_settings,
    company_user,
    delivery_failure,
    notification_delivery,
    notification_endpoint,
    notification_settings,
    signing_secret,
    stripe_profile,
    user_invitation,
    web_session,
);

mode_owned!(
    inbox_event,
    checkout_session,
    order,
    line_item,
    fulfillment,
    payment_intent,
    charge,
    dispute,
    dispute_evidence,
    dispute_due_notice,
    source,
    stripe_account,
    payment_method,
    issuing_object,
    notification_message,
    refund,
    early_fraud_warning,
    auto_refund,
    idempotency_key,
    customer,
    subscription,
    invoice,
);

/// One company: the start of every query of its configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tenant {
    company_pk: i64,
}

impl Tenant {
    /// The company with internal id `company_pk` (found by the caller: an authenticated
    /// session, an API key, a callback URL, an operator's path).
    pub fn new(company_pk: i64) -> Self {
        Tenant { company_pk }
    }

    /// The company's internal id, for new rows.
    pub fn company_pk(self) -> i64 {
        self.company_pk
    }

    /// The company in `mode`.
    pub fn in_mode(self, mode: Mode) -> Scope {
        Scope { tenant: self, mode }
    }

    /// Rows of `E` of this company.
    pub fn find<E: CompanyOwned>(self) -> Select<E> {
        E::find().filter(E::COMPANY_PK.eq(self.company_pk))
    }

    /// An update of rows of `E` of this company (add the columns and further filters).
    pub fn update<E: CompanyOwned>(self) -> UpdateMany<E> {
        E::update_many().filter(E::COMPANY_PK.eq(self.company_pk))
    }

    /// A delete of rows of `E` of this company (add further filters).
    pub fn delete<E: CompanyOwned>(self) -> DeleteMany<E> {
        E::delete_many().filter(E::COMPANY_PK.eq(self.company_pk))
    }
}

/// One company in one mode: the start of every query of the rows that mirror Stripe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope {
    tenant: Tenant,
    mode: Mode,
}

impl Scope {
    /// The company with internal id `company_pk`, in `mode`.
    pub fn new(company_pk: i64, mode: Mode) -> Self {
        Tenant::new(company_pk).in_mode(mode)
    }

    /// The company with internal id `company_pk`, in the mode of an object or event whose
    /// `livemode` is `livemode`.
    pub fn of_livemode(company_pk: i64, livemode: bool) -> Self {
        Self::new(company_pk, Mode::from_livemode(livemode))
    }

    /// The company, whatever the mode.
    pub fn tenant(self) -> Tenant {
        self.tenant
    }

    /// The company's internal id, for new rows.
    pub fn company_pk(self) -> i64 {
        self.tenant.company_pk
    }

    pub fn mode(self) -> Mode {
        self.mode
    }

    /// The `livemode` of new rows.
    pub fn livemode(self) -> bool {
        self.mode.livemode()
    }

    /// Rows of `E` of this company and mode.
    pub fn find<E: ModeOwned>(self) -> Select<E> {
        self.tenant
            .find::<E>()
            .filter(E::LIVEMODE.eq(self.livemode()))
    }

    /// An update of rows of `E` of this company and mode.
    pub fn update<E: ModeOwned>(self) -> UpdateMany<E> {
        self.tenant
            .update::<E>()
            .filter(E::LIVEMODE.eq(self.livemode()))
    }

    /// A delete of rows of `E` of this company and mode.
    pub fn delete<E: ModeOwned>(self) -> DeleteMany<E> {
        self.tenant
            .delete::<E>()
            .filter(E::LIVEMODE.eq(self.livemode()))
    }

    pub fn inbox_events(self) -> Select<inbox_event::Entity> {
        self.find()
    }
    pub fn checkout_sessions(self) -> Select<checkout_session::Entity> {
        self.find()
    }
    pub fn orders(self) -> Select<order::Entity> {
        self.find()
    }
    pub fn line_items(self) -> Select<line_item::Entity> {
        self.find()
    }
    pub fn fulfillments(self) -> Select<fulfillment::Entity> {
        self.find()
    }
    pub fn payment_intents(self) -> Select<payment_intent::Entity> {
        self.find()
    }
    pub fn charges(self) -> Select<charge::Entity> {
        self.find()
    }
    pub fn disputes(self) -> Select<dispute::Entity> {
        self.find()
    }
    pub fn sources(self) -> Select<source::Entity> {
        self.find()
    }
    pub fn stripe_accounts(self) -> Select<stripe_account::Entity> {
        self.find()
    }
    pub fn payment_methods(self) -> Select<payment_method::Entity> {
        self.find()
    }
    pub fn issuing_objects(self) -> Select<issuing_object::Entity> {
        self.find()
    }
    pub fn refunds(self) -> Select<refund::Entity> {
        self.find()
    }
    pub fn early_fraud_warnings(self) -> Select<early_fraud_warning::Entity> {
        self.find()
    }
    pub fn notification_messages(self) -> Select<notification_message::Entity> {
        self.find()
    }
    pub fn customers(self) -> Select<customer::Entity> {
        self.find()
    }
    pub fn subscriptions(self) -> Select<subscription::Entity> {
        self.find()
    }
    pub fn invoices(self) -> Select<invoice::Entity> {
        self.find()
    }
}

impl company::Model {
    /// The company, as the start of queries of its configuration.
    pub fn tenant(&self) -> Tenant {
        Tenant::new(self.id)
    }

    /// The mode the company works in now (its Test / Live environment): the default mode of
    /// reads that do not name one, and the mode of orders the merchant API creates.
    pub fn environment_mode(&self) -> Mode {
        self.environment.parse().unwrap_or(Mode::Test)
    }

    /// The company in `mode`, or in its environment's mode when `mode` is `None`.
    pub fn scope(&self, mode: Option<Mode>) -> Scope {
        self.tenant()
            .in_mode(mode.unwrap_or_else(|| self.environment_mode()))
    }

    /// The active profiles with an account id of the companies linked to this Connect
    /// platform, in one query: the intake's routing table of the platform is built from it.
    pub fn linked_active_profiles(&self) -> Select<stripe_profile::Entity> {
        use sea_orm::sea_query::Query;
        stripe_profile::Entity::find()
            .filter(
                stripe_profile::Column::CompanyPk.in_subquery(
                    Query::select()
                        .column(company::Column::Id)
                        .from(company::Entity)
                        .and_where(company::Column::ConnectPlatformId.eq(self.company_id.clone()))
                        .to_owned(),
                ),
            )
            .filter(stripe_profile::Column::ActiveMode.is_not_null())
            .filter(stripe_profile::Column::AccountId.is_not_null())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{DbBackend, QueryTrait};

    #[test]
    fn a_scope_filters_by_company_and_mode() {
        let sql = Scope::new(7, Mode::Test)
            .orders()
            .build(DbBackend::Postgres)
            .to_string();
        assert!(sql.contains(r#""orders"."company_pk" = 7"#), "{sql}");
        assert!(sql.contains(r#""orders"."livemode" = FALSE"#), "{sql}");
        let sql = Scope::new(7, Mode::Live)
            .update::<charge::Entity>()
            .build(DbBackend::Postgres)
            .to_string();
        assert!(sql.contains(r#""company_pk" = 7"#), "{sql}");
        assert!(sql.contains(r#""livemode" = TRUE"#), "{sql}");
    }

    #[test]
    fn modes_parse_and_name_themselves() {
        assert_eq!("live".parse::<Mode>(), Ok(Mode::Live));
        assert_eq!("test".parse::<Mode>(), Ok(Mode::Test));
        assert!("LIVE".parse::<Mode>().is_err());
        assert_eq!(Mode::of_stripe_id("cs_live_a1"), Some(Mode::Live));
        assert_eq!(Mode::of_stripe_id("cs_test_a1"), Some(Mode::Test));
        assert_eq!(Mode::of_stripe_id("pi_123"), None);
        assert_eq!(Mode::from_livemode(true).as_str(), "live");
    }
}
