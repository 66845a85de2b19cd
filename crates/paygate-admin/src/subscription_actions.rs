//! What a merchant *does* to subscriptions (issue 19): cancel now or at the end of the period,
//! resume, and open the Stripe customer portal for a customer. The merchant API
//! (`POST /api/v1/subscriptions/{id}/cancel`, `…/resume`, `POST /api/v1/customers/{id}/portal-sessions`)
//! and the back office's buttons call the same functions here ([`perform`], [`portal_session`]).
//!
//! Policy:
//! - The object is found in the local read model through the caller's company *and mode*
//!   ([`Scope`]): another company's subscription, or one of the other mode, is "not found" and
//!   Stripe is never called. The call goes out with the secret key of the active profile of
//!   that same mode, so a test key or a test-mode page can only ever act on test objects.
//! - Every Stripe call carries an idempotency key of ours, fresh for each action (a retry
//!   inside the Stripe client reuses it; a later action is a new one: Stripe keeps keys for
//!   24 hours, and "cancel at period end, resume, cancel at period end" must reach Stripe three
//!   times).
//! - The local row takes Stripe's answer forward-only: the answer is Stripe's state *now*, so it
//!   is stored as if an event created now had brought it (`last_event_created` = now), never over
//!   a row that a newer event already moved on, and an ended subscription is never reopened.
//!   The events the action causes (`customer.subscription.updated` / `.deleted`) arrive later
//!   and carry the same state.
//! - Resuming means what the subscription needs: one set to cancel at the end of its period is
//!   kept going (`cancel_at_period_end=false`); a `paused` one is resumed
//!   (`POST /v1/subscriptions/{id}/resume`); anything else is 409 `subscription_not_resumable`.
//!   An ended subscription (`canceled`, `incomplete_expired`) takes no action: 409
//!   `subscription_ended`.
//! - Every action is audited (`subscription.canceled`, `subscription.cancel_scheduled`,
//!   `subscription.resumed`, `customer_portal.link_created`), with the actor.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, QueryFilter};
use serde::{Deserialize, Serialize};

use paygate_db::entities::{customer, subscription};
use paygate_db::{Mode, Scope, new_id, now_ms};
use paygate_stripe::{
    BillingPortalSession, CancelSubscription, CreateBillingPortalSession, ResumeSubscription,
    StripeClient, StripeError, Subscription, UpdateSubscription,
};
use paygate_tenant::TenantService;
use paygate_tenant::error::TenantError;
use paygate_web::ApiError;

use crate::AdminState;
use crate::billing::{SubscriptionOut, subscription_out};
use crate::error_body::ErrorBody;
use crate::merchant::MerchantPrincipal;

/// The statuses after which a subscription takes no action.
pub const ENDED: [&str; 2] = ["canceled", "incomplete_expired"];

/// What a merchant can do to a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubscriptionAction {
    /// End it now (`DELETE /v1/subscriptions/{id}`).
    CancelNow,
    /// End it when the current period ends (`cancel_at_period_end=true`).
    CancelAtPeriodEnd,
    /// Keep it going (undo a cancellation at period end) or resume a paused one.
    Resume,
}

impl SubscriptionAction {
    /// `cancel_now`, `cancel_at_period_end`, `resume`: the back office's path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CancelNow => "cancel_now",
            Self::CancelAtPeriodEnd => "cancel_at_period_end",
            Self::Resume => "resume",
        }
    }

    /// The action named by [`Self::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "cancel_now" => Some(Self::CancelNow),
            "cancel_at_period_end" => Some(Self::CancelAtPeriodEnd),
            "resume" => Some(Self::Resume),
            _ => None,
        }
    }

    /// Whether `row` offers this action now (what the back office shows buttons for).
    pub fn applies_to(self, row: &subscription::Model) -> bool {
        if ENDED.contains(&row.status.as_str()) {
            return false;
        }
        match self {
            Self::CancelNow => true,
            Self::CancelAtPeriodEnd => !row.cancel_at_period_end,
            Self::Resume => row.cancel_at_period_end || row.status == "paused",
        }
    }
}

/// Why an action was not done. Nothing changed, locally or in Stripe, except for
/// [`ActionError::Stripe`] when Stripe's answer was lost (the idempotency key makes a retry
/// of the same request safe; the events bring the state).
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("no such subscription")]
    SubscriptionNotFound,
    #[error("no such customer")]
    CustomerNotFound,
    #[error("the customer was deleted in Stripe")]
    CustomerDeleted,
    #[error("the subscription has ended ({0}): it takes no action")]
    Ended(String),
    #[error(
        "the subscription is neither set to cancel at the end of its period nor paused: there is nothing to resume"
    )]
    NotResumable,
    #[error("the company has no active {0} profile")]
    NoProfile(Mode),
    #[error("Stripe refused: {0}")]
    Stripe(#[source] StripeError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error("database error")]
    Db(#[from] DbErr),
}

/// 404 `subscription_not_found` / `customer_not_found`, 409 `customer_deleted` /
/// `subscription_ended` / `subscription_not_resumable`, 422 `active_profile_missing`, 502
/// `stripe_error` (Stripe's message, never a key), 500 otherwise.
impl From<ActionError> for ApiError {
    fn from(e: ActionError) -> Self {
        let message = e.to_string();
        match e {
            ActionError::SubscriptionNotFound => {
                ApiError::not_found("subscription_not_found", message)
            }
            ActionError::CustomerNotFound => ApiError::not_found("customer_not_found", message),
            ActionError::CustomerDeleted => ApiError::conflict("customer_deleted", message),
            ActionError::Ended(_) => ApiError::conflict("subscription_ended", message),
            ActionError::NotResumable => ApiError::conflict("subscription_not_resumable", message),
            ActionError::NoProfile(_) => ApiError::unprocessable("active_profile_missing", message),
            ActionError::Stripe(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "stripe_error", message)
            }
            ActionError::Tenant(t) => ApiError::from(t),
            ActionError::Db(db) => ApiError::from(db),
        }
    }
}

/// What the actions need: the database, the tenants (for the mode's secret key) and Stripe.
#[derive(Clone, Copy, Debug)]
pub struct Billing<'a> {
    pub db: &'a DatabaseConnection,
    pub tenants: &'a TenantService,
    pub stripe: &'a StripeClient,
}

/// The subscription `stripe_id` of the company in the mode of `scope`, if it has one.
pub async fn find_subscription(
    db: &DatabaseConnection,
    scope: Scope,
    stripe_id: &str,
) -> Result<Option<subscription::Model>, DbErr> {
    scope
        .subscriptions()
        .filter(subscription::Column::StripeSubscriptionId.eq(stripe_id))
        .one(db)
        .await
}

/// The customer `stripe_id` of the company in the mode of `scope`, if it has one.
pub async fn find_customer(
    db: &DatabaseConnection,
    scope: Scope,
    stripe_id: &str,
) -> Result<Option<customer::Model>, DbErr> {
    scope
        .customers()
        .filter(customer::Column::StripeCustomerId.eq(stripe_id))
        .one(db)
        .await
}

async fn secret_key(b: Billing<'_>, scope: Scope) -> Result<secrecy::SecretString, ActionError> {
    b.tenants
        .active_profile_for(scope.company_pk(), scope.mode().as_str())
        .await?
        .map(|p| p.secret_key)
        .ok_or(ActionError::NoProfile(scope.mode()))
}

/// Does `action` to the subscription `stripe_id` of the company in the mode of `scope` (see the
/// module's policy), as `actor`; the row as it is afterwards.
pub async fn perform(
    b: Billing<'_>,
    scope: Scope,
    actor: &str,
    stripe_id: &str,
    action: SubscriptionAction,
) -> Result<subscription::Model, ActionError> {
    let row = find_subscription(b.db, scope, stripe_id)
        .await?
        .ok_or(ActionError::SubscriptionNotFound)?;
    if ENDED.contains(&row.status.as_str()) {
        return Err(ActionError::Ended(row.status));
    }
    if action == SubscriptionAction::Resume && !action.applies_to(&row) {
        return Err(ActionError::NotResumable);
    }
    let key = secret_key(b, scope).await?;
    let idempotency_key = new_id(&format!("paygate_sub_{}", action.as_str()));
    let id = row.stripe_subscription_id.as_str();
    let (answer, audit_action) = match action {
        SubscriptionAction::CancelNow => (
            b.stripe
                .cancel_subscription(&key, id, &CancelSubscription::default(), &idempotency_key)
                .await,
            "subscription.canceled",
        ),
        SubscriptionAction::CancelAtPeriodEnd => (
            b.stripe
                .update_subscription(
                    &key,
                    id,
                    &UpdateSubscription {
                        cancel_at_period_end: Some(true),
                        ..UpdateSubscription::default()
                    },
                    &idempotency_key,
                )
                .await,
            "subscription.cancel_scheduled",
        ),
        SubscriptionAction::Resume if row.cancel_at_period_end => (
            b.stripe
                .update_subscription(
                    &key,
                    id,
                    &UpdateSubscription {
                        cancel_at_period_end: Some(false),
                        ..UpdateSubscription::default()
                    },
                    &idempotency_key,
                )
                .await,
            "subscription.resumed",
        ),
        SubscriptionAction::Resume => (
            b.stripe
                .resume_subscription(&key, id, &ResumeSubscription::default(), &idempotency_key)
                .await,
            "subscription.resumed",
        ),
    };
    let answer = answer.map_err(ActionError::Stripe)?;
    apply_answer(b.db, scope, &row, &answer).await?;
    paygate_tenant::audit::record(
        b.db,
        actor,
        Some(scope.company_pk()),
        audit_action,
        id,
        serde_json::json!({
            "livemode": scope.livemode(),
            "action": action.as_str(),
            "status": answer.status,
            "cancel_at_period_end": answer.cancel_at_period_end,
        }),
    )
    .await?;
    Ok(find_subscription(b.db, scope, id).await?.unwrap_or(row))
}

/// Stores Stripe's answer about `row` forward-only (see the module's policy). An answer of
/// another object or mode (which the key of the row's mode cannot give) is not stored.
async fn apply_answer(
    db: &DatabaseConnection,
    scope: Scope,
    row: &subscription::Model,
    answer: &Subscription,
) -> Result<(), DbErr> {
    if answer.id != row.stripe_subscription_id || answer.livemode != scope.livemode() {
        tracing::warn!(
            subscription = %row.stripe_subscription_id,
            answered = %answer.id,
            "Stripe answered about another subscription or mode: not stored"
        );
        return Ok(());
    }
    let now_s = now_ms() / 1000;
    let ended = ENDED.contains(&answer.status.as_str());
    use subscription::Column as C;
    let mut update = scope
        .update::<subscription::Entity>()
        .col_expr(C::Status, Expr::value(answer.status.clone()))
        .col_expr(
            C::CancelAtPeriodEnd,
            Expr::value(answer.cancel_at_period_end),
        )
        .col_expr(C::CancelAt, Expr::value(answer.cancel_at))
        .col_expr(C::CanceledAt, Expr::value(answer.canceled_at))
        .col_expr(C::EndedAt, Expr::value(answer.ended_at))
        .col_expr(
            C::CurrentPeriodStart,
            Expr::value(answer.current_period_start.or(row.current_period_start)),
        )
        .col_expr(
            C::CurrentPeriodEnd,
            Expr::value(answer.current_period_end.or(row.current_period_end)),
        )
        .col_expr(
            C::PauseCollection,
            Expr::value(answer.pause_collection.clone()),
        )
        .col_expr(
            C::LatestInvoiceId,
            Expr::value(
                answer
                    .latest_invoice
                    .clone()
                    .or_else(|| row.latest_invoice_id.clone()),
            ),
        )
        .col_expr(C::LastEventCreated, Expr::value(now_s))
        .col_expr(C::UpdatedAt, Expr::value(now_ms()))
        .filter(C::Id.eq(row.id))
        // Not over a newer event's state …
        .filter(C::LastEventCreated.lte(now_s));
    if !ended {
        // … and an ended subscription stays ended.
        update = update.filter(C::Status.is_not_in(ENDED));
    }
    let n = update.exec(db).await?.rows_affected;
    if n == 0 {
        tracing::debug!(
            subscription = %row.stripe_subscription_id,
            "the local row already holds a newer state than Stripe's answer"
        );
    }
    Ok(())
}

/// Opens a Stripe customer portal session for the customer `stripe_id` of the company in the
/// mode of `scope`, as `actor`: the portal's short-lived URL.
pub async fn portal_session(
    b: Billing<'_>,
    scope: Scope,
    actor: &str,
    stripe_id: &str,
    return_url: &str,
) -> Result<BillingPortalSession, ActionError> {
    let row = find_customer(b.db, scope, stripe_id)
        .await?
        .ok_or(ActionError::CustomerNotFound)?;
    if row.deleted {
        return Err(ActionError::CustomerDeleted);
    }
    let key = secret_key(b, scope).await?;
    let session = b
        .stripe
        .create_billing_portal_session(
            &key,
            &CreateBillingPortalSession {
                customer: row.stripe_customer_id.clone(),
                return_url: Some(return_url.to_owned()),
                locale: None,
            },
            &new_id("paygate_portal"),
        )
        .await
        .map_err(ActionError::Stripe)?;
    paygate_tenant::audit::record(
        b.db,
        actor,
        Some(scope.company_pk()),
        "customer_portal.link_created",
        &row.stripe_customer_id,
        serde_json::json!({"livemode": scope.livemode(), "session": session.id}),
    )
    .await?;
    Ok(session)
}

/// Whether `u` is an absolute http(s) URL with a host.
pub fn is_http_url(u: &str) -> bool {
    let rest = u
        .strip_prefix("https://")
        .or_else(|| u.strip_prefix("http://"));
    matches!(rest, Some(r) if !r.is_empty() && !r.starts_with('/') && u.len() <= 2048 && !u.chars().any(char::is_whitespace))
}

// ---- The merchant API -------------------------------------------------------------------

/// `POST /api/v1/subscriptions/{id}/cancel` (the body may be left out: cancel now).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelIn {
    /// `true`: at the end of the current period; `false` (default): now.
    #[serde(default)]
    pub at_period_end: bool,
}

/// `POST /api/v1/subscriptions/{id}/resume` takes no parameters (an empty body or `{}`).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeIn {}

/// `POST /api/v1/customers/{id}/portal-sessions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortalSessionIn {
    /// Where the portal's "return" link leads: an http(s) URL (required).
    pub return_url: Option<String>,
}

/// The answer to `POST /api/v1/customers/{id}/portal-sessions`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PortalSessionOut {
    /// Stripe's short-lived customer portal URL, to send the customer to.
    pub url: String,
}

/// An optional JSON body: empty is `T::default()`; anything else must be `T` (400
/// `invalid_json` naming the problem).
fn optional_body<T: Default + serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("invalid JSON body: {e}")))
}

fn billing(state: &AdminState) -> Billing<'_> {
    Billing {
        db: &state.db,
        tenants: &state.tenants,
        stripe: &state.stripe,
    }
}

/// Cancels a subscription now, or at the end of its current period.
///
/// Of the key's company and mode only; the answer is the subscription as Stripe left it.
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions/{subscription_id}/cancel",
    tag = "merchant",
    params(("subscription_id" = String, Path, description = "Stripe's subscription (`sub_…`)")),
    request_body(content = Option<CancelIn>, description = "Optional: without a body, the subscription ends now"),
    responses(
        (status = 200, description = "The subscription, as Stripe left it", body = SubscriptionOut),
        (status = 400, description = "The body is not `{\"at_period_end\": bool}` (`invalid_json`)", body = ErrorBody),
        (status = 404, description = "No such subscription in the key's company and mode (`subscription_not_found`)", body = ErrorBody),
        (status = 409, description = "The subscription has ended (`subscription_ended`)", body = ErrorBody),
        (status = 422, description = "The company has no active profile of the key's mode (`active_profile_missing`)", body = ErrorBody),
        (status = 502, description = "Stripe refused (`stripe_error`)", body = ErrorBody),
    ),
)]
pub(crate) async fn cancel(
    state: web::Data<AdminState>,
    who: MerchantPrincipal,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let input: CancelIn = optional_body(&body)?;
    let action = if input.at_period_end {
        SubscriptionAction::CancelAtPeriodEnd
    } else {
        SubscriptionAction::CancelNow
    };
    let m = perform(billing(&state), who.scope, "merchant_api", &path, action).await?;
    Ok(HttpResponse::Ok().json(subscription_out(&m)))
}

/// Resumes a subscription: one set to cancel at the end of its period continues; a paused one
/// is resumed.
#[utoipa::path(
    post,
    path = "/api/v1/subscriptions/{subscription_id}/resume",
    tag = "merchant",
    params(("subscription_id" = String, Path, description = "Stripe's subscription (`sub_…`)")),
    request_body(content = Option<ResumeIn>, description = "Optional: no parameters"),
    responses(
        (status = 200, description = "The subscription, as Stripe left it", body = SubscriptionOut),
        (status = 400, description = "The body is not empty nor `{}` (`invalid_json`)", body = ErrorBody),
        (status = 404, description = "No such subscription in the key's company and mode (`subscription_not_found`)", body = ErrorBody),
        (status = 409, description = "Nothing to resume (`subscription_not_resumable`), or the subscription has ended (`subscription_ended`)", body = ErrorBody),
        (status = 422, description = "The company has no active profile of the key's mode (`active_profile_missing`)", body = ErrorBody),
        (status = 502, description = "Stripe refused (`stripe_error`)", body = ErrorBody),
    ),
)]
pub(crate) async fn resume(
    state: web::Data<AdminState>,
    who: MerchantPrincipal,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let ResumeIn {} = optional_body(&body)?;
    let m = perform(
        billing(&state),
        who.scope,
        "merchant_api",
        &path,
        SubscriptionAction::Resume,
    )
    .await?;
    Ok(HttpResponse::Ok().json(subscription_out(&m)))
}

/// Opens a Stripe customer portal session for a customer (to manage their subscriptions and
/// payment methods), returning its short-lived URL.
#[utoipa::path(
    post,
    path = "/api/v1/customers/{customer_id}/portal-sessions",
    tag = "merchant",
    params(("customer_id" = String, Path, description = "Stripe's customer (`cus_…`)")),
    request_body = PortalSessionIn,
    responses(
        (status = 201, description = "The portal session's URL", body = PortalSessionOut),
        (status = 400, description = "`return_url` is missing or not an http(s) URL (`validation_failed`), or the body is not JSON (`invalid_json`)", body = ErrorBody),
        (status = 404, description = "No such customer in the key's company and mode (`customer_not_found`)", body = ErrorBody),
        (status = 409, description = "The customer was deleted in Stripe (`customer_deleted`)", body = ErrorBody),
        (status = 422, description = "The company has no active profile of the key's mode (`active_profile_missing`)", body = ErrorBody),
        (status = 502, description = "Stripe refused, e.g. no portal configuration saved (`stripe_error`)", body = ErrorBody),
    ),
)]
pub(crate) async fn create_portal_session(
    state: web::Data<AdminState>,
    who: MerchantPrincipal,
    path: web::Path<String>,
    body: web::Json<PortalSessionIn>,
) -> Result<HttpResponse, ApiError> {
    let return_url = match body.into_inner().return_url {
        Some(u) if is_http_url(&u) => u,
        Some(_) => {
            return Err(ApiError::bad_request(
                "validation_failed",
                "return_url: must be an http(s) URL",
            )
            .with_field("return_url"));
        }
        None => {
            return Err(
                ApiError::bad_request("validation_failed", "return_url: is required")
                    .with_field("return_url"),
            );
        }
    };
    let session = portal_session(
        billing(&state),
        who.scope,
        "merchant_api",
        &path,
        &return_url,
    )
    .await?;
    Ok(HttpResponse::Created().json(PortalSessionOut { url: session.url }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_urls_are_absolute_http_urls() {
        assert!(is_http_url("https://shop.example/account"));
        assert!(is_http_url("http://127.0.0.1:8080/x"));
        for bad in [
            "",
            "https://",
            "ftp://x",
            "javascript:alert(1)",
            "/relative",
            "https:///x",
            "https://a b",
        ] {
            assert!(!is_http_url(bad), "{bad}");
        }
    }

    #[test]
    fn actions_round_trip_through_their_names() {
        for a in [
            SubscriptionAction::CancelNow,
            SubscriptionAction::CancelAtPeriodEnd,
            SubscriptionAction::Resume,
        ] {
            assert_eq!(SubscriptionAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(SubscriptionAction::parse("delete"), None);
    }
}
