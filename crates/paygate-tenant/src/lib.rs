#![doc = include_str!("../README.md")]

pub mod api_keys;
pub mod audit;
pub mod cache;
pub mod connection;
pub mod crypto;
pub mod error;
pub mod operators;
pub mod password;
pub mod readiness;
pub mod service;
pub mod setup;
pub mod signin;
pub mod users;
pub mod validate;
pub mod wire;

pub use cache::{ConnectRoutes, ConnectTarget, IntakeCompany, IntakeSecret};
pub use crypto::{Keyring, MasterKey};
pub use error::TenantError;
pub use service::TenantService;

use paygate_wire::EventType;

/// Stripe events a company selects when it registers its Paygate endpoint in Stripe: the union
/// of the seeds' lists (Passweb's Checkout events and `checkout.session.expired`, plenigo's
/// list, the legacy Sources flow's `source.*` and `charge.*`), which is every type Paygate
/// handles ([`EventType::ALL`], the one list).
pub const STRIPE_EVENTS_TO_SELECT: &[EventType] = EventType::ALL;

/// Stripe mode of a profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Test,
    Live,
}

impl Mode {
    /// `"test"` or `"live"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Test => "test",
            Mode::Live => "live",
        }
    }
    /// Parses `"test"` / `"live"`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "test" => Some(Mode::Test),
            "live" => Some(Mode::Live),
            _ => None,
        }
    }
    /// Stripe's `livemode` of events sent in this mode.
    pub fn livemode(self) -> bool {
        self == Mode::Live
    }
}

/// A fresh, migrated in-memory SQLite database for the unit tests.
#[cfg(test)]
pub(crate) async fn test_db() -> sea_orm::DatabaseConnection {
    let url = "sqlite::memory:";
    let db = paygate_db::connect(&paygate_db::DbOptions {
        url: url.to_owned(),
        max_connections: 1,
    })
    .await
    .expect("an in-memory database");
    paygate_db::migrate(&db, url).await.expect("migrated");
    db
}

/// Adds an active company in `test` to a test database; its internal id.
#[cfg(test)]
pub(crate) async fn test_company(db: &sea_orm::DatabaseConnection, company_id: &str) -> i64 {
    use sea_orm::{ActiveModelTrait, Set};
    let now = paygate_db::now_ms();
    paygate_db::entities::company::ActiveModel {
        company_id: Set(company_id.to_owned()),
        name: Set(company_id.to_owned()),
        status: Set(service::STATUS_ACTIVE.to_owned()),
        stripe_enabled: Set(false),
        environment: Set("test".to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .expect("a company")
    .id
}
