//! `/admin/v1/companies/{companyID}/profiles`: a company's Stripe profiles.

use actix_web::{HttpResponse, web};

use paygate_tenant::wire::{ProfileIn, ProfileOut, ProfilePatch, SigningSecretIn};
use paygate_web::ApiError;

use crate::error_body::ErrorBody;
use crate::{AdminState, List, OperatorPrincipal};

/// A company's Stripe profiles, secrets masked.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/profiles",
    tag = "profiles",
    params(("company_id" = String, Path, description = "The company")),
    responses((status = 200, description = "Every profile", body = List<ProfileOut>)),
)]
pub(crate) async fn list(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let data = state.tenants.list_profiles(&company).await?;
    Ok(HttpResponse::Ok().json(List { data }))
}

/// Adds a Stripe profile: from keys and a signing secret entered by hand, or, with
/// `"auto_configure": true`, from a key alone (Paygate reads the account, creates the webhook
/// endpoint and stores its signing secret; the answer's `auto_configure` says what it did).
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/profiles",
    tag = "profiles",
    params(("company_id" = String, Path, description = "The company")),
    request_body = ProfileIn,
    responses(
        (status = 201, description = "The profile, secrets masked", body = ProfileOut),
        (status = 409, description = "The name is taken (`profile_name_taken`)", body = ErrorBody),
        (status = 422, description = "A field is invalid; with `auto_configure`, also a key Stripe refused (`invalid_key`), lacking a permission (`key_permission_missing`) or of another account (`account_mismatch`)", body = ErrorBody),
        (status = 502, description = "Stripe could not be reached (`stripe_unreachable`): nothing was stored", body = ErrorBody),
    ),
)]
pub(crate) async fn create(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
    body: web::Json<ProfileIn>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let input = body.into_inner();
    let out = if input.auto_configure == Some(true) {
        state
            .tenants
            .connect_profile(&op.actor(), &company, input, &state.stripe)
            .await?
    } else {
        state
            .tenants
            .create_profile(&op.actor(), &company, input)
            .await?
    };
    Ok(HttpResponse::Created().json(out))
}

/// One profile.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/profiles/{profile_id}",
    tag = "profiles",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("profile_id" = String, Path, description = "The profile (`prf_…`)"),
    ),
    responses(
        (status = 200, description = "The profile, secrets masked", body = ProfileOut),
        (status = 404, description = "No such profile (`profile_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, profile_id) = path.into_inner();
    let company = state.tenants.company(&company_id).await?;
    Ok(HttpResponse::Ok().json(state.tenants.profile(&company, &profile_id).await?))
}

/// Changes a profile (not its mode: keys belong to a mode).
#[utoipa::path(
    patch,
    path = "/admin/v1/companies/{company_id}/profiles/{profile_id}",
    tag = "profiles",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("profile_id" = String, Path, description = "The profile (`prf_…`)"),
    ),
    request_body = ProfilePatch,
    responses(
        (status = 200, description = "The profile, secrets masked", body = ProfileOut),
        (status = 404, description = "No such profile (`profile_not_found`)", body = ErrorBody),
        (status = 409, description = "The name is taken (`profile_name_taken`)", body = ErrorBody),
        (status = 422, description = "A field is invalid", body = ErrorBody),
    ),
)]
pub(crate) async fn update(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    body: web::Json<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, profile_id) = path.into_inner();
    let company = state.tenants.company(&company_id).await?;
    let out = state
        .tenants
        .update_profile(&op.actor(), &company, &profile_id, body.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(out))
}

/// Removes a profile; the webhook endpoint Paygate created for it (connected automatically) is
/// deleted in Stripe.
#[utoipa::path(
    delete,
    path = "/admin/v1/companies/{company_id}/profiles/{profile_id}",
    tag = "profiles",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("profile_id" = String, Path, description = "The profile (`prf_…`)"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such profile (`profile_not_found`)", body = ErrorBody),
        (status = 409, description = "The profile is in use (`profile_in_use`)", body = ErrorBody),
    ),
)]
pub(crate) async fn delete(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, profile_id) = path.into_inner();
    let company = state.tenants.company(&company_id).await?;
    state
        .tenants
        .disconnect_profile(&op.actor(), &company, &profile_id, &state.stripe)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Rotates the signing secret; the previous ones stay valid for the grace period.
#[utoipa::path(
    post,
    path = "/admin/v1/companies/{company_id}/profiles/{profile_id}/signing-secrets",
    tag = "profiles",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("profile_id" = String, Path, description = "The profile (`prf_…`)"),
    ),
    request_body = SigningSecretIn,
    responses(
        (status = 201, description = "The profile with its signing secrets, masked", body = ProfileOut),
        (status = 404, description = "No such profile (`profile_not_found`)", body = ErrorBody),
        (status = 422, description = "The secret is invalid (`invalid_webhook_secret`), or the company already has it (`duplicate_signing_secret`, field `webhook_secret`)", body = ErrorBody),
    ),
)]
pub(crate) async fn rotate(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    body: web::Json<SigningSecretIn>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, profile_id) = path.into_inner();
    let company = state.tenants.company(&company_id).await?;
    let out = state
        .tenants
        .rotate_signing_secret(&op.actor(), &company, &profile_id, body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(out))
}
