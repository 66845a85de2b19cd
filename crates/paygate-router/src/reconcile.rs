//! Missed-event recovery. Stripe keeps events for 30 days; when a delivery never arrived (an
//! outage, a wrong secret for a while, a suspended company), reconciliation pages through
//! `GET /v1/events` of each active profile from the last known point and feeds what is missing
//! into the inbox through the same deduplication as the intake, marked `recovered`.
//!
//! Policy: the starting point is the newest `created` already in the inbox for that mode, less a
//! safety margin (events are not created in order of delivery), bounded by Stripe's 30 days;
//! `since` overrides it. Only the event types Paygate asks merchants to select are recovered.

use std::collections::HashSet;
use std::time::Duration;

use sea_orm::QuerySelect;
use sea_orm::sea_query::{Expr, Func};

use paygate_db::entities::{company, inbox_event};
use paygate_db::{Mode, Tenant};
use paygate_stripe::{ListEvents, StripeClient, StripeError};
use paygate_tenant::{STRIPE_EVENTS_TO_SELECT, TenantError, TenantService};

use crate::inbox::{InboxWriter, InsertOutcome, NewInboxEvent};

/// How far before the newest known event a run starts.
pub const SAFETY_MARGIN: Duration = Duration::from_secs(15 * 60);
/// How far back Stripe keeps events.
pub const STRIPE_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// What a run did, per company.
#[derive(Debug, Default, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Summary {
    /// Profiles (modes) looked at.
    pub profiles: usize,
    /// Events Stripe listed.
    pub fetched: usize,
    /// Events that were missing and are now in the inbox.
    pub recovered: usize,
    /// Events that were already there.
    pub already_present: usize,
    /// Events of types Paygate does not subscribe to.
    pub skipped: usize,
    /// Pages requested from Stripe.
    pub pages: usize,
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("tenant configuration")]
    Tenant(#[from] TenantError),
    #[error("Stripe API")]
    Stripe(#[from] StripeError),
    #[error("database")]
    Db(#[from] sea_orm::DbErr),
    #[error("inbox")]
    Inbox(#[from] crate::inbox::InboxError),
}

/// Reconciles one company; `progress` is called after every page.
pub async fn reconcile_company(
    tenants: &TenantService,
    stripe: &StripeClient,
    writer: &InboxWriter,
    company: &company::Model,
    since: Option<Duration>,
    mut progress: impl FnMut(&Summary),
) -> Result<Summary, ReconcileError> {
    let wanted: HashSet<&str> = STRIPE_EVENTS_TO_SELECT.iter().map(|e| e.as_str()).collect();
    let mut summary = Summary::default();
    let now = chrono::Utc::now().timestamp();
    let oldest = now - STRIPE_RETENTION.as_secs() as i64;
    for mode in Mode::ALL {
        let scope = Tenant::new(company.id).in_mode(mode);
        let Some(active) = tenants
            .active_profile_for(company.id, mode.as_str())
            .await?
        else {
            continue;
        };
        summary.profiles += 1;
        let from = match since {
            Some(d) => now - d.as_secs() as i64,
            None => {
                let newest: Option<Option<i64>> = scope
                    .inbox_events()
                    .select_only()
                    .column_as(
                        Expr::from(Func::max(Expr::col(inbox_event::Column::Created))),
                        "m",
                    )
                    .into_tuple()
                    .one(tenants.db())
                    .await?;
                match newest.flatten() {
                    Some(t) => t - SAFETY_MARGIN.as_secs() as i64,
                    None => oldest,
                }
            }
        }
        .max(oldest);
        recover(
            stripe,
            writer,
            company.id,
            mode,
            &active.secret_key,
            (from, None),
            &wanted,
            &mut summary,
            &mut progress,
        )
        .await?;
    }
    tracing::info!(
        company_id = %company.company_id,
        fetched = summary.fetched,
        recovered = summary.recovered,
        already_present = summary.already_present,
        "reconciliation finished"
    );
    Ok(summary)
}

/// Pages through `GET /v1/events` of one profile (`key`, of `mode`) created within
/// `(from, to)` (Unix seconds, `to` open when `None`) and adds what is missing to the inbox.
#[expect(clippy::too_many_arguments, reason = "one private step of a run")]
async fn recover(
    stripe: &StripeClient,
    writer: &InboxWriter,
    company_pk: i64,
    mode: Mode,
    key: &paygate_stripe::SecretString,
    (from, to): (i64, Option<i64>),
    wanted: &HashSet<&str>,
    summary: &mut Summary,
    progress: &mut impl FnMut(&Summary),
) -> Result<(), ReconcileError> {
    let mut starting_after = None;
    loop {
        let page = stripe
            .list_events(
                key,
                &ListEvents {
                    created_gte: Some(from),
                    created_lte: to,
                    starting_after: starting_after.clone(),
                    limit: 100,
                    types: Vec::new(),
                },
            )
            .await?;
        summary.pages += 1;
        for ev in &page.data {
            summary.fetched += 1;
            let (Some(id), Some(event_type), Some(created)) = (
                ev["id"].as_str(),
                ev["type"].as_str(),
                ev["created"].as_i64(),
            ) else {
                continue;
            };
            // The key's mode is the events' mode: one that says otherwise is not stored.
            if !wanted.contains(event_type)
                || ev["livemode"]
                    .as_bool()
                    .is_some_and(|l| l != mode.livemode())
            {
                summary.skipped += 1;
                continue;
            }
            let outcome = writer
                .insert(NewInboxEvent {
                    company_pk,
                    stripe_event_id: id.to_owned(),
                    event_type: event_type.to_owned(),
                    livemode: mode.livemode(),
                    api_version: ev["api_version"].as_str().map(str::to_owned),
                    account_id: ev["account"].as_str().map(str::to_owned),
                    created,
                    payload: ev.to_string(),
                    origin: "recovered",
                    status: crate::inbox::status::PENDING,
                })
                .await?;
            match outcome {
                InsertOutcome::Inserted => summary.recovered += 1,
                InsertOutcome::Duplicate => summary.already_present += 1,
            }
        }
        progress(summary);
        match (
            page.has_more,
            page.data.last().and_then(|e| e["id"].as_str()),
        ) {
            (true, Some(last)) => starting_after = Some(last.to_owned()),
            _ => break,
        }
    }
    Ok(())
}

/// Reconciles one mode of one company over a window Stripe named (a thin
/// `v2.core.health.event_generation_failure.resolved`): `GET /v1/events` with `created[gte]`
/// and `created[lte]`, with the active profile of `mode`, the window widened by the safety
/// margin and bounded by Stripe's 30 days. No active profile of the mode: nothing to do.
pub async fn reconcile_window(
    tenants: &TenantService,
    stripe: &StripeClient,
    writer: &InboxWriter,
    company_pk: i64,
    mode: Mode,
    (from, to): (i64, i64),
) -> Result<Summary, ReconcileError> {
    let wanted: HashSet<&str> = STRIPE_EVENTS_TO_SELECT.iter().map(|e| e.as_str()).collect();
    let mut summary = Summary::default();
    let now = chrono::Utc::now().timestamp();
    let oldest = now - STRIPE_RETENTION.as_secs() as i64;
    let Some(active) = tenants
        .active_profile_for(company_pk, mode.as_str())
        .await?
    else {
        return Ok(summary);
    };
    summary.profiles = 1;
    let margin = SAFETY_MARGIN.as_secs() as i64;
    let from = (from - margin).max(oldest);
    let to = to.saturating_add(margin).min(now);
    recover(
        stripe,
        writer,
        company_pk,
        mode,
        &active.secret_key,
        (from, Some(to)),
        &wanted,
        &mut summary,
        &mut |_| {},
    )
    .await?;
    tracing::info!(
        company_pk,
        mode = mode.as_str(),
        from,
        to,
        recovered = summary.recovered,
        "reconciliation of a window finished"
    );
    Ok(summary)
}
