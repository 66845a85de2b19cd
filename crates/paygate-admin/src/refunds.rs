//! `POST /api/v1/orders/{order_id}/refunds`: the merchant refunds an order, in full or in part.
//!
//! Policy: the key's company and mode only (another company's order, or one of the other mode,
//! is "not found"); the refund is requested from Stripe with Paygate's own idempotency key,
//! derived from the company, the mode, the order and the merchant's `Idempotency-Key`, and kept
//! with the refund, so the same key answers the same refund (200 instead of 201) without asking
//! Stripe again, and concurrent duplicates make one Stripe refund (see
//! `paygate_router::refunds`). Bad input changes nothing.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use paygate_router::refunds::{self, RefundError, RefundRequest};
use paygate_stripe::StripeError;
use paygate_web::ApiError;

use sea_orm::{ColumnTrait, QueryFilter};

use paygate_db::entities::{early_fraud_warning, refund};

use crate::domain::{FraudWarningOut, RefundOut, fraud_warning_out, refund_out};
use crate::error_body::ErrorBody;
use crate::merchant::MerchantPrincipal;
use crate::{AdminState, ModeQuery, OperatorPrincipal};

/// `POST /api/v1/orders/{order_id}/refunds`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundIn {
    /// In the currency's smallest unit, > 0; absent: everything not refunded yet.
    pub amount: Option<i64>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    pub reason: Option<String>,
}

/// The longest `Idempotency-Key` accepted.
const MAX_KEY_LEN: usize = 255;

/// Maps why a refund could not be made to the API's answer.
pub fn refund_error(e: RefundError) -> ApiError {
    match e {
        RefundError::OrderNotFound => ApiError::not_found("order_not_found", "no such order"),
        RefundError::NotRefundable(m) => ApiError::conflict("order_not_refundable", m),
        RefundError::Invalid { field, message } => {
            ApiError::unprocessable("validation_failed", format!("{field}: {message}"))
                .with_field(field)
        }
        RefundError::KeyReused => ApiError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was used for a refund of another amount",
        ),
        RefundError::NoProfile(mode) => ApiError::unprocessable(
            "active_profile_missing",
            format!("the company has no active {mode} profile"),
        ),
        RefundError::Stripe(e @ StripeError::Api { status, .. })
            if (400..500).contains(&status) && status != 429 =>
        {
            ApiError::conflict("refund_refused", format!("Stripe refused the refund: {e}"))
        }
        RefundError::Stripe(e) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "stripe_error",
            format!("Stripe could not be reached for the refund: {e}"),
        ),
        RefundError::Db(e) => e.into(),
        RefundError::Tenant(e) => e.into(),
    }
}

/// Refunds an order of the key's company and mode.
///
/// `amount` absent refunds everything not refunded yet. With an `Idempotency-Key` header, the
/// same key answers the same refund (200).
#[utoipa::path(
    post,
    path = "/api/v1/orders/{order_id}/refunds",
    tag = "merchant",
    request_body = RefundIn,
    params(
        ("order_id" = String, Path, description = "The order (`ord_…`)"),
        ("Idempotency-Key" = Option<String>, Header, description = "The same key answers the same refund"),
    ),
    responses(
        (status = 201, description = "The refund Stripe made", body = RefundOut),
        (status = 200, description = "The refund this Idempotency-Key made before", body = RefundOut),
        (status = 404, description = "No such order in the key's company and mode (`order_not_found`)", body = ErrorBody),
        (status = 409, description = "Nothing to refund (`order_not_refundable`), the key was used for another amount (`idempotency_key_reused`), or Stripe refused (`refund_refused`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`validation_failed`), or no active profile of the mode (`active_profile_missing`)", body = ErrorBody),
        (status = 502, description = "Stripe could not be reached (`stripe_error`)", body = ErrorBody),
    ),
)]
pub(crate) async fn create(
    state: web::Data<AdminState>,
    who: MerchantPrincipal,
    path: web::Path<String>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    // An empty body is a full refund; anything else must be valid (a malformed body never
    // becomes "refund everything").
    let input: RefundIn = if body.iter().all(u8::is_ascii_whitespace) {
        RefundIn::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}")))?
    };
    let key = match req.headers().get("Idempotency-Key") {
        Some(v) => {
            let k = v.to_str().ok().map(str::trim).unwrap_or_default();
            if k.is_empty() || k.len() > MAX_KEY_LEN {
                return Err(ApiError::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 visible characters",
                ));
            }
            Some(k.to_owned())
        }
        None => None,
    };
    let order_id = path.into_inner();
    let (refund, made) = refunds::create_refund(
        &state.db,
        &state.tenants,
        &state.stripe,
        who.scope,
        RefundRequest {
            order_id: &order_id,
            amount: input.amount,
            reason: input.reason,
            idempotency_key: key.as_deref(),
        },
    )
    .await
    .map_err(refund_error)?;
    let out = refund_out(&refund, Some(&order_id));
    Ok(if made {
        HttpResponse::Created().json(out)
    } else {
        HttpResponse::Ok().json(out)
    })
}

/// A refund, whoever made it.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/refunds/{id}",
    tag = "payments",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("id" = String, Path, description = "Stripe's `re_…`"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The refund", body = RefundOut),
        (status = 404, description = "Not of this company and mode (`refund_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_refund(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = company
        .scope(mode.mode)
        .refunds()
        .filter(refund::Column::StripeRefundId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("refund_not_found", "no such refund"))?;
    Ok(HttpResponse::Ok().json(refund_out(&m, None)))
}

/// An early fraud warning.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/early-fraud-warnings/{id}",
    tag = "payments",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("id" = String, Path, description = "Stripe's `issfr_…`"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The warning", body = FraudWarningOut),
        (status = 404, description = "Not of this company and mode (`early_fraud_warning_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_early_fraud_warning(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (c, id) = path.into_inner();
    let company = state.tenants.company(&c).await?;
    let m = company
        .scope(mode.mode)
        .early_fraud_warnings()
        .filter(early_fraud_warning::Column::StripeId.eq(id))
        .one(&state.db)
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "early_fraud_warning_not_found",
                "no such early fraud warning",
            )
        })?;
    Ok(HttpResponse::Ok().json(fraud_warning_out(&m)))
}
