//! `/admin/v1/companies/{companyID}/profiles`: a company's Stripe profiles.

use actix_web::{HttpResponse, web};

use paygate_tenant::wire::{ProfileIn, ProfilePatch, SigningSecretIn};
use paygate_web::ApiError;

use crate::{AdminState, OperatorPrincipal};

/// Registers the profile routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/companies/{company_id}/profiles", web::get().to(list))
        .route("/companies/{company_id}/profiles", web::post().to(create))
        .route(
            "/companies/{company_id}/profiles/{profile_id}",
            web::get().to(get),
        )
        .route(
            "/companies/{company_id}/profiles/{profile_id}",
            web::patch().to(update),
        )
        .route(
            "/companies/{company_id}/profiles/{profile_id}",
            web::delete().to(delete),
        )
        .route(
            "/companies/{company_id}/profiles/{profile_id}/signing-secrets",
            web::post().to(rotate),
        );
}

async fn list(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let data = state.tenants.list_profiles(&company).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "data": data })))
}

async fn create(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
    body: web::Json<ProfileIn>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let out = state
        .tenants
        .create_profile(&op.actor(), &company, body.into_inner())
        .await?;
    Ok(HttpResponse::Created().json(out))
}

async fn get(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, profile_id) = path.into_inner();
    let company = state.tenants.company(&company_id).await?;
    Ok(HttpResponse::Ok().json(state.tenants.profile(&company, &profile_id).await?))
}

async fn update(
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

async fn delete(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, profile_id) = path.into_inner();
    let company = state.tenants.company(&company_id).await?;
    state
        .tenants
        .delete_profile(&op.actor(), &company, &profile_id)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn rotate(
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
