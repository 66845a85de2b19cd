//! Connecting a Stripe account automatically (issue 17, part 1) and the tenant side of keeping it
//! connected (part 2).
//!
//! Policy:
//! - **From a key alone.** A secret key (`sk_…`) or a restricted key (`rk_…`, with the
//!   permissions of [`RESTRICTED_KEY_PERMISSIONS`]) is enough: Paygate reads the key's account
//!   (`GET /v1/account`: its id — a key of another account than the one typed is refused with
//!   `account_mismatch` — country, default currency, `charges_enabled`, `payouts_enabled`,
//!   `details_submitted`), creates the webhook endpoint (`POST /v1/webhook_endpoints`: the
//!   company's callback URL, every type Paygate handles ([`paygate_wire::EventType::ALL`]), the
//!   API version Paygate's parsers are written for ([`paygate_wire::STRIPE_API_VERSION`]), and
//!   metadata naming the installation and the company), and stores the endpoint's signing secret
//!   sealed, as a pasted one is. The Stripe calls come first and nothing is stored when one
//!   fails; if storing fails after the endpoint was created, the endpoint is deleted again.
//! - **Disconnecting deletes what Paygate created**: removing an automatically connected profile
//!   deletes its endpoint (`DELETE /v1/webhook_endpoints/{id}`; an endpoint already gone is
//!   fine, and a failure is logged but does not keep the profile).
//! - **A re-created endpoint rotates the secret**: the previous secrets stay valid for the
//!   default grace period, as after a manual rotation, so deliveries signed before the switch
//!   still verify.
//! - Keys and signing secrets are only ever held as [`SecretString`]s here, never logged; Stripe's
//!   error messages have the key redacted by the client.

use std::collections::BTreeMap;

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, Set};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use paygate_db::entities::{company, signing_secret, stripe_profile};
use paygate_db::{Tenant, new_id, now_ms};
use paygate_stripe::{CreateWebhookEndpoint, StripeClient, StripeError};

use crate::crypto::field;
use crate::readiness::AccountFacts;
use crate::service::{
    ActiveProfile, AutoConnected, TenantService, ensure_not_in_use, find_profile, insert_secret,
};
use crate::wire::{ConnectReport, ProfileIn, ProfileOut};
use crate::{Mode, TenantError, audit, validate};

type Result<T, E = TenantError> = std::result::Result<T, E>;

/// What a restricted key needs, as the Stripe Dashboard names the permissions: the first two
/// for connecting and staying connected, the others for what Paygate's handlers and the
/// merchant API call.
pub const RESTRICTED_KEY_PERMISSIONS: &[(&str, &str)] = &[
    ("Webhook Endpoints", "write"),
    ("Account", "read"),
    ("Checkout Sessions", "read"),
    ("PaymentIntents", "write"),
    ("Charges", "write"),
    ("Refunds", "write"),
    ("Disputes", "write"),
    ("Files", "write"),
    ("Subscriptions", "write"),
    ("Customer portal", "write"),
    ("Sources", "write"),
];

/// The metadata key naming the installation on the endpoints Paygate creates.
pub const METADATA_INSTALLATION: &str = "paygate_installation";
/// The metadata key naming the company.
pub const METADATA_COMPANY: &str = "paygate_company";
/// The metadata key naming the profile.
pub const METADATA_PROFILE: &str = "paygate_profile";

/// The event types an endpoint Paygate creates sends: every type Paygate handles.
pub fn enabled_events() -> Vec<String> {
    paygate_wire::EventType::ALL
        .iter()
        .map(|e| e.as_str().to_owned())
        .collect()
}

/// Stripe's answer as a tenant error: what the merchant can fix names the key's field.
pub fn stripe_error(step: &str, e: StripeError) -> TenantError {
    match e.status() {
        Some(401) => TenantError::invalid(
            "secret_key",
            "invalid_key",
            format!("Stripe refused the key while {step} (HTTP 401): paste a valid key"),
        ),
        Some(403) => TenantError::invalid(
            "secret_key",
            "key_permission_missing",
            format!(
                "the restricted key lacks a permission needed for {step}; it needs {}",
                permissions_text()
            ),
        ),
        Some(s) if (400..500).contains(&s) && s != 429 => TenantError::invalid(
            "secret_key",
            "stripe_refused",
            format!("Stripe refused {step}: {e}"),
        ),
        _ => TenantError::Upstream {
            code: "stripe_unreachable",
            message: format!("Stripe could not be reached or failed while {step}: {e}"),
        },
    }
}

fn permissions_text() -> String {
    RESTRICTED_KEY_PERMISSIONS
        .iter()
        .map(|(p, a)| format!("{p}: {a}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl TenantService {
    /// The company's callback URL (public base URL + `/callbacks/v1.0/stripe/<companyID>`).
    pub fn callback_url(&self, company_id: &str) -> String {
        format!(
            "{}/callbacks/v1.0/stripe/{company_id}",
            self.public_base_url().trim_end_matches('/')
        )
    }

    /// What the endpoint of `profile_id` must be.
    pub fn endpoint_params(&self, company_id: &str, profile_id: &str) -> CreateWebhookEndpoint {
        let metadata = BTreeMap::from([
            (
                METADATA_INSTALLATION.to_owned(),
                self.public_base_url().trim_end_matches('/').to_owned(),
            ),
            (METADATA_COMPANY.to_owned(), company_id.to_owned()),
            (METADATA_PROFILE.to_owned(), profile_id.to_owned()),
        ]);
        CreateWebhookEndpoint {
            url: self.callback_url(company_id),
            enabled_events: enabled_events(),
            api_version: Some(paygate_wire::STRIPE_API_VERSION.to_owned()),
            description: Some(format!("Paygate: company {company_id}")),
            metadata,
        }
    }

    /// Adds a profile from a key alone, connecting it automatically (see the module policy).
    pub async fn connect_profile(
        &self,
        actor: &str,
        company: &company::Model,
        mut input: ProfileIn,
        stripe: &StripeClient,
    ) -> Result<ProfileOut> {
        let raw_key = input.secret_key.trim().to_owned();
        let mode = if input.mode.trim().is_empty() {
            if raw_key.starts_with("sk_live_") || raw_key.starts_with("rk_live_") {
                Mode::Live
            } else if raw_key.starts_with("sk_test_") || raw_key.starts_with("rk_test_") {
                Mode::Test
            } else {
                return Err(TenantError::invalid(
                    "secret_key",
                    "key_mode_mismatch",
                    "must be a secret key (sk_test_…, sk_live_…) or a restricted key (rk_test_…, rk_live_…)",
                ));
            }
        } else {
            validate::mode("mode", &input.mode)?
        };
        input.mode = mode.as_str().to_owned();
        let key = validate::secret_key(mode, &raw_key)?;
        if paygate_stripe::demo::is_demo_key(&key) {
            return Err(TenantError::invalid(
                "secret_key",
                "auto_configure_unavailable",
                "the demo key cannot connect automatically",
            ));
        }
        if input
            .webhook_secret
            .as_deref()
            .is_some_and(|w| !w.trim().is_empty())
        {
            return Err(TenantError::invalid(
                "webhook_secret",
                "webhook_secret_not_allowed",
                "connecting automatically creates the endpoint and stores its signing secret: leave webhook_secret out",
            ));
        }
        let typed_account = match input
            .account_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(a) => Some(validate::account_id(a)?),
            None => None,
        };
        if !input.name.trim().is_empty() {
            validate::name("name", &input.name)?;
        }
        if !input.publishable_key.trim().is_empty() {
            validate::publishable_key(mode, &input.publishable_key)?;
        }
        let secret_key = SecretString::from(key);

        let account = stripe
            .retrieve_account(&secret_key)
            .await
            .map_err(|e| stripe_error("reading the account (GET /v1/account)", e))?;
        let facts = AccountFacts::of(&account);
        if let Some(typed) = &typed_account
            && *typed != facts.id
        {
            return Err(TenantError::invalid(
                "account_id",
                "account_mismatch",
                format!(
                    "the key belongs to account {}, not to {typed}: paste a key of {typed} or leave the account id out",
                    facts.id
                ),
            ));
        }
        if input.name.trim().is_empty() {
            input.name = format!("Stripe {} {}", mode.as_str(), facts.id);
        }
        let profile_id = new_id("prf");
        let params = self.endpoint_params(&company.company_id, &profile_id);
        let endpoint = stripe
            .create_webhook_endpoint(
                &secret_key,
                &params,
                &format!("paygate-connect-{profile_id}"),
            )
            .await
            .map_err(|e| {
                stripe_error(
                    "creating the webhook endpoint (POST /v1/webhook_endpoints)",
                    e,
                )
            })?;
        let Some(secret) = endpoint.secret.clone() else {
            self.delete_endpoint_quietly(stripe, &secret_key, &endpoint.id, &profile_id)
                .await;
            return Err(TenantError::Upstream {
                code: "stripe_unreachable",
                message: "Stripe created the webhook endpoint without a signing secret".into(),
            });
        };
        input.account_id = Some(facts.id.clone());
        input.webhook_secret = None;
        input.auto_configure = None;
        let auto = AutoConnected {
            account: facts.clone(),
            endpoint_id: endpoint.id.clone(),
            secret,
        };
        let created = self
            .create_profile_with(actor, company, input, profile_id.clone(), Some(auto))
            .await;
        let mut out = match created {
            Ok(out) => out,
            Err(e) => {
                self.delete_endpoint_quietly(stripe, &secret_key, &endpoint.id, &profile_id)
                    .await;
                return Err(e);
            }
        };
        tracing::info!(
            company_id = %company.company_id,
            profile_id = %profile_id,
            account_id = %facts.id,
            webhook_endpoint_id = %endpoint.id,
            "Stripe account connected automatically"
        );
        out.auto_configure = Some(ConnectReport {
            account_id: facts.id,
            webhook_endpoint_id: endpoint.id,
            url: params.url,
            enabled_events: paygate_wire::EventType::ALL,
            api_version: paygate_wire::STRIPE_API_VERSION.to_owned(),
            actions: vec![
                "account_read".to_owned(),
                "webhook_endpoint_created".to_owned(),
                "signing_secret_stored".to_owned(),
            ],
        });
        Ok(out)
    }

    async fn delete_endpoint_quietly(
        &self,
        stripe: &StripeClient,
        key: &SecretString,
        endpoint_id: &str,
        profile_id: &str,
    ) {
        match stripe
            .delete_webhook_endpoint(
                key,
                endpoint_id,
                &format!("paygate-disconnect-{profile_id}"),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if e.status() == Some(404) => {}
            Err(e) => tracing::warn!(
                profile_id,
                webhook_endpoint_id = endpoint_id,
                error = %e,
                "the webhook endpoint Paygate created could not be deleted: delete it in the Stripe Dashboard"
            ),
        }
    }

    /// Removes a profile; one connected automatically has its webhook endpoint deleted in
    /// Stripe first (see the module policy).
    pub async fn disconnect_profile(
        &self,
        actor: &str,
        company: &company::Model,
        profile_id: &str,
        stripe: &StripeClient,
    ) -> Result<()> {
        let p = find_profile(self.db(), Tenant::new(company.id), profile_id).await?;
        if p.active_mode.is_some() {
            ensure_not_in_use(self.db(), company, &p).await?;
        }
        if let Some(endpoint_id) = &p.webhook_endpoint_id {
            match self.open_key(&p) {
                Ok(key) => {
                    self.delete_endpoint_quietly(stripe, &key, endpoint_id, &p.id)
                        .await
                }
                Err(e) => {
                    tracing::warn!(profile_id, error = %e, "the profile's key does not open: its webhook endpoint is left in Stripe")
                }
            }
        }
        self.delete_profile(actor, company, profile_id).await
    }

    fn open_key(&self, p: &stripe_profile::Model) -> Result<SecretString> {
        self.keyring().open(
            field::STRIPE_SECRET_KEY.owner(p.company_pk, &p.id),
            &p.secret_key_enc,
        )
    }

    /// Every profile of the company whose webhook endpoint Paygate created, key opened.
    pub async fn connected_profiles(&self, company_pk: i64) -> Result<Vec<ActiveProfile>> {
        let rows = Tenant::new(company_pk)
            .find::<stripe_profile::Entity>()
            .filter(stripe_profile::Column::WebhookEndpointId.is_not_null())
            .all(self.db())
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for profile in rows {
            match self.open_key(&profile) {
                Ok(secret_key) => out.push(ActiveProfile {
                    profile,
                    secret_key,
                }),
                Err(e) => {
                    tracing::error!(profile_id = %profile.id, error = %e, "the profile's key does not open: not checked")
                }
            }
        }
        Ok(out)
    }

    /// Records what `GET /v1/account` said about a profile's account.
    pub async fn record_account_facts(
        &self,
        company_pk: i64,
        profile_id: &str,
        facts: &AccountFacts,
    ) -> Result<()> {
        let p = find_profile(self.db(), Tenant::new(company_pk), profile_id).await?;
        let mut am = p.into_active_model();
        am.account_country = Set(facts.country.clone());
        am.account_default_currency = Set(facts.default_currency.clone());
        am.charges_enabled = Set(Some(facts.charges_enabled));
        am.payouts_enabled = Set(Some(facts.payouts_enabled));
        am.details_submitted = Set(Some(facts.details_submitted));
        am.account_checked_at = Set(Some(now_ms()));
        am.update(self.db()).await?;
        Ok(())
    }

    /// Records the endpoint re-created for a profile: its id, and its signing secret as the new
    /// one, the previous secrets valid for the default grace period (as a rotation).
    pub async fn replace_endpoint(
        &self,
        actor: &str,
        company: &company::Model,
        profile_id: &str,
        endpoint_id: &str,
        secret: &SecretString,
    ) -> Result<()> {
        let secret = validate::webhook_secret(secret.expose_secret())?;
        let tenant = Tenant::new(company.id);
        let txn = sea_orm::TransactionTrait::begin(self.db()).await?;
        let profile = find_profile(&txn, tenant, profile_id).await?;
        let now = now_ms();
        let grace = self.default_grace();
        let expires = now + i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let old = tenant
            .find::<signing_secret::Entity>()
            .filter(signing_secret::Column::ProfileId.eq(&profile.id))
            .all(&txn)
            .await?;
        for s in old {
            if s.expires_at.is_none_or(|e| e > expires) {
                let mut am = s.into_active_model();
                am.expires_at = Set(Some(expires));
                am.update(&txn).await?;
            }
        }
        insert_secret(&txn, self.keyring(), tenant, &profile.id, &secret, now).await?;
        let mut am = profile.into_active_model();
        am.webhook_endpoint_id = Set(Some(endpoint_id.to_owned()));
        am.updated_at = Set(now);
        am.update(&txn).await?;
        audit::record(
            &txn,
            actor,
            Some(company.id),
            "profile.webhook_endpoint_recreated",
            profile_id,
            json!({"webhook_endpoint_id": endpoint_id, "grace_period_secs": grace.as_secs()}),
        )
        .await?;
        txn.commit().await?;
        self.invalidate(&company.company_id);
        Ok(())
    }

    /// The company, fresh.
    pub async fn company_by_pk(&self, company_pk: i64) -> Result<company::Model> {
        company::Entity::find_by_id(company_pk)
            .one(self.db())
            .await?
            .ok_or(TenantError::NotFound("company"))
    }
}
