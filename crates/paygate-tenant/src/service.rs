//! The tenant configuration service: every read and change of companies, profiles and signing
//! secrets goes through here, so validation, encryption, the audit log and cache invalidation
//! cannot be forgotten by a caller.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use paygate_db::entities::{company, signing_secret, stripe_profile};
use paygate_db::{Tenant, new_id, now_ms};

use crate::cache::{ConnectRoutes, IntakeCache, IntakeCompany, IntakeSecret, Lookup};
use crate::crypto::{Keyring, field, mask};
use crate::wire::{
    CompanyIn, CompanyOut, CompanyPatch, ProfileIn, ProfileOut, ProfilePatch, SigningSecretIn,
};
use crate::{Mode, TenantError, audit, validate};

type Result<T, E = TenantError> = std::result::Result<T, E>;

/// Company status values.
pub const STATUS_ACTIVE: &str = "active";
pub const STATUS_SUSPENDED: &str = "suspended";

/// Shared handle; cheap to clone.
#[derive(Clone, Debug)]
pub struct TenantService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: DatabaseConnection,
    keyring: Keyring,
    cache: IntakeCache,
    public_base_url: String,
    default_grace: Duration,
}

/// What connecting automatically found and created, for the profile's row.
#[derive(Debug)]
pub(crate) struct AutoConnected {
    pub account: crate::readiness::AccountFacts,
    pub endpoint_id: String,
    pub secret: SecretString,
}

/// A company's active profile with its secret key opened, for calls to the Stripe API.
#[derive(Debug)]
pub struct ActiveProfile {
    pub profile: stripe_profile::Model,
    pub secret_key: SecretString,
}

impl TenantService {
    /// A service over `db`.
    pub fn new(
        db: DatabaseConnection,
        keyring: Keyring,
        public_base_url: String,
        cache_ttl: Duration,
        default_grace: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                keyring,
                cache: IntakeCache::new(cache_ttl),
                public_base_url,
                default_grace,
            }),
        }
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// The keyring secrets are sealed with.
    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    /// How long a replaced signing secret stays valid by default.
    pub fn default_grace(&self) -> Duration {
        self.inner.default_grace
    }

    /// The public base URL callback URLs are built from.
    pub fn public_base_url(&self) -> &str {
        &self.inner.public_base_url
    }

    /// The wire form of a company.
    pub fn company_out(&self, m: &company::Model) -> CompanyOut {
        CompanyOut::new(m, &self.inner.public_base_url)
    }

    // ---- companies -------------------------------------------------------------------------

    /// Creates a company: active, Stripe off, environment `test`.
    pub async fn create_company(&self, actor: &str, input: CompanyIn) -> Result<company::Model> {
        let company_id = match input.company_id.as_deref() {
            Some(raw) => validate::company_id(raw)?,
            None => new_id("cmp"),
        };
        let name = validate::name("name", &input.name)?;
        let is_platform = input.is_connect_platform.unwrap_or(false);
        let now = now_ms();
        let txn = self.inner.db.begin().await?;
        let platform = match input.connect_platform.as_deref() {
            Some(p) => Some(connect_platform(&txn, &company_id, is_platform, p).await?),
            None => None,
        };
        let exists = company::Entity::find()
            .filter(company::Column::CompanyId.eq(&company_id))
            .one(&txn)
            .await?
            .is_some();
        if exists {
            return Err(TenantError::Conflict {
                code: "company_exists",
                message: format!("a company with company_id {company_id:?} already exists"),
            });
        }
        let m = company::ActiveModel {
            company_id: Set(company_id.clone()),
            name: Set(name),
            status: Set(STATUS_ACTIVE.into()),
            stripe_enabled: Set(false),
            environment: Set("test".into()),
            created_at: Set(now),
            updated_at: Set(now),
            is_connect_platform: Set(is_platform),
            connect_platform_id: Set(platform.clone()),
            ..Default::default()
        }
        .insert(&txn)
        .await
        .map_err(|e| {
            if paygate_db::is_unique_violation(&e) {
                TenantError::Conflict {
                    code: "company_exists",
                    message: format!("a company with company_id {company_id:?} already exists"),
                }
            } else {
                e.into()
            }
        })?;
        audit::record(
            &txn,
            actor,
            Some(m.id),
            "company.created",
            &m.company_id,
            json!({"name": m.name, "is_connect_platform": m.is_connect_platform, "connect_platform": m.connect_platform_id}),
        )
        .await?;
        txn.commit().await?;
        self.invalidate_company(&m);
        Ok(m)
    }

    /// A company by its public id.
    pub async fn company(&self, company_id: &str) -> Result<company::Model> {
        company::Entity::find()
            .filter(company::Column::CompanyId.eq(company_id))
            .one(&self.inner.db)
            .await?
            .ok_or(TenantError::NotFound("company"))
    }

    /// Companies by internal id ascending, after `after`, optionally filtered by a search over
    /// the id and name.
    pub async fn list_companies(
        &self,
        after: Option<i64>,
        limit: u64,
        search: Option<&str>,
    ) -> Result<Vec<company::Model>> {
        let mut q = company::Entity::find()
            .order_by_asc(company::Column::Id)
            .limit(limit);
        if let Some(after) = after {
            q = q.filter(company::Column::Id.gt(after));
        }
        if let Some(s) = search.map(str::trim).filter(|s| !s.is_empty()) {
            q = q.filter(
                Condition::any()
                    .add(company::Column::CompanyId.contains(s))
                    .add(company::Column::Name.contains(s)),
            );
        }
        Ok(q.all(&self.inner.db).await?)
    }

    /// Changes name, status, Stripe switch and environment.
    pub async fn update_company(
        &self,
        actor: &str,
        company_id: &str,
        patch: CompanyPatch,
    ) -> Result<company::Model> {
        let txn = self.inner.db.begin().await?;
        let current = company::Entity::find()
            .filter(company::Column::CompanyId.eq(company_id))
            .one(&txn)
            .await?
            .ok_or(TenantError::NotFound("company"))?;
        let mut changed = Vec::new();
        let mut am = current.clone().into_active_model();
        if let Some(name) = &patch.name {
            am.name = Set(validate::name("name", name)?);
            changed.push("name");
        }
        if let Some(status) = &patch.status {
            let s = status.trim();
            if s != STATUS_ACTIVE && s != STATUS_SUSPENDED {
                return Err(TenantError::invalid(
                    "status",
                    "invalid_status",
                    "must be \"active\" or \"suspended\"",
                ));
            }
            am.status = Set(s.to_owned());
            changed.push("status");
        }
        let environment = match &patch.environment {
            Some(e) => {
                let mode = validate::mode("environment", e)?;
                am.environment = Set(mode.as_str().to_owned());
                changed.push("environment");
                mode
            }
            None => Mode::parse(&current.environment).unwrap_or(Mode::Test),
        };
        if let Some(enabled) = patch.stripe_enabled {
            am.stripe_enabled = Set(enabled);
            changed.push("stripe_enabled");
        }
        if let Some(on) = patch.auto_refund_fraud_warnings {
            am.auto_refund_fraud_warnings = Set(on);
            changed.push("auto_refund_fraud_warnings");
        }
        let is_platform = patch
            .is_connect_platform
            .unwrap_or(current.is_connect_platform);
        if let Some(p) = patch.is_connect_platform {
            if !p && current.is_connect_platform {
                let linked = company::Entity::find()
                    .filter(company::Column::ConnectPlatformId.eq(&current.company_id))
                    .one(&txn)
                    .await?;
                if let Some(l) = linked {
                    return Err(TenantError::Conflict {
                        code: "platform_has_linked_companies",
                        message: format!(
                            "is_connect_platform: companies are linked to this platform (e.g. {:?}): unlink them first",
                            l.company_id
                        ),
                    });
                }
            }
            am.is_connect_platform = Set(p);
            changed.push("is_connect_platform");
        }
        match &patch.connect_platform {
            Some(Some(p)) => {
                let p = connect_platform(&txn, &current.company_id, is_platform, p).await?;
                am.connect_platform_id = Set(Some(p));
                changed.push("connect_platform");
            }
            Some(None) => {
                am.connect_platform_id = Set(None);
                changed.push("connect_platform");
            }
            None if is_platform && current.connect_platform_id.is_some() => {
                return Err(TenantError::invalid(
                    "is_connect_platform",
                    "connect_platform_linked",
                    "a company linked to a Connect platform cannot be a platform itself: unlink it first (\"connect_platform\": null)",
                ));
            }
            None => {}
        }
        let enabled = patch.stripe_enabled.unwrap_or(current.stripe_enabled);
        if enabled && (patch.stripe_enabled == Some(true) || patch.environment.is_some()) {
            let has_active = Tenant::new(current.id)
                .find::<stripe_profile::Entity>()
                .filter(stripe_profile::Column::ActiveMode.eq(environment.as_str()))
                .one(&txn)
                .await?
                .is_some();
            if !has_active {
                let field = if patch.environment.is_some() {
                    "environment"
                } else {
                    "stripe_enabled"
                };
                return Err(TenantError::invalid(
                    field,
                    "active_profile_missing",
                    format!(
                        "the Stripe payment method needs an active {} profile first: add one with the {} keys",
                        environment.as_str(),
                        environment.as_str()
                    ),
                ));
            }
        }
        if environment == Mode::Live && current.environment != Mode::Live.as_str() {
            let missing = crate::readiness::live_missing(&txn, current.id).await?;
            if !missing.is_empty() {
                return Err(TenantError::Conflict {
                    code: "account_not_ready",
                    message: format!(
                        "environment: the live Stripe account is not ready to go live; missing: {}",
                        missing.join(", ")
                    ),
                });
            }
        }
        am.updated_at = Set(now_ms());
        let m = am.update(&txn).await?;
        audit::record(&txn, actor, Some(m.id), "company.updated", &m.company_id, json!({"fields": changed, "status": m.status, "stripe_enabled": m.stripe_enabled, "environment": m.environment, "is_connect_platform": m.is_connect_platform, "connect_platform": m.connect_platform_id}))
            .await?;
        txn.commit().await?;
        // The old platform's routing table named this company; the new one's must.
        self.invalidate_company(&current);
        self.invalidate_company(&m);
        Ok(m)
    }

    /// Deletes a company and everything it owns.
    pub async fn delete_company(&self, actor: &str, company_id: &str) -> Result<()> {
        let txn = self.inner.db.begin().await?;
        let current = company::Entity::find()
            .filter(company::Column::CompanyId.eq(company_id))
            .one(&txn)
            .await?
            .ok_or(TenantError::NotFound("company"))?;
        company::Entity::delete_by_id(current.id).exec(&txn).await?;
        if current.is_connect_platform {
            // Its linked companies stand alone again.
            company::Entity::update_many()
                .col_expr(
                    company::Column::ConnectPlatformId,
                    sea_orm::sea_query::Expr::value(Option::<String>::None),
                )
                .filter(company::Column::ConnectPlatformId.eq(company_id))
                .exec(&txn)
                .await?;
        }
        audit::record(
            &txn,
            actor,
            None,
            "company.deleted",
            company_id,
            json!({"name": current.name}),
        )
        .await?;
        txn.commit().await?;
        self.invalidate_company(&current);
        Ok(())
    }

    // ---- profiles --------------------------------------------------------------------------

    async fn profile_outs(&self, tenant: Tenant, only: Option<&str>) -> Result<Vec<ProfileOut>> {
        let mut q = tenant
            .find::<stripe_profile::Entity>()
            .order_by_asc(stripe_profile::Column::CreatedAt)
            .order_by_asc(stripe_profile::Column::Id);
        let mut sq = tenant.find::<signing_secret::Entity>();
        if let Some(id) = only {
            q = q.filter(stripe_profile::Column::Id.eq(id));
            sq = sq.filter(signing_secret::Column::ProfileId.eq(id));
        }
        let profiles = q.all(&self.inner.db).await?;
        let secrets = sq.all(&self.inner.db).await?;
        let now = now_ms();
        Ok(profiles
            .iter()
            .map(|p| ProfileOut::new(p, &secrets, now))
            .collect())
    }

    /// Every profile of a company, secrets masked.
    pub async fn list_profiles(&self, company: &company::Model) -> Result<Vec<ProfileOut>> {
        self.profile_outs(Tenant::new(company.id), None).await
    }

    /// One profile of a company.
    pub async fn profile(&self, company: &company::Model, profile_id: &str) -> Result<ProfileOut> {
        self.profile_outs(Tenant::new(company.id), Some(profile_id))
            .await?
            .pop()
            .ok_or(TenantError::NotFound("profile"))
    }

    /// Adds a profile. The first profile of a mode becomes its active one; a later one only
    /// when `active` is asked for (the previous active one is then deactivated).
    pub async fn create_profile(
        &self,
        actor: &str,
        company: &company::Model,
        input: ProfileIn,
    ) -> Result<ProfileOut> {
        if input.auto_configure == Some(true) {
            return Err(TenantError::invalid(
                "auto_configure",
                "auto_configure_unavailable",
                "connecting automatically needs the Stripe API (use the admin API or the back office)",
            ));
        }
        self.create_profile_with(actor, company, input, new_id("prf"), None)
            .await
    }

    /// Adds a profile (see [`Self::create_profile`]); `auto` is what connecting automatically
    /// found and created ([`crate::connection`]).
    pub(crate) async fn create_profile_with(
        &self,
        actor: &str,
        company: &company::Model,
        input: ProfileIn,
        id: String,
        auto: Option<AutoConnected>,
    ) -> Result<ProfileOut> {
        let name = validate::name("name", &input.name)?;
        let mode = validate::mode("mode", &input.mode)?;
        let account_id = match input
            .account_id
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(a) => Some(validate::account_id(a)?),
            None => None,
        };
        let publishable_key = if auto.is_some() && input.publishable_key.trim().is_empty() {
            String::new()
        } else {
            validate::publishable_key(mode, &input.publishable_key)?
        };
        let secret_key = validate::secret_key(mode, &input.secret_key)?;
        validate::demo_key_allowed(&company.company_id, &secret_key)?;
        let webhook_secret = match (
            &auto,
            input
                .webhook_secret
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty()),
        ) {
            (Some(a), _) => Some(validate::webhook_secret(a.secret.expose_secret())?),
            (None, Some(w)) => Some(validate::webhook_secret(w)?),
            (None, None) => None,
        };
        let account_id = auto
            .as_ref()
            .map(|a| Some(a.account.id.clone()))
            .unwrap_or(account_id);
        let ring = &self.inner.keyring;
        let now = now_ms();
        let tenant = Tenant::new(company.id);
        let txn = self.inner.db.begin().await?;
        let name_taken = tenant
            .find::<stripe_profile::Entity>()
            .filter(stripe_profile::Column::Name.eq(&name))
            .one(&txn)
            .await?
            .is_some();
        if name_taken {
            return Err(TenantError::Conflict {
                code: "profile_name_taken",
                message: format!("name: the company already has a profile named {name:?}"),
            });
        }
        let current_active = tenant
            .find::<stripe_profile::Entity>()
            .filter(stripe_profile::Column::ActiveMode.eq(mode.as_str()))
            .one(&txn)
            .await?;
        let make_active = match (&current_active, input.active) {
            (None, _) => true,
            (Some(_), Some(true)) => true,
            (Some(_), _) => false,
        };
        if make_active && let Some(prev) = current_active {
            let mut am = prev.into_active_model();
            am.active_mode = Set(None);
            am.updated_at = Set(now);
            am.update(&txn).await?;
        }
        stripe_profile::ActiveModel {
            id: Set(id.clone()),
            company_pk: Set(tenant.company_pk()),
            name: Set(name.clone()),
            mode: Set(mode.as_str().into()),
            active_mode: Set(make_active.then(|| mode.as_str().to_owned())),
            account_id: Set(account_id),
            publishable_key: Set(publishable_key),
            secret_key_enc: Set(ring.seal(
                field::STRIPE_SECRET_KEY.owner(tenant.company_pk(), &id),
                &secret_key,
            )),
            secret_key_mask: Set(mask(&secret_key)),
            created_at: Set(now),
            updated_at: Set(now),
            webhook_endpoint_id: Set(auto.as_ref().map(|a| a.endpoint_id.clone())),
            account_country: Set(auto.as_ref().and_then(|a| a.account.country.clone())),
            account_default_currency: Set(auto
                .as_ref()
                .and_then(|a| a.account.default_currency.clone())),
            charges_enabled: Set(auto.as_ref().map(|a| a.account.charges_enabled)),
            payouts_enabled: Set(auto.as_ref().map(|a| a.account.payouts_enabled)),
            details_submitted: Set(auto.as_ref().map(|a| a.account.details_submitted)),
            account_checked_at: Set(auto.as_ref().map(|_| now)),
        }
        .insert(&txn)
        .await?;
        if let Some(w) = &webhook_secret {
            ensure_secret_is_new(&txn, ring, tenant, w, now).await?;
            insert_secret(&txn, ring, tenant, &id, w, now).await?;
        }
        audit::record(
            &txn,
            actor,
            Some(company.id),
            "profile.created",
            &id,
            json!({"name": name, "mode": mode.as_str(), "active": make_active, "signing_secret": webhook_secret.is_some(), "auto_configured": auto.as_ref().map(|a| &a.endpoint_id)}),
        )
        .await?;
        txn.commit().await?;
        self.invalidate_company(company);
        self.profile(company, &id).await
    }

    /// Changes a profile's name, account id, keys, or makes it the active one of its mode.
    pub async fn update_profile(
        &self,
        actor: &str,
        company: &company::Model,
        profile_id: &str,
        patch: ProfilePatch,
    ) -> Result<ProfileOut> {
        let tenant = Tenant::new(company.id);
        let txn = self.inner.db.begin().await?;
        let current = find_profile(&txn, tenant, profile_id).await?;
        let mode = Mode::parse(&current.mode).unwrap_or(Mode::Test);
        let now = now_ms();
        let mut changed = Vec::new();
        let mut am = current.clone().into_active_model();
        if let Some(n) = &patch.name {
            let name = validate::name("name", n)?;
            if name != current.name {
                let taken = tenant
                    .find::<stripe_profile::Entity>()
                    .filter(stripe_profile::Column::Name.eq(&name))
                    .one(&txn)
                    .await?
                    .is_some();
                if taken {
                    return Err(TenantError::Conflict {
                        code: "profile_name_taken",
                        message: format!("name: the company already has a profile named {name:?}"),
                    });
                }
            }
            am.name = Set(name);
            changed.push("name");
        }
        if let Some(a) = &patch.account_id {
            let a = a.trim();
            am.account_id = Set(if a.is_empty() {
                None
            } else {
                Some(validate::account_id(a)?)
            });
            changed.push("account_id");
        }
        if let Some(k) = &patch.publishable_key {
            am.publishable_key = Set(validate::publishable_key(mode, k)?);
            changed.push("publishable_key");
        }
        if let Some(k) = &patch.secret_key {
            let k = validate::secret_key(mode, k)?;
            validate::demo_key_allowed(&company.company_id, &k)?;
            am.secret_key_enc = Set(self.inner.keyring.seal(
                field::STRIPE_SECRET_KEY.owner(tenant.company_pk(), &current.id),
                &k,
            ));
            am.secret_key_mask = Set(mask(&k));
            changed.push("secret_key");
        }
        match patch.active {
            Some(true) if current.active_mode.is_none() => {
                if let Some(prev) = tenant
                    .find::<stripe_profile::Entity>()
                    .filter(stripe_profile::Column::ActiveMode.eq(mode.as_str()))
                    .one(&txn)
                    .await?
                {
                    let mut p = prev.into_active_model();
                    p.active_mode = Set(None);
                    p.updated_at = Set(now);
                    p.update(&txn).await?;
                }
                am.active_mode = Set(Some(mode.as_str().to_owned()));
                changed.push("active");
            }
            Some(false) if current.active_mode.is_some() => {
                ensure_not_in_use(&txn, company, &current).await?;
                am.active_mode = Set(None);
                changed.push("active");
            }
            _ => {}
        }
        am.updated_at = Set(now);
        am.update(&txn).await?;
        audit::record(
            &txn,
            actor,
            Some(company.id),
            "profile.updated",
            profile_id,
            json!({"fields": changed}),
        )
        .await?;
        txn.commit().await?;
        self.invalidate_company(company);
        self.profile(company, profile_id).await
    }

    /// Removes a profile and its signing secrets. The profile the company charges with (active,
    /// in the active environment, Stripe enabled) cannot be removed.
    pub async fn delete_profile(
        &self,
        actor: &str,
        company: &company::Model,
        profile_id: &str,
    ) -> Result<()> {
        let txn = self.inner.db.begin().await?;
        let current = find_profile(&txn, Tenant::new(company.id), profile_id).await?;
        if current.active_mode.is_some() {
            ensure_not_in_use(&txn, company, &current).await?;
        }
        stripe_profile::Entity::delete_by_id(current.id.clone())
            .exec(&txn)
            .await?;
        audit::record(
            &txn,
            actor,
            Some(company.id),
            "profile.deleted",
            profile_id,
            json!({"name": current.name}),
        )
        .await?;
        txn.commit().await?;
        self.invalidate_company(company);
        Ok(())
    }

    /// Adds a signing secret to a profile. Secrets it replaces stay valid for the grace period
    /// (24 h by default, like Stripe's "roll secret"), then expire.
    pub async fn rotate_signing_secret(
        &self,
        actor: &str,
        company: &company::Model,
        profile_id: &str,
        input: SigningSecretIn,
    ) -> Result<ProfileOut> {
        let secret = validate::webhook_secret(&input.webhook_secret)?;
        let grace = input
            .grace_period_secs
            .map(Duration::from_secs)
            .unwrap_or(self.inner.default_grace);
        if grace > Duration::from_secs(7 * 24 * 3600) {
            return Err(TenantError::invalid(
                "grace_period_secs",
                "invalid_grace_period",
                "must be at most 604800 (7 days)",
            ));
        }
        let txn = self.inner.db.begin().await?;
        let tenant = Tenant::new(company.id);
        let profile = find_profile(&txn, tenant, profile_id).await?;
        let now = now_ms();
        ensure_secret_is_new(&txn, &self.inner.keyring, tenant, &secret, now).await?;
        let expires = now + i64::try_from(grace.as_millis()).unwrap_or(i64::MAX);
        let old = signing_secret::Entity::find()
            .filter(signing_secret::Column::ProfileId.eq(&profile.id))
            .all(&txn)
            .await?;
        let mut rotated = 0;
        for s in old {
            if s.expires_at.is_none_or(|e| e > expires) {
                let mut am = s.into_active_model();
                am.expires_at = Set(Some(expires));
                am.update(&txn).await?;
                rotated += 1;
            }
        }
        insert_secret(&txn, &self.inner.keyring, tenant, &profile.id, &secret, now).await?;
        audit::record(
            &txn,
            actor,
            Some(company.id),
            "profile.signing_secret_rotated",
            profile_id,
            json!({"grace_period_secs": grace.as_secs(), "previous_secrets": rotated}),
        )
        .await?;
        txn.commit().await?;
        self.invalidate_company(company);
        self.profile(company, profile_id).await
    }

    /// The active profile of the company's current environment with its secret key opened,
    /// for calls to the Stripe API. `None` when there is none.
    pub async fn active_profile(&self, company: &company::Model) -> Result<Option<ActiveProfile>> {
        self.active_profile_for(company.id, &company.environment)
            .await
    }

    /// The active profile of `mode` with its secret key opened.
    pub async fn active_profile_for(
        &self,
        company_pk: i64,
        mode: &str,
    ) -> Result<Option<ActiveProfile>> {
        let Some(profile) = Tenant::new(company_pk)
            .find::<stripe_profile::Entity>()
            .filter(stripe_profile::Column::ActiveMode.eq(mode))
            .one(&self.inner.db)
            .await?
        else {
            return Ok(None);
        };
        let secret_key = self
            .inner
            .keyring
            .open(
                field::STRIPE_SECRET_KEY.owner(company_pk, &profile.id),
                &profile.secret_key_enc,
            )
            .inspect_err(|_| {
                tracing::error!(
                    company_pk,
                    profile_id = %profile.id,
                    "the profile's secret key does not open for this profile (moved from another row, or the master key is wrong): not used"
                );
            })?;
        Ok(Some(ActiveProfile {
            profile,
            secret_key,
        }))
    }

    // ---- the intake's view -----------------------------------------------------------------

    /// The company as the intake needs it, from the cache when fresh. An id no company can
    /// have (see [`crate::validate::is_company_id`]) is `None` at once: no query, no cache entry.
    pub async fn intake_company(&self, company_id: &str) -> Result<Option<Arc<IntakeCompany>>> {
        if !crate::validate::is_company_id(company_id) {
            return Ok(None);
        }
        // Held until the entry is put back (or the load fails): the others use the stale one.
        let _refresh = match self.inner.cache.lookup(company_id) {
            Lookup::Use(hit) => return Ok(hit),
            Lookup::Refresh(guard) => Some(guard),
            Lookup::Miss => None,
        };
        let loaded = self.load_intake_company(company_id).await?.map(Arc::new);
        self.inner.cache.put(company_id, loaded.clone());
        Ok(loaded)
    }

    async fn load_intake_company(&self, company_id: &str) -> Result<Option<IntakeCompany>> {
        let db = &self.inner.db;
        let Some(c) = company::Entity::find()
            .filter(company::Column::CompanyId.eq(company_id))
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        let tenant = Tenant::new(c.id);
        let profiles = tenant.find::<stripe_profile::Entity>().all(db).await?;
        let now = now_ms();
        let secrets = tenant.find::<signing_secret::Entity>().all(db).await?;
        let mut out = Vec::with_capacity(secrets.len());
        for s in secrets
            .iter()
            .filter(|s| s.expires_at.is_none_or(|e| e > now))
        {
            let Some(p) = profiles.iter().find(|p| p.id == s.profile_id) else {
                continue;
            };
            let ring = &self.inner.keyring;
            let Ok(plain) = ring.open(field::SIGNING_SECRET.owner(c.id, &s.id), &s.secret_enc)
            else {
                // Under a key this replica lacks: its configuration is wrong; the intake answers
                // 503 and Stripe retries.
                if !ring.has_key_for(&s.secret_enc) {
                    return Err(TenantError::Crypto);
                }
                // A value that is not this row's (moved from another, or a legacy value) is
                // left out: the company's other secrets keep working, and no other tenant's
                // secret ever verifies this company's deliveries.
                tracing::error!(
                    company_id = %c.company_id,
                    signing_secret_id = %s.id,
                    "a signing secret does not open for its row (moved from another row, or written in the old format): not used"
                );
                continue;
            };
            out.push(IntakeSecret::new(
                plain.expose_secret(),
                p.mode == "live",
                p.id.clone(),
                s.expires_at,
            ));
        }
        // Only a platform pays for its routing table (two queries when its entry is loaded).
        let connect = if c.is_connect_platform {
            let linked = company::Entity::find()
                .filter(company::Column::ConnectPlatformId.eq(&c.company_id))
                .all(db)
                .await?;
            let mut routes = ConnectRoutes::default();
            for p in c.linked_active_profiles().all(db).await? {
                let (Some(account), Some(l)) = (
                    p.account_id.as_deref(),
                    linked.iter().find(|l| l.id == p.company_pk),
                ) else {
                    continue;
                };
                routes.add(account, p.mode == "live", l.id, l.status == STATUS_ACTIVE);
            }
            Some(routes)
        } else {
            None
        };
        Ok(Some(IntakeCompany {
            pk: c.id,
            company_id: c.company_id,
            active: c.status == STATUS_ACTIVE,
            secrets: out,
            connect,
        }))
    }

    /// Drops the cached intake view of a company.
    pub fn invalidate(&self, company_id: &str) {
        self.inner.cache.invalidate(company_id);
    }

    /// Drops the cached intake view of a company and of the Connect platform it is linked to
    /// (whose routing table names its profiles).
    fn invalidate_company(&self, c: &company::Model) {
        self.inner.cache.invalidate(&c.company_id);
        if let Some(p) = &c.connect_platform_id {
            self.inner.cache.invalidate(p);
        }
    }

    /// How many company ids the intake cache holds: `(known, unknown)`.
    pub fn intake_cache_len(&self) -> (usize, usize) {
        self.inner.cache.sizes()
    }
}

/// Checks a link of company `company_id` to the Connect platform `platform`: the platform
/// exists, is marked a platform, is another company, and the company is not a platform itself.
/// Returns the platform's company id.
async fn connect_platform<C: sea_orm::ConnectionTrait>(
    db: &C,
    company_id: &str,
    company_is_platform: bool,
    platform: &str,
) -> Result<String> {
    let platform = platform.trim();
    if company_is_platform {
        return Err(TenantError::invalid(
            "connect_platform",
            "connect_platform_linked",
            "a Connect platform cannot be linked to another platform",
        ));
    }
    if platform == company_id {
        return Err(TenantError::invalid(
            "connect_platform",
            "connect_platform_invalid",
            "a company cannot be linked to itself",
        ));
    }
    let found = company::Entity::find()
        .filter(company::Column::CompanyId.eq(platform))
        .one(db)
        .await?;
    match found {
        Some(p) if p.is_connect_platform => Ok(p.company_id),
        Some(_) => Err(TenantError::invalid(
            "connect_platform",
            "connect_platform_invalid",
            format!(
                "company {platform:?} is not a Connect platform (\"is_connect_platform\": true)"
            ),
        )),
        None => Err(TenantError::invalid(
            "connect_platform",
            "connect_platform_invalid",
            format!("no company with id {platform:?}"),
        )),
    }
}

pub(crate) async fn find_profile<C: sea_orm::ConnectionTrait>(
    db: &C,
    tenant: Tenant,
    profile_id: &str,
) -> Result<stripe_profile::Model> {
    tenant
        .find::<stripe_profile::Entity>()
        .filter(stripe_profile::Column::Id.eq(profile_id))
        .one(db)
        .await?
        .ok_or(TenantError::NotFound("profile"))
}

pub(crate) async fn ensure_not_in_use<C: sea_orm::ConnectionTrait>(
    db: &C,
    company: &company::Model,
    profile: &stripe_profile::Model,
) -> Result<()> {
    // Re-read the company inside the transaction: the caller's copy may be stale.
    let c = company::Entity::find_by_id(company.id)
        .one(db)
        .await?
        .ok_or(TenantError::NotFound("company"))?;
    if c.stripe_enabled && c.environment == profile.mode {
        return Err(TenantError::Conflict {
            code: "profile_in_use",
            message: format!(
                "this is the active {} profile and the Stripe payment method is on in the {} environment: make another {} profile active or switch Stripe off first",
                profile.mode, profile.mode, profile.mode
            ),
        });
    }
    Ok(())
}

/// Refuses a signing secret the company already has and that is still valid (on any of its
/// profiles): adding it again would change nothing but the list.
pub(crate) async fn ensure_secret_is_new<C: sea_orm::ConnectionTrait>(
    db: &C,
    ring: &Keyring,
    tenant: Tenant,
    secret: &str,
    now: i64,
) -> Result<()> {
    let existing = tenant.find::<signing_secret::Entity>().all(db).await?;
    for s in existing {
        if s.expires_at.is_some_and(|e| e <= now) {
            continue;
        }
        let Ok(open) = ring.open(
            field::SIGNING_SECRET.owner(tenant.company_pk(), &s.id),
            &s.secret_enc,
        ) else {
            continue;
        };
        if open.expose_secret() == secret {
            return Err(TenantError::invalid(
                "webhook_secret",
                "duplicate_signing_secret",
                "this signing secret is already saved (it is shown masked in the profile's list of signing secrets); paste the new secret Stripe shows after rolling it",
            ));
        }
    }
    Ok(())
}

pub(crate) async fn insert_secret<C: sea_orm::ConnectionTrait>(
    db: &C,
    ring: &Keyring,
    tenant: Tenant,
    profile_id: &str,
    secret: &str,
    now: i64,
) -> Result<()> {
    let id = new_id("whs");
    signing_secret::ActiveModel {
        id: Set(id.clone()),
        company_pk: Set(tenant.company_pk()),
        profile_id: Set(profile_id.to_owned()),
        secret_enc: Set(ring.seal(
            field::SIGNING_SECRET.owner(tenant.company_pk(), &id),
            secret,
        )),
        secret_mask: Set(mask(secret)),
        created_at: Set(now),
        expires_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}
