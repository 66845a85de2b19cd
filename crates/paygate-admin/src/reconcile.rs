//! `POST /admin/v1/companies/{companyID}/reconcile`: recover events Stripe could not deliver.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use paygate_router::reconcile::{ReconcileError, reconcile_company};
use paygate_web::ApiError;

use crate::error_body::ErrorBody;
use crate::{AdminState, OperatorPrincipal};

/// Body (optional): how far back to look instead of from the last known event.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconcileIn {
    /// Look this many seconds back.
    since_secs: Option<u64>,
}

/// Recovers events Stripe could not deliver: lists them from Stripe and adds the missing ones
/// to the inbox.
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/reconcile",
    tag = "events",
    params(("company_id" = String, Path, description = "The company")),
    request_body = Option<ReconcileIn>,
    responses(
        (status = 200, description = "What the run did", body = paygate_router::reconcile::Summary),
        (status = 502, description = "Stripe refused or failed the events listing (`stripe_error`)", body = ErrorBody),
    ),
)]
pub(crate) async fn reconcile(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
    body: Option<web::Json<ReconcileIn>>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let since = body.and_then(|b| b.since_secs).map(Duration::from_secs);
    let summary = reconcile_company(
        &state.tenants,
        &state.stripe,
        &state.writer,
        &company,
        since,
        |_| {},
    )
    .await
    .inspect(|s| {
        state.metrics.reconcile("runs", 1);
        state.metrics.reconcile("fetched", s.fetched as u64);
        state.metrics.reconcile("recovered", s.recovered as u64);
    })
    .inspect_err(|_| state.metrics.reconcile("failed_runs", 1))
    .map_err(|e| match e {
        ReconcileError::Stripe(s) => ApiError::new(
            actix_web::http::StatusCode::BAD_GATEWAY,
            "stripe_error",
            format!("Stripe refused or failed the events listing: {s}"),
        ),
        ReconcileError::Tenant(t) => t.into(),
        other => ApiError::internal(other),
    })?;
    paygate_tenant::audit::record(
        &state.db,
        &op.actor(),
        Some(company.id),
        "company.reconciled",
        &company.company_id,
        serde_json::json!({"recovered": summary.recovered, "fetched": summary.fetched}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(summary))
}
