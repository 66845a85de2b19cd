#![doc = include_str!("../README.md")]

pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod companies;
pub mod connect;
pub mod disputes;
pub mod domain;
pub mod error_body;
pub mod events;
pub mod idempotency;
pub mod intake;
pub mod merchant;
pub mod notifications;
pub mod openapi;
pub mod operators;
pub mod orders;
pub mod profiles;
pub mod reconcile;
pub mod refunds;
pub mod routes;
pub mod stripe_check;
pub mod subscription_actions;
pub mod users;

use std::time::Duration;

use sea_orm::DatabaseConnection;

use paygate_router::{FailureRecorder, InboxWriter};
use paygate_stripe::StripeClient;
use paygate_tenant::TenantService;

pub use auth::{JwtKeys, OperatorPrincipal};

/// What the admin API needs.
#[derive(Clone, Debug)]
pub struct AdminState {
    pub db: DatabaseConnection,
    pub tenants: TenantService,
    pub jwt: JwtKeys,
    pub token_ttl: Duration,
    pub failures: FailureRecorder,
    /// The inbox (reconciliation feeds recovered events into it).
    pub writer: InboxWriter,
    /// The Stripe API client.
    pub stripe: StripeClient,
    /// Prometheus metrics.
    pub metrics: std::sync::Arc<paygate_web::metrics::Metrics>,
    /// Notification endpoints and messages.
    pub notify: paygate_notify::NotifyService,
}

pub use routes::configure;

/// `?mode=test|live` on reads of objects that mirror Stripe: which of the company's two worlds
/// to read. Absent, the company's current environment (operators) or the API key's mode
/// (merchant API).
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ModeQuery {
    /// `test` or `live`.
    pub mode: Option<paygate_db::Mode>,
}

/// A whole list, unpaged: `{"data": [...]}`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct List<T> {
    pub data: Vec<T>,
}

/// Page size bounds of list endpoints.
pub(crate) fn page_limit(limit: Option<u64>) -> u64 {
    limit.unwrap_or(50).clamp(1, 200)
}
