//! Wire types of tenant configuration, shared by the admin API and the back office.
//! Entities never go over the wire; secrets leave only masked.

use serde::{Deserialize, Serialize};

use paygate_db::entities::{company, signing_secret, stripe_profile};
use paygate_web::rfc3339_ms;

/// `POST /admin/v1/companies`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompanyIn {
    /// Chosen by the operator, or generated (`cmp_…`).
    pub company_id: Option<String>,
    pub name: String,
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
    /// The URL to register in Stripe (Developers → Webhooks → Add endpoint).
    pub callback_url: String,
    /// The events to select when registering it.
    #[schema(value_type = Vec<StripeEventName>)]
    pub stripe_events: &'static [paygate_wire::EventType],
    pub created_at: String,
    pub updated_at: String,
}

impl CompanyOut {
    pub fn new(m: &company::Model, public_base_url: &str) -> Self {
        Self {
            company_id: m.company_id.clone(),
            name: m.name.clone(),
            status: m.status.clone(),
            stripe_enabled: m.stripe_enabled,
            environment: m.environment.clone(),
            callback_url: format!(
                "{}/callbacks/v1.0/stripe/{}",
                public_base_url.trim_end_matches('/'),
                m.company_id
            ),
            stripe_events: crate::STRIPE_EVENTS_TO_SELECT,
            created_at: rfc3339_ms(m.created_at),
            updated_at: rfc3339_ms(m.updated_at),
        }
    }
}

/// `POST /admin/v1/companies/{companyID}/profiles`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileIn {
    pub name: String,
    #[schema(value_type = paygate_db::Mode)]
    pub mode: String,
    pub account_id: Option<String>,
    pub publishable_key: String,
    pub secret_key: String,
    /// The endpoint's signing secret; may be added later (the endpoint is registered in Stripe
    /// after the company's callback URL is known).
    pub webhook_secret: Option<String>,
    /// Make this the active profile of its mode (the first profile of a mode always is).
    pub active: Option<bool>,
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
            created_at: rfc3339_ms(p.created_at),
            updated_at: rfc3339_ms(p.updated_at),
        }
    }
}
