//! The admin API's operators: `GET, POST /admin/v1/operators`,
//! `POST /admin/v1/operators/{operator_id}/disable | enable`,
//! `DELETE /admin/v1/operators/{operator_id}`. The rules (e-mails, passwords, Argon2id, never
//! the last active operator, tokens ended by a disable) are [`paygate_tenant::operators`]; this
//! file is only their HTTP form. An operator changes their own password at
//! `POST /admin/v1/auth/password` ([`crate::auth`]).

use actix_web::{HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use paygate_db::entities::operator;
use paygate_tenant::operators;
use paygate_web::{ApiError, rfc3339_ms};

use crate::error_body::ErrorBody;
use crate::{AdminState, List, OperatorPrincipal};

/// Re-exported for `paygate-server`'s start-up (the first operator from the environment), which
/// still names them here; new code calls [`paygate_tenant::operators`].
pub use paygate_tenant::operators::{count, create};

/// `POST /admin/v1/operators`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorIn {
    email: String,
    /// At least 12 characters.
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

impl std::fmt::Debug for OperatorIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OperatorIn")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// An operator as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OperatorOut {
    id: String,
    email: String,
    disabled: bool,
    created_at: String,
}

impl From<operator::Model> for OperatorOut {
    fn from(m: operator::Model) -> Self {
        Self {
            id: m.id,
            email: m.email,
            disabled: m.disabled,
            created_at: rfc3339_ms(m.created_at),
        }
    }
}

/// Lists operators.
#[utoipa::path(
    get,
    path = "/admin/v1/operators",
    tag = "operators",
    responses((status = 200, description = "Every operator, oldest first", body = List<OperatorOut>)),
)]
pub(crate) async fn list(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
) -> Result<HttpResponse, ApiError> {
    let ops = operators::list(&state.db).await?;
    let data: Vec<OperatorOut> = ops.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(List { data }))
}

/// Adds an operator.
#[utoipa::path(
    post,
    path = "/admin/v1/operators",
    tag = "operators",
    request_body = OperatorIn,
    responses(
        (status = 201, description = "The operator", body = OperatorOut),
        (status = 409, description = "An operator with this e-mail exists (`operator_exists`)", body = ErrorBody),
        (status = 422, description = "The e-mail or password is invalid (`invalid_email`, `weak_password`)", body = ErrorBody),
    ),
)]
pub(crate) async fn add(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    body: web::Json<OperatorIn>,
) -> Result<HttpResponse, ApiError> {
    let OperatorIn { email, password } = body.into_inner();
    let created = operators::create(&state.db, &email, password).await?;
    paygate_tenant::audit::record(
        &state.db,
        &op.actor(),
        None,
        "operator.created",
        &created.id,
        serde_json::json!({"email": created.email}),
    )
    .await?;
    Ok(HttpResponse::Created().json(OperatorOut::from(created)))
}

/// Disables an operator: they sign in nowhere, and their tokens and back-office sessions stop
/// working at once.
#[utoipa::path(
    post,
    path = "/admin/v1/operators/{operator_id}/disable",
    tag = "operators",
    params(("operator_id" = String, Path, description = "The operator's id (`op_…`)")),
    responses(
        (status = 200, description = "The operator, disabled", body = OperatorOut),
        (status = 404, description = "No such operator (`operator_not_found`)", body = ErrorBody),
        (status = 409, description = "The operator is the last active one (`last_active_operator`)", body = ErrorBody),
    ),
)]
pub(crate) async fn disable(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let changed = operators::disable(&state.db, &op.actor(), &path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(OperatorOut::from(changed)))
}

/// Enables a disabled operator again; they sign in anew (what they held before stays refused).
#[utoipa::path(
    post,
    path = "/admin/v1/operators/{operator_id}/enable",
    tag = "operators",
    params(("operator_id" = String, Path, description = "The operator's id (`op_…`)")),
    responses(
        (status = 200, description = "The operator, enabled", body = OperatorOut),
        (status = 404, description = "No such operator (`operator_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn enable(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let changed = operators::enable(&state.db, &op.actor(), &path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(OperatorOut::from(changed)))
}

/// Removes an operator; their tokens and sessions end with them.
#[utoipa::path(
    delete,
    path = "/admin/v1/operators/{operator_id}",
    tag = "operators",
    params(("operator_id" = String, Path, description = "The operator's id (`op_…`)")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such operator (`operator_not_found`)", body = ErrorBody),
        (status = 409, description = "The operator is the last active one (`last_active_operator`)", body = ErrorBody),
    ),
)]
pub(crate) async fn remove(
    state: web::Data<AdminState>,
    op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    operators::remove(&state.db, &op.actor(), &path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}
