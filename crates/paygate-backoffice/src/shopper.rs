//! The shopper's pages (seeds 002 and 004): the landing page Stripe redirects to after Checkout
//! (`success_url`), which also triggers fulfillment, and the status the page polls.
//!
//! Policy: the page never fails because fulfillment could not finish (Stripe slow, another
//! replica holding the claim): it shows the order's state, and the webhook completes the rest.
//! Pages are askama templates (`frontend-templates/shopper/`, auto-escaped, compiled in); the
//! page has no inline script and is served under a strict CSP. A session id Paygate has never
//! seen is recorded only if Stripe knows it; one Stripe does not know gets a 404 page and
//! changes nothing.
//!
//! Anyone can call these pages, so the Stripe calls they cause are bounded (issue 16):
//! - a session id must be `cs_test_…` or `cs_live_…` in Stripe's alphabet, at most 255 bytes,
//!   and a company id must be shaped as company creation allows. Otherwise the page answers
//!   400 (404 for the company) without a query or a Stripe call;
//! - a session that is already fulfilled in the database is answered from it;
//! - an id Stripe answered 404 for is remembered, and so is answered 404 without asking again;
//! - every other lookup spends from the company's budget for the session's mode
//!   (`PAYGATE_SHOPPER_LOOKUPS_PER_MINUTE`). When the budget is spent, the page shows what the
//!   database knows ("awaiting payment confirmation", 200) and the webhook completes the order;
//! - the client used here does not retry a 429, and a 429 empties the company's budget
//!   ([`crate::shopper_lookups`]).
//!
//! Shoppers have no session: these routes run outside the back office's guard. Their texts come
//! from the catalogue (`[shopper]`), in the order's language when the merchant gave one we speak
//! (`locale` of the Checkout Session), else in that of `Accept-Language` (English when it names
//! none of ours); the back office's remembered language is not theirs to use.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::ACCEPT_LANGUAGE;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use sea_orm::{ColumnTrait, QueryFilter};
use serde::{Deserialize, Serialize};

use paygate_db::entities::{checkout_session, company, order};
use paygate_db::{Mode, OrderStatus, Scope};
use paygate_router::fulfillment::{FulfillOutcome, fulfill_checkout};
use paygate_router::handlers::HandlerError;
use paygate_tenant::TenantError;
use paygate_web::ApiError;

use crate::BackofficeState;
use crate::i18n::Lang;

/// How long the landing page waits for fulfillment before it shows the order's state anyway.
const LANDING_FULFILLMENT_TIMEOUT: Duration = Duration::from_secs(8);

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const STATUS_JS: &str = include_str!("../../../frontend-templates/static/checkout-status.js");
const CSS: &str = include_str!("../../../frontend-templates/static/paygate.css");

/// Registers `/checkout/…`, `/static/checkout-status.js` and `/static/paygate.css` (outside the
/// guard: shoppers have no session).
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/checkout/{company_id}/return", web::get().to(landing))
        .route(
            "/checkout/{company_id}/sessions/{session_id}/status",
            web::get().to(status),
        )
        .route(
            "/static/checkout-status.js",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/javascript; charset=utf-8")
                    .body(STATUS_JS)
            }),
        )
        .route(
            "/static/paygate.css",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/css; charset=utf-8")
                    .body(CSS)
            }),
        );
}

/// The shopper's language from `Accept-Language` (quality values honoured), English by default.
fn language(req: &HttpRequest) -> Lang {
    req.headers()
        .get(ACCEPT_LANGUAGE)
        .and_then(|h| h.to_str().ok())
        .and_then(Lang::from_accept_language)
        .unwrap_or_default()
}

/// The order's language (the merchant's `locale`), when Paygate speaks it; else the request's.
fn order_language(req: &HttpRequest, o: Option<&order::Model>) -> Lang {
    o.and_then(|o| o.locale.as_deref())
        .and_then(Lang::parse)
        .unwrap_or_else(|| language(req))
}

/// What the shopper is told about an order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Confirmed,
    Pending,
    Failed,
}

impl State {
    fn of(status: &str) -> Self {
        use OrderStatus as S;
        match OrderStatus::parse(status) {
            Some(S::Paid | S::Fulfilled | S::PartiallyRefunded | S::Refunded) => State::Confirmed,
            Some(S::PaymentFailed | S::Canceled | S::Expired) => State::Failed,
            Some(S::Open | S::AwaitingPayment | S::Charging) | None => State::Pending,
        }
    }

    /// `confirmed`, `pending` or `failed` (the page's CSS class, the status's `state`).
    fn as_str(self) -> &'static str {
        match self {
            State::Confirmed => "confirmed",
            State::Pending => "pending",
            State::Failed => "failed",
        }
    }

    /// Seed 004's message for the state, in `lang`.
    fn message(self, lang: Lang) -> &'static str {
        lang.t(match self {
            State::Confirmed => "shopper.confirmed",
            State::Pending => "shopper.pending",
            State::Failed => "shopper.failed",
        })
    }
}

/// `shopper/return.html`.
#[derive(Template)]
#[template(path = "shopper/return.html")]
struct ReturnPage<'a> {
    lang: &'a str,
    title: &'a str,
    state: &'a str,
    status_url: &'a str,
    final_message: &'a str,
    message: &'a str,
    order_label: &'a str,
    order_id: Option<&'a str>,
    back: &'a str,
    return_url: Option<&'a str>,
}

/// `shopper/unknown.html`.
#[derive(Template)]
#[template(path = "shopper/unknown.html")]
struct UnknownPage<'a> {
    lang: &'a str,
    title: &'a str,
    message: &'a str,
}

fn html(status: StatusCode, lang: Lang, page: &impl Template) -> Result<HttpResponse, ApiError> {
    let body = page.render().map_err(ApiError::internal)?;
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("Content-Language", lang.code()))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(body))
}

/// The longest session id accepted (Stripe's documented limit for object ids).
const MAX_SESSION_ID_LEN: usize = 255;

/// The mode of a well-formed Checkout Session id: `cs_test_` or `cs_live_`, then at least one
/// character of Stripe's id alphabet (and `_`), at most [`MAX_SESSION_ID_LEN`] bytes in all.
/// `None` for anything else; such an id is never looked up.
fn session_mode(s: &str) -> Option<Mode> {
    let (mode, rest) = if let Some(rest) = s.strip_prefix("cs_test_") {
        (Mode::Test, rest)
    } else if let Some(rest) = s.strip_prefix("cs_live_") {
        (Mode::Live, rest)
    } else {
        return None;
    };
    (!rest.is_empty()
        && s.len() <= MAX_SESSION_ID_LEN
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    .then_some(mode)
}

/// The company of the path. An id no company can have is 404 without a query.
async fn company_of(state: &BackofficeState, company_id: &str) -> Result<company::Model, ApiError> {
    if !paygate_tenant::validate::is_company_id(company_id) {
        return Err(TenantError::NotFound("company").into());
    }
    Ok(state.tenants.company(company_id).await?)
}

/// `?session_id=cs_…`.
#[derive(Debug, Deserialize)]
pub struct ReturnQuery {
    session_id: Option<String>,
}

/// The status the landing page polls.
#[derive(Debug, Serialize)]
pub struct SessionStatusOut {
    order_id: String,
    status: String,
    /// `confirmed`, `pending` or `failed`.
    state: &'static str,
    /// Seed 004's message for the state, in the shopper's language.
    message: &'static str,
}

/// The scope of a well-formed session id (see [`session_mode`]): the mode its prefix names.
fn session_scope(company: &company::Model, mode: Mode) -> Scope {
    company.scope(Some(mode))
}

async fn find(
    state: &BackofficeState,
    scope: Scope,
    session_id: &str,
) -> Result<Option<(checkout_session::Model, order::Model)>, ApiError> {
    let Some(s) = scope
        .checkout_sessions()
        .filter(checkout_session::Column::SessionId.eq(session_id))
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    let o = scope
        .orders()
        .filter(order::Column::Id.eq(s.order_id.clone()))
        .one(&state.db)
        .await?;
    Ok(o.map(|o| (s, o)))
}

fn unknown_page(lang: Lang) -> Result<HttpResponse, ApiError> {
    html(
        StatusCode::NOT_FOUND,
        lang,
        &UnknownPage {
            lang: lang.code(),
            title: lang.t("shopper.unknown_title"),
            message: lang.t("shopper.unknown"),
        },
    )
}

async fn landing(
    req: HttpRequest,
    state: web::Data<BackofficeState>,
    path: web::Path<String>,
    q: web::Query<ReturnQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = company_of(&state, &path).await?;
    let (session_id, mode) = q
        .session_id
        .as_deref()
        .and_then(|s| Some((s, session_mode(s)?)))
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_session_id",
                "session_id=cs_test_… or cs_live_… is required",
            )
        })?;
    let lang = language(&req);
    let scope = session_scope(&company, mode);
    let (pk, livemode) = (scope.company_pk(), scope.livemode());
    let lookups = &state.shopper_lookups;
    let mut found = find(&state, scope, session_id).await?;
    let ask_stripe = match &found {
        Some((s, _)) if s.fulfillment_status == "fulfilled" => false,
        Some(_) => lookups.try_take(pk, livemode),
        None if lookups.is_unknown(pk, livemode, session_id) => return unknown_page(lang),
        None => lookups.try_take(pk, livemode),
    };
    if ask_stripe {
        // Fulfill now if the payment is through; whatever happens, show the order's state.
        let attempt = tokio::time::timeout(
            LANDING_FULFILLMENT_TIMEOUT,
            fulfill_checkout(
                &state.db,
                &state.tenants,
                &state.stripe.without_429_retries(),
                scope,
                session_id,
                "landing",
            ),
        )
        .await;
        match &attempt {
            Ok(Ok(FulfillOutcome::Unknown)) => {
                lookups.remember_unknown(pk, livemode, session_id);
                return unknown_page(lang);
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                if let HandlerError::Stripe(se) = e
                    && se.status() == Some(429)
                {
                    lookups.pause(pk, livemode);
                }
                tracing::warn!(company_id = %company.company_id, session_id, error = %paygate_web::error_chain(e), "landing-page fulfillment did not complete");
            }
            Err(_) => {
                tracing::warn!(company_id = %company.company_id, session_id, "landing-page fulfillment timed out");
            }
        }
        found = find(&state, scope, session_id).await?;
    } else if found
        .as_ref()
        .is_none_or(|(s, _)| s.fulfillment_status != "fulfilled")
    {
        tracing::debug!(company_id = %company.company_id, session_id, "shopper lookup budget spent; the page answers from the database");
    }
    let lang = order_language(&req, found.as_ref().map(|(_, o)| o));
    let (status, order_id, return_url) = match &found {
        Some((_, o)) => (
            o.status.as_str(),
            Some(o.id.as_str()),
            o.return_url.as_deref(),
        ),
        None => ("open", None, None),
    };
    let st = State::of(status);
    let status_url = format!(
        "/checkout/{}/sessions/{}/status",
        company.company_id, session_id
    );
    html(
        StatusCode::OK,
        lang,
        &ReturnPage {
            lang: lang.code(),
            title: lang.t("shopper.title"),
            state: st.as_str(),
            status_url: &status_url,
            final_message: lang.t("shopper.final"),
            message: st.message(lang),
            order_label: lang.t("shopper.order"),
            order_id,
            back: lang.t("shopper.back"),
            // Only web links (the merchant API accepts nothing else; older rows are re-checked).
            return_url: return_url
                .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        },
    )
}

async fn status(
    req: HttpRequest,
    state: web::Data<BackofficeState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, session_id) = path.into_inner();
    let not_found =
        || ApiError::not_found("checkout_session_not_found", "no such checkout session");
    let company = company_of(&state, &company_id).await?;
    let mode = session_mode(&session_id).ok_or_else(not_found)?;
    let (_, o) = find(&state, session_scope(&company, mode), &session_id)
        .await?
        .ok_or_else(not_found)?;
    let lang = order_language(&req, Some(&o));
    let st = State::of(&o.status);
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(SessionStatusOut {
            order_id: o.id,
            status: o.status,
            state: st.as_str(),
            message: st.message(lang),
        }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seed 004's messages, word for word, in every language.
    #[test]
    fn seed_004_messages_by_state_and_language() {
        assert_eq!(
            State::of("fulfilled").message(Lang::En),
            "Payment confirmed, order complete."
        );
        assert_eq!(
            State::of("expired").message(Lang::It),
            "Pagamento non riuscito, l'ordine non è stato elaborato."
        );
        assert_eq!(
            State::of("awaiting_payment").message(Lang::De),
            "Bestellung erhalten, die Zahlungsbestätigung steht noch aus."
        );
        assert_eq!(State::of("no such status"), State::Pending);
    }
}
