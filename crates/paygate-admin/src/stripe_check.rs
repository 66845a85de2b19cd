//! `POST /admin/v1/companies/{companyID}/stripe-check`: check (and repair) the company's Stripe
//! connection now, as the periodic check does (`PAYGATE_STRIPE_CHECK_SECS`); see
//! `paygate_router::stripe_connection`.

use actix_web::{HttpResponse, web};

use paygate_router::stripe_connection::{CheckError, CheckReport, check_company};
use paygate_web::ApiError;

use crate::error_body::ErrorBody;
use crate::{AdminState, OperatorPrincipal};

/// Checks the webhook endpoints Paygate created for the company's profiles, repairs drift
/// (URL or events changed, endpoint deleted or disabled by Stripe), records the state
/// (`stripe_connection`), tells the merchant's systems of a change and reconciles after a
/// repair.
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/stripe-check",
    tag = "profiles",
    params(("company_id" = String, Path, description = "The company")),
    responses(
        (status = 200, description = "What the check found and did", body = CheckReport),
        (status = 404, description = "No such company (`company_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn check(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let report = check_company(
        &state.tenants,
        &state.stripe,
        &state.writer,
        &company,
        &op.actor(),
    )
    .await
    .map_err(|e| match e {
        CheckError::Tenant(t) => ApiError::from(t),
        CheckError::Db(d) => ApiError::from(d),
    })?;
    Ok(HttpResponse::Ok().json(report))
}
