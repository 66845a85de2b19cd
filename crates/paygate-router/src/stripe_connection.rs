//! Staying connected (issue 17, part 2): the check of the webhook endpoints Paygate created.
//!
//! Policy:
//! - **What is checked**: every profile whose endpoint Paygate created (connected
//!   automatically, see `paygate_tenant::connection`). Its account is read again
//!   (`GET /v1/account`, so the go-live check sees fresh `charges_enabled`/`payouts_enabled`) and
//!   its endpoints listed (`GET /v1/webhook_endpoints`).
//! - **What is repaired**: an endpoint whose URL or events drifted is updated to the callback URL
//!   and every type Paygate handles (`repaired`); a deleted endpoint is re-created and its new
//!   signing secret stored, the old ones valid for the grace period (`repaired`); an endpoint
//!   Stripe disabled after failed deliveries is enabled again with `disabled=false`
//!   (`disabled_by_stripe`). A 401 from Stripe is `key_revoked` (a new key is needed); any other
//!   failure `unreachable`. The company's state is its worst profile's.
//! - **What is recorded**: the state, the time of the check, and the time of the last good check
//!   (the endpoints right, or put right) on the company. The state change is written with a
//!   compare-and-swap on the previous state, so of two replicas checking at once only one
//!   records (and notifies) the change.
//! - **Who is told**: the merchant's systems, `paygate.stripe_connection.changed`, once per
//!   change (a new state, or a repair, which is a change at Stripe each time), in the mode of
//!   the profiles it is about (a test profile's trouble is a test message), written in the
//!   transaction that records the state.
//! - **After a repair**, reconciliation runs over the gap: from the last good check (less the
//!   reconciliation's safety margin), so events Stripe sent while the endpoint was wrong are
//!   recovered into the inbox.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, DbErr, EntityTrait, QueryFilter, TransactionTrait};
use serde_json::json;

use paygate_db::entities::company;
use paygate_db::{Mode, Scope, now_ms};
use paygate_notify::outbox;
use paygate_stripe::{StripeClient, StripeError, UpdateWebhookEndpoint, WebhookEndpoint};
use paygate_tenant::readiness::AccountFacts;
use paygate_tenant::service::ActiveProfile;
use paygate_tenant::wire::StripeConnectionState;
use paygate_tenant::{TenantError, TenantService};
use paygate_web::rfc3339_ms;

use crate::inbox::InboxWriter;
use crate::reconcile::{SAFETY_MARGIN, Summary, reconcile_company};

/// The message sent to the merchant's systems when the connection's state changes.
pub const CONNECTION_CHANGED: &str = "paygate.stripe_connection.changed";

/// The actor of the audit entries the periodic check writes.
pub const CHECK_ACTOR: &str = "system:stripe-check";

/// What the check found for one profile.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ProfileCheck {
    pub profile_id: String,
    #[schema(value_type = paygate_db::Mode)]
    pub mode: String,
    pub account_id: Option<String>,
    /// The endpoint after the check.
    pub webhook_endpoint_id: Option<String>,
    #[schema(value_type = StripeConnectionState)]
    pub state: StripeConnectionState,
    /// What was done: `endpoint_updated`, `endpoint_recreated`, `endpoint_enabled`.
    pub actions: Vec<String>,
}

/// What a check of a company found and did.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct CheckReport {
    pub company_id: String,
    /// The company's state after the check; `None` when it has no automatically connected
    /// profile (nothing to check).
    #[schema(value_type = Option<StripeConnectionState>)]
    pub stripe_connection: Option<StripeConnectionState>,
    /// The state before.
    pub previous: Option<String>,
    pub checked_at: String,
    pub profiles: Vec<ProfileCheck>,
    /// Whether the merchant's systems were told (`paygate.stripe_connection.changed`).
    pub notified: bool,
    /// The reconciliation run after a repair.
    pub reconciled: Option<Summary>,
}

/// Why a check failed (Stripe's failures are states, not errors).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("tenant configuration")]
    Tenant(#[from] TenantError),
    #[error("database")]
    Db(#[from] DbErr),
}

fn state_of(e: &StripeError) -> StripeConnectionState {
    if e.status() == Some(401) {
        StripeConnectionState::KeyRevoked
    } else {
        StripeConnectionState::Unreachable
    }
}

/// Checks (and repairs) the company's automatically connected profiles, records the state,
/// notifies a change and reconciles after a repair.
pub async fn check_company(
    tenants: &TenantService,
    stripe: &StripeClient,
    writer: &InboxWriter,
    company: &company::Model,
    actor: &str,
) -> Result<CheckReport, CheckError> {
    let now = now_ms();
    let profiles = tenants.connected_profiles(company.id).await?;
    let mut checks = Vec::with_capacity(profiles.len());
    for p in &profiles {
        checks.push(check_profile(tenants, stripe, company, p, actor, now).await?);
    }
    let mut report = CheckReport {
        company_id: company.company_id.clone(),
        stripe_connection: None,
        previous: company.stripe_connection.clone(),
        checked_at: rfc3339_ms(now),
        profiles: Vec::new(),
        notified: false,
        reconciled: None,
    };
    let Some(state) = checks.iter().map(|c| c.state).max_by_key(|s| s.severity()) else {
        // Nothing (left) to check: a state from a profile since removed is no longer true.
        if company.stripe_connection.is_some() {
            company::Entity::update_many()
                .col_expr(
                    company::Column::StripeConnection,
                    Expr::value(Option::<String>::None),
                )
                .col_expr(company::Column::StripeCheckedAt, Expr::value(now))
                .filter(company::Column::Id.eq(company.id))
                .exec(tenants.db())
                .await?;
        }
        return Ok(report);
    };
    report.stripe_connection = Some(state);
    let repaired = checks.iter().any(|c| !c.actions.is_empty());

    // Record, and tell the merchant's systems, in one transaction; only the check whose
    // compare-and-swap on the previous state wins does.
    let txn = tenants.db().begin().await?;
    let current = company::Entity::find_by_id(company.id)
        .one(&txn)
        .await?
        .ok_or(TenantError::NotFound("company"))?;
    let previous = current.stripe_connection.clone();
    let mut update = company::Entity::update_many()
        .col_expr(
            company::Column::StripeConnection,
            Expr::value(state.as_str()),
        )
        .col_expr(company::Column::StripeCheckedAt, Expr::value(now))
        .filter(company::Column::Id.eq(company.id));
    if state.is_good() {
        update = update.col_expr(company::Column::StripeLastOkAt, Expr::value(now));
    }
    update = update.filter(match &previous {
        Some(p) => Condition::all().add(company::Column::StripeConnection.eq(p.clone())),
        None => Condition::all().add(company::Column::StripeConnection.is_null()),
    });
    let won = update.exec(&txn).await?.rows_affected == 1;
    // The first check finding everything right is no change worth a message.
    let first_ok = previous.is_none() && state == StripeConnectionState::Ok;
    let changed = (previous.as_deref() != Some(state.as_str()) && !first_ok) || repaired;
    if won && changed {
        for mode in Mode::ALL {
            let of_mode: Vec<&ProfileCheck> =
                checks.iter().filter(|c| c.mode == mode.as_str()).collect();
            let Some(mode_state) = of_mode.iter().map(|c| c.state).max_by_key(|s| s.severity())
            else {
                continue;
            };
            let about_this_mode = of_mode.iter().any(|c| !c.actions.is_empty())
                || (previous.as_deref() != Some(state.as_str()) && mode_state == state);
            if !about_this_mode {
                continue;
            }
            let object = json!({
                "object": "stripe_connection",
                "state": mode_state.as_str(),
                "company_state": state.as_str(),
                "previous_state": previous,
                "checked_at": rfc3339_ms(now),
                "livemode": mode.livemode(),
                "profiles": of_mode.iter().map(|c| json!({
                    "profile_id": c.profile_id,
                    "account_id": c.account_id,
                    "webhook_endpoint_id": c.webhook_endpoint_id,
                    "state": c.state.as_str(),
                    "actions": c.actions,
                })).collect::<Vec<_>>(),
            });
            let sent = outbox::emit(
                &txn,
                outbox::Emit {
                    scope: Scope::new(company.id, mode),
                    event_type: CONNECTION_CHANGED,
                    dedupe_key: format!(
                        "stripe_connection:{}:{}:{now}",
                        mode.as_str(),
                        mode_state.as_str()
                    ),
                    object,
                    shopper: None,
                    batch: None,
                    test_event: false,
                },
            )
            .await?;
            report.notified |= sent.is_some();
        }
    }
    txn.commit().await?;
    tenants.invalidate(&company.company_id);
    report.previous = previous;
    if won && changed {
        tracing::info!(
            company_id = %company.company_id,
            state = state.as_str(),
            previous = report.previous.as_deref().unwrap_or("none"),
            repaired,
            "Stripe connection state changed"
        );
    }

    if repaired {
        let since = current.stripe_last_ok_at.map(|ok| {
            let gap = Duration::from_millis(u64::try_from(now - ok).unwrap_or(0));
            gap + SAFETY_MARGIN
        });
        match reconcile_company(tenants, stripe, writer, &current, since, |_| {}).await {
            Ok(s) => report.reconciled = Some(s),
            Err(e) => tracing::warn!(
                company_id = %company.company_id,
                error = %e,
                "reconciliation after a Stripe connection repair failed"
            ),
        }
    }
    report.profiles = checks;
    Ok(report)
}

async fn check_profile(
    tenants: &TenantService,
    stripe: &StripeClient,
    company: &company::Model,
    p: &ActiveProfile,
    actor: &str,
    now: i64,
) -> Result<ProfileCheck, CheckError> {
    let profile = &p.profile;
    let key = &p.secret_key;
    let mut check = ProfileCheck {
        profile_id: profile.id.clone(),
        mode: profile.mode.clone(),
        account_id: profile.account_id.clone(),
        webhook_endpoint_id: profile.webhook_endpoint_id.clone(),
        state: StripeConnectionState::Ok,
        actions: Vec::new(),
    };
    match stripe.retrieve_account(key).await {
        Ok(a) => {
            tenants
                .record_account_facts(company.id, &profile.id, &AccountFacts::of(&a))
                .await?;
        }
        Err(e) => {
            check.state = state_of(&e);
            tracing::warn!(company_id = %company.company_id, profile_id = %profile.id, error = %e, "Stripe connection check: the account could not be read");
            return Ok(check);
        }
    }
    let endpoints = match stripe.list_webhook_endpoints(key).await {
        Ok(v) => v,
        Err(e) => {
            check.state = state_of(&e);
            tracing::warn!(company_id = %company.company_id, profile_id = %profile.id, error = %e, "Stripe connection check: the webhook endpoints could not be listed");
            return Ok(check);
        }
    };
    let want = tenants.endpoint_params(&company.company_id, &profile.id);
    let found = profile
        .webhook_endpoint_id
        .as_deref()
        .and_then(|id| endpoints.iter().find(|e| e.id == id));
    let idem = |what: &str| format!("paygate-check-{what}-{}-{now}", profile.id);
    let recreate = match found {
        None => true,
        Some(e) => {
            let disabled = e.status.as_deref() == Some("disabled");
            let drifted = !matches(e, &want.url, &want.enabled_events);
            if !disabled && !drifted {
                return Ok(check);
            }
            let update = UpdateWebhookEndpoint {
                url: drifted.then(|| want.url.clone()),
                enabled_events: drifted.then(|| want.enabled_events.clone()),
                disabled: disabled.then_some(false),
            };
            match stripe
                .update_webhook_endpoint(key, &e.id, &update, &idem("update"))
                .await
            {
                Ok(_) => {
                    if disabled {
                        check.actions.push("endpoint_enabled".into());
                        check.state = StripeConnectionState::DisabledByStripe;
                    }
                    if drifted {
                        check.actions.push("endpoint_updated".into());
                        if !disabled {
                            check.state = StripeConnectionState::Repaired;
                        }
                    }
                    false
                }
                Err(err) if err.status() == Some(404) => true,
                Err(err) => {
                    check.state = state_of(&err);
                    tracing::warn!(company_id = %company.company_id, profile_id = %profile.id, error = %err, "Stripe connection check: the webhook endpoint could not be updated");
                    return Ok(check);
                }
            }
        }
    };
    if recreate {
        match stripe
            .create_webhook_endpoint(key, &want, &idem("create"))
            .await
        {
            Ok(created) => {
                let Some(secret) = created.secret.as_ref() else {
                    check.state = StripeConnectionState::Unreachable;
                    return Ok(check);
                };
                tenants
                    .replace_endpoint(actor, company, &profile.id, &created.id, secret)
                    .await?;
                check.webhook_endpoint_id = Some(created.id);
                check.actions.push("endpoint_recreated".into());
                check.state = StripeConnectionState::Repaired;
            }
            Err(err) => {
                check.state = state_of(&err);
                tracing::warn!(company_id = %company.company_id, profile_id = %profile.id, error = %err, "Stripe connection check: the webhook endpoint could not be re-created");
            }
        }
    }
    Ok(check)
}

/// Whether an endpoint sends to `url` exactly the event types `events`.
fn matches(e: &WebhookEndpoint, url: &str, events: &[String]) -> bool {
    let mut have: Vec<&str> = e.enabled_events.iter().map(String::as_str).collect();
    let mut want: Vec<&str> = events.iter().map(String::as_str).collect();
    have.sort_unstable();
    have.dedup();
    want.sort_unstable();
    want.dedup();
    e.url == url && have == want
}

/// Checks every active company that has an automatically connected profile; returns how many
/// were checked.
pub async fn check_all(
    tenants: &TenantService,
    stripe: &StripeClient,
    writer: &InboxWriter,
) -> Result<usize, CheckError> {
    let companies = company::Entity::find()
        .filter(company::Column::Status.eq(paygate_tenant::service::STATUS_ACTIVE))
        .all(tenants.db())
        .await?;
    let mut checked = 0;
    for c in companies {
        match check_company(tenants, stripe, writer, &c, CHECK_ACTOR).await {
            Ok(r) if r.stripe_connection.is_some() => checked += 1,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(company_id = %c.company_id, error = %e, "Stripe connection check failed")
            }
        }
    }
    Ok(checked)
}
