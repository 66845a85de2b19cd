//! Wire types of tenant configuration, shared by the admin API and the back office.
//! Entities never go over the wire; secrets leave only masked.

use serde::{Deserialize, Serialize};

use paygate_db::entities::{company, signing_secret, stripe_profile};
use paygate_web::rfc3339_ms;

/// `POST /admin/v1/companies`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyIn {
    /// Chosen by the operator, or generated (`cmp_…`).
    pub company_id: Option<String>,
    pub name: String,
    /// Marks the company a Stripe Connect platform: events on its callback URL that name a
    /// connected account (`account`, or `context` of a thin event) go to the linked company
    /// whose active profile of the event's mode has that account id.
    #[serde(default)]
    pub is_connect_platform: Option<bool>,
    /// Links the company to this Connect platform (its company id).
    #[serde(default)]
    pub connect_platform: Option<String>,
}

/// `PATCH /admin/v1/companies/{companyID}`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyPatch {
    pub name: Option<String>,
    pub status: Option<String>,
    pub stripe_enabled: Option<bool>,
    #[schema(value_type = Option<paygate_db::Mode>)]
    pub environment: Option<String>,
    /// Refund a payment automatically when Stripe sends an actionable early fraud warning
    /// and no dispute exists (off by default).
    pub auto_refund_fraud_warnings: Option<bool>,
    /// Marks (or unmarks) the company a Stripe Connect platform; a platform with linked
    /// companies cannot be unmarked.
    pub is_connect_platform: Option<bool>,
    /// Links the company to this Connect platform (its company id); `null` unlinks it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, nullable)]
    pub connect_platform: Option<Option<String>>,
}

/// A field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A Stripe event type Paygate handles, by Stripe's name: the schema's `enum` is
/// `paygate_wire::EventType::ALL`, the one list.
#[derive(Debug)]
pub struct StripeEventName;

impl utoipa::PartialSchema for StripeEventName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A Stripe event type Paygate handles."))
            .enum_values(Some(
                paygate_wire::EventType::ALL.iter().map(|e| e.as_str()),
            ))
            .into()
    }
}

impl utoipa::ToSchema for StripeEventName {}

/// A company as operators and merchants see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CompanyOut {
    pub company_id: String,
    pub name: String,
    pub status: String,
    pub stripe_enabled: bool,
    #[schema(value_type = paygate_db::Mode)]
    pub environment: String,
    /// Refund a payment automatically on an actionable early fraud warning (no dispute).
    pub auto_refund_fraud_warnings: bool,
    /// The URL to register in Stripe (Developers → Webhooks → Add endpoint).
    pub callback_url: String,
    /// The events to select when registering it.
    #[schema(value_type = Vec<StripeEventName>)]
    pub stripe_events: &'static [paygate_wire::EventType],
    /// The Stripe connection as the last check found it; `None` before the first check.
    #[schema(value_type = Option<StripeConnectionState>)]
    pub stripe_connection: Option<String>,
    /// When the connection was last checked.
    pub stripe_checked_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// A Stripe Connect platform (its connected accounts' events are routed to linked
    /// companies).
    pub is_connect_platform: bool,
    /// The Connect platform this company is linked to.
    pub connect_platform: Option<String>,
}

impl CompanyOut {
    pub fn new(m: &company::Model, public_base_url: &str) -> Self {
        Self {
            company_id: m.company_id.clone(),
            name: m.name.clone(),
            status: m.status.clone(),
            stripe_enabled: m.stripe_enabled,
            environment: m.environment.clone(),
            auto_refund_fraud_warnings: m.auto_refund_fraud_warnings,
            callback_url: format!(
                "{}/callbacks/v1.0/stripe/{}",
                public_base_url.trim_end_matches('/'),
                m.company_id
            ),
            stripe_events: crate::STRIPE_EVENTS_TO_SELECT,
            stripe_connection: m.stripe_connection.clone(),
            stripe_checked_at: m.stripe_checked_at.map(rfc3339_ms),
            created_at: rfc3339_ms(m.created_at),
            updated_at: rfc3339_ms(m.updated_at),
            is_connect_platform: m.is_connect_platform,
            connect_platform: m.connect_platform_id.clone(),
        }
    }
}

/// `POST /admin/v1/companies/{companyID}/profiles`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileIn {
    /// Required when entered by hand; with `auto_configure`, defaults to `Stripe <mode>
    /// (<account id>)`.
    #[serde(default)]
    pub name: String,
    /// Required when entered by hand; with `auto_configure`, taken from the key's prefix.
    #[serde(default)]
    #[schema(value_type = paygate_db::Mode)]
    pub mode: String,
    /// With `auto_configure`: the account the key must belong to (optional; the key of
    /// another account is refused with `account_mismatch`).
    pub account_id: Option<String>,
    /// Required when entered by hand; optional with `auto_configure`.
    #[serde(default)]
    pub publishable_key: String,
    /// A secret key (`sk_…`) or a restricted key (`rk_…`).
    pub secret_key: String,
    /// The endpoint's signing secret; may be added later (the endpoint is registered in Stripe
    /// after the company's callback URL is known). Not with `auto_configure`.
    pub webhook_secret: Option<String>,
    /// Make this the active profile of its mode (the first profile of a mode always is).
    pub active: Option<bool>,
    /// Connect automatically: Paygate reads the account (`GET /v1/account`), creates the
    /// webhook endpoint in it (`POST /v1/webhook_endpoints`) and stores its signing secret.
    pub auto_configure: Option<bool>,
}

/// `PATCH …/profiles/{profileID}`. The mode cannot change: keys belong to a mode.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    pub name: Option<String>,
    pub account_id: Option<String>,
    pub publishable_key: Option<String>,
    pub secret_key: Option<String>,
    pub active: Option<bool>,
}

/// `POST …/profiles/{profileID}/signing-secrets`: rotate.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SigningSecretIn {
    pub webhook_secret: String,
    /// How long the previous secrets stay valid; 24 h when absent, 0 expires them now.
    pub grace_period_secs: Option<u64>,
}

/// A profile, secrets masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProfileOut {
    pub id: String,
    pub name: String,
    #[schema(value_type = paygate_db::Mode)]
    pub mode: String,
    pub active: bool,
    pub account_id: Option<String>,
    pub publishable_key: String,
    /// Masked: `sk_live_…abcd`.
    pub secret_key: String,
    pub signing_secrets: Vec<SigningSecretOut>,
    /// Connected automatically: Paygate created (and keeps) the webhook endpoint.
    pub auto_configured: bool,
    /// The webhook endpoint Paygate created (`we_…`).
    pub webhook_endpoint_id: Option<String>,
    /// What `GET /v1/account` last said about the key's account.
    pub account: Option<AccountFactsOut>,
    /// What the automatic connection did (in the answer to the creation only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(required = false)]
    pub auto_configure: Option<ConnectReport>,
    pub created_at: String,
    pub updated_at: String,
}

/// A signing secret, masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SigningSecretOut {
    pub id: String,
    /// Masked: `whsec_…wxyz`.
    pub secret: String,
    pub created_at: String,
    /// Set once rotated out: valid until then.
    pub expires_at: Option<String>,
    /// Still accepted by the intake.
    pub valid: bool,
}

impl ProfileOut {
    pub fn new(p: &stripe_profile::Model, secrets: &[signing_secret::Model], now_ms: i64) -> Self {
        let mut signing_secrets: Vec<SigningSecretOut> = secrets
            .iter()
            .filter(|s| s.profile_id == p.id)
            .map(|s| SigningSecretOut {
                id: s.id.clone(),
                secret: s.secret_mask.clone(),
                created_at: rfc3339_ms(s.created_at),
                expires_at: s.expires_at.map(rfc3339_ms),
                valid: s.expires_at.is_none_or(|e| e > now_ms),
            })
            .collect();
        signing_secrets.sort_by(|a, b| b.created_at.cmp(&a.created_at));
        Self {
            id: p.id.clone(),
            name: p.name.clone(),
            mode: p.mode.clone(),
            active: p.active_mode.is_some(),
            account_id: p.account_id.clone(),
            publishable_key: p.publishable_key.clone(),
            secret_key: p.secret_key_mask.clone(),
            signing_secrets,
            auto_configured: p.webhook_endpoint_id.is_some(),
            webhook_endpoint_id: p.webhook_endpoint_id.clone(),
            account: p.account_checked_at.map(|at| AccountFactsOut {
                country: p.account_country.clone(),
                default_currency: p.account_default_currency.clone(),
                charges_enabled: p.charges_enabled.unwrap_or(false),
                payouts_enabled: p.payouts_enabled.unwrap_or(false),
                details_submitted: p.details_submitted.unwrap_or(false),
                checked_at: rfc3339_ms(at),
            }),
            auto_configure: None,
            created_at: rfc3339_ms(p.created_at),
            updated_at: rfc3339_ms(p.updated_at),
        }
    }
}

/// A Stripe account as `GET /v1/account` described it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccountFactsOut {
    pub country: Option<String>,
    pub default_currency: Option<String>,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    pub checked_at: String,
}

/// What connecting automatically did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConnectReport {
    /// The key's account (`acct_…`).
    pub account_id: String,
    /// The webhook endpoint created in it (`we_…`).
    pub webhook_endpoint_id: String,
    /// Where it sends: the company's callback URL.
    pub url: String,
    /// The event types it sends: every type Paygate handles.
    #[schema(value_type = Vec<StripeEventName>)]
    pub enabled_events: &'static [paygate_wire::EventType],
    /// The API version its events are in.
    pub api_version: String,
    /// The steps, in order: `account_read`, `webhook_endpoint_created`,
    /// `signing_secret_stored`.
    pub actions: Vec<String>,
}

/// The state of a company's Stripe connection as the last check found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StripeConnectionState {
    /// Every endpoint Paygate created is there, enabled, with the right URL and events.
    Ok,
    /// An endpoint had drifted (URL or events changed, or deleted) and was put right.
    Repaired,
    /// Stripe had disabled an endpoint after failed deliveries; it was enabled again.
    DisabledByStripe,
    /// Stripe refused the key (401): a new key is needed.
    KeyRevoked,
    /// Stripe could not be reached or failed.
    Unreachable,
}

impl StripeConnectionState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Repaired => "repaired",
            Self::DisabledByStripe => "disabled_by_stripe",
            Self::KeyRevoked => "key_revoked",
            Self::Unreachable => "unreachable",
        }
    }

    /// The state of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => Self::Ok,
            "repaired" => Self::Repaired,
            "disabled_by_stripe" => Self::DisabledByStripe,
            "key_revoked" => Self::KeyRevoked,
            "unreachable" => Self::Unreachable,
            _ => return None,
        })
    }

    /// How bad it is: a company's state is its worst profile's.
    pub fn severity(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Repaired => 1,
            Self::DisabledByStripe => 2,
            Self::Unreachable => 3,
            Self::KeyRevoked => 4,
        }
    }

    /// Whether the endpoints are right after the check (nothing the merchant must do).
    pub fn is_good(self) -> bool {
        matches!(self, Self::Ok | Self::Repaired | Self::DisabledByStripe)
    }
}
