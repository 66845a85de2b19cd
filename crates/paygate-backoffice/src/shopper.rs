//! The shopper's pages (seeds 002 and 004): the landing page Stripe redirects to after Checkout
//! (`success_url`), which also triggers fulfillment, the same page for an order paid with a
//! legacy Source (the Source's `redirect[return_url]`), and the status the page polls.
//!
//! `GET /checkout/<companyID>/return` answers a shopper with a localized HTML page for every
//! outcome, never with JSON (the JSON is the status the page polls):
//!
//! | case | status | page |
//! | --- | --- | --- |
//! | unknown company | 404 | "shop not found" |
//! | neither `session_id` nor `source`, or a malformed one | 400 | "this link is incomplete" |
//! | a session Stripe does not know, a Source no order uses | 404 | "payment not found" |
//! | Stripe could not be asked (unreachable, timed out, 429, lookup budget spent) and the database does not know the outcome | 200 | "we could not check your payment yet": the page reloads itself (`<meta http-equiv="refresh">`, `Retry-After`) and says so; it never says "order received" |
//! | paid / processing / failed / expired or cancelled | 200 | the order's state |
//! | anything else going wrong (the database) | its 5xx | "please reload in a moment" |
//!
//! "Could not check yet" is a 200, not a 503: it is a normal step for the shopper (the
//! webhook usually completes the order seconds later), and a 503 would make proxies and
//! browsers treat the merchant's landing page as down. `Retry-After` still says when to ask.
//!
//! An order's page names the shop (the company's name), the amount in the page's language,
//! Paygate's order id and the merchant's reference (`client_reference_id`) when there is one,
//! and links back to the shop when the order has a `return_url` (Paygate keeps no other address
//! of the shop: without one the page has no link). A failed, expired or cancelled payment's page
//! invites the shopper back to the shop to pay again, at the session's `cancel_url` when the
//! order has one (else at `return_url`). The shop's name is in the page's `<title>` too. The
//! page promises an e-mail only when one will be sent: the company has shopper e-mails on, a
//! mail server is configured, the order has the shopper's address and is waiting for its
//! payment (only such orders are e-mailed).
//!
//! Source orders: the merchant sets the Source's `redirect[return_url]` to
//! `…/checkout/<companyID>/return`; Stripe appends `source=src_…&livemode=…&client_secret=…`.
//! The page is answered from the database alone (the webhooks move the order: `source.chargeable`
//! charges it, `charge.succeeded` / `charge.failed` end it) and polls
//! `/checkout/<companyID>/sources/<src>/status` at most 10 times, as seed 004 recommends. It
//! causes no Stripe call. `livemode` picks the mode (the company's environment without it).
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
//!   database knows when that is an outcome, else "could not check yet" (200), and the webhook
//!   completes the order;
//! - the client used here does not retry a 429, and a 429 empties the company's budget
//!   ([`crate::shopper_lookups`]).
//!
//! Shoppers have no session: these routes run outside the back office's guard. Their texts come
//! from the catalogue (`[shopper]`), in the order's language when the merchant gave one we speak
//! (`locale` of the Checkout Session or the Source order), else in that of `Accept-Language`
//! (English when it names none of ours); the back office's remembered language is not theirs to
//! use.

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

/// When a page that could not check the payment reloads itself (seconds).
const RECHECK_AFTER_SECS: u64 = 10;

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
            "/checkout/{company_id}/sources/{source_id}/status",
            web::get().to(source_status),
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
    /// Expired or cancelled: nothing was paid.
    Expired,
}

impl State {
    fn of(status: &str) -> Self {
        use OrderStatus as S;
        match OrderStatus::parse(status) {
            Some(S::Paid | S::Fulfilled | S::PartiallyRefunded | S::Refunded) => State::Confirmed,
            Some(S::PaymentFailed) => State::Failed,
            Some(S::Canceled | S::Expired) => State::Expired,
            Some(S::Open | S::AwaitingPayment | S::Charging) | None => State::Pending,
        }
    }

    /// `confirmed`, `pending` or `failed` (the page's CSS class, the status's `state`).
    fn as_str(self) -> &'static str {
        match self {
            State::Confirmed => "confirmed",
            State::Pending => "pending",
            State::Failed | State::Expired => "failed",
        }
    }

    /// Seed 004's message for the state, in `lang`.
    fn message(self, lang: Lang) -> &'static str {
        lang.t(match self {
            State::Confirmed => "shopper.confirmed",
            State::Pending => "shopper.pending",
            State::Failed => "shopper.failed",
            State::Expired => "shopper.expired",
        })
    }

    /// Whether the shopper is invited back to the shop to pay again.
    fn pay_again(self) -> bool {
        matches!(self, State::Failed | State::Expired)
    }
}

/// `shopper/return.html`.
#[derive(Template)]
#[template(path = "shopper/return.html")]
struct ReturnPage<'a> {
    lang: &'a str,
    title: &'a str,
    shop: &'a str,
    /// `confirmed`, `pending`, `failed` or `unchecked` (the script polls only `pending`).
    state: &'a str,
    status_url: &'a str,
    final_message: &'a str,
    message: &'a str,
    /// A second sentence: what happens next (e-mail, pay again, reload).
    next: Option<&'a str>,
    amount_label: &'a str,
    amount: Option<String>,
    order_label: &'a str,
    order_id: Option<&'a str>,
    reference_label: &'a str,
    reference: Option<&'a str>,
    back: &'a str,
    return_url: Option<&'a str>,
    /// Seconds after which the page reloads itself (the payment could not be checked).
    refresh: Option<u64>,
}

/// `shopper/unknown.html`: a page with no order (unknown shop, session or payment; an
/// incomplete link; an error).
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

/// The longest session or Source id accepted (Stripe's documented limit for object ids).
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

/// Whether `s` is shaped as a Source id: `src_`, then Stripe's id alphabet, at most
/// [`MAX_SESSION_ID_LEN`] bytes.
fn is_source_id(s: &str) -> bool {
    s.strip_prefix("src_").is_some_and(|rest| {
        !rest.is_empty()
            && s.len() <= MAX_SESSION_ID_LEN
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// The mode Stripe's `livemode` redirect parameter names; `None` for none or anything else.
fn livemode_param(v: Option<&str>) -> Option<Mode> {
    match v {
        Some("true") => Some(Mode::Live),
        Some("false") => Some(Mode::Test),
        _ => None,
    }
}

/// The company of the path. An id no company can have is 404 without a query.
async fn company_of(state: &BackofficeState, company_id: &str) -> Result<company::Model, ApiError> {
    if !paygate_tenant::validate::is_company_id(company_id) {
        return Err(TenantError::NotFound("company").into());
    }
    Ok(state.tenants.company(company_id).await?)
}

/// The company of the path, `None` when there is none.
async fn known_company(
    state: &BackofficeState,
    company_id: &str,
) -> Result<Option<company::Model>, ApiError> {
    if !paygate_tenant::validate::is_company_id(company_id) {
        return Ok(None);
    }
    match state.tenants.company(company_id).await {
        Ok(c) => Ok(Some(c)),
        Err(TenantError::NotFound(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// `?session_id=cs_…` (Checkout), or `?source=src_…&livemode=…` (a Source's redirect; Stripe
/// adds `client_secret` too, which is not needed).
#[derive(Debug, Deserialize)]
pub struct ReturnQuery {
    session_id: Option<String>,
    source: Option<String>,
    livemode: Option<String>,
}

/// `?livemode=true|false` on a Source's status.
#[derive(Debug, Deserialize)]
pub struct LivemodeQuery {
    livemode: Option<String>,
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

/// The order paid with Source `source_id`, in `scope`.
async fn find_source_order(
    state: &BackofficeState,
    scope: Scope,
    source_id: &str,
) -> Result<Option<order::Model>, ApiError> {
    Ok(scope
        .orders()
        .filter(order::Column::SourceId.eq(source_id))
        .one(&state.db)
        .await?)
}

/// A page without an order: `title` and `message` are catalogue keys.
fn plain_page(
    status: StatusCode,
    lang: Lang,
    title: &str,
    message: &str,
) -> Result<HttpResponse, ApiError> {
    html(
        status,
        lang,
        &UnknownPage {
            lang: lang.code(),
            title: lang.t(title),
            message: lang.t(message),
        },
    )
}

fn unknown_page(lang: Lang) -> Result<HttpResponse, ApiError> {
    plain_page(
        StatusCode::NOT_FOUND,
        lang,
        "shopper.unknown_title",
        "shopper.unknown",
    )
}

/// Whether an e-mail will tell the shopper how the order ended: the company has shopper
/// e-mails on, a mail server is configured, the order has the shopper's address and waits for
/// its payment (the e-mail follows the move from waiting to paid or failed).
async fn email_will_follow(
    state: &BackofficeState,
    company: &company::Model,
    o: &order::Model,
) -> Result<bool, ApiError> {
    let waiting = matches!(
        OrderStatus::parse(&o.status),
        Some(OrderStatus::AwaitingPayment | OrderStatus::Charging)
    );
    if !waiting || o.customer_email.is_none() || !state.notify.smtp_configured() {
        return Ok(false);
    }
    Ok(state.notify.settings(company.id).await?.shopper_emails)
}

/// The page of an order (`Some`), or of a payment that could not be checked yet (`None`).
async fn order_page(
    req: &HttpRequest,
    state: &BackofficeState,
    company: &company::Model,
    found: Option<&order::Model>,
    checked: bool,
    status_url: &str,
) -> Result<HttpResponse, ApiError> {
    let lang = order_language(req, found);
    let st = found.map(|o| State::of(&o.status));
    // The database's outcome stands; a wait is told as such only once Stripe was asked.
    let unchecked = st.is_none() || (!checked && st == Some(State::Pending));
    let email = match found {
        Some(o) if !unchecked && st == Some(State::Pending) => {
            email_will_follow(state, company, o).await?
        }
        _ => false,
    };
    let (state_class, message, next) = match st {
        _ if unchecked => (
            "unchecked",
            lang.t("shopper.unchecked"),
            Some(lang.t("shopper.unchecked_next")),
        ),
        Some(s) if s.pay_again() => (
            s.as_str(),
            s.message(lang),
            Some(lang.t("shopper.pay_again_hint")),
        ),
        Some(State::Pending) if email => (
            "pending",
            State::Pending.message(lang),
            Some(lang.t("shopper.pending_email")),
        ),
        Some(s) => (s.as_str(), s.message(lang), None),
        None => ("unchecked", lang.t("shopper.unchecked"), None),
    };
    // Only web links (the merchant API accepts nothing else; older rows are re-checked).
    let web = |u: &&str| u.starts_with("https://") || u.starts_with("http://");
    // A payment to make again goes back to the session's `cancel_url` (the shop's page before
    // Checkout) when there is one; otherwise, and for every other state, to `return_url`.
    let cancel_url = found
        .filter(|_| st.is_some_and(State::pay_again))
        .and_then(|o| o.cancel_url.as_deref())
        .filter(web);
    let return_url = cancel_url.or_else(|| found.and_then(|o| o.return_url.as_deref()).filter(web));
    let amount = found.and_then(|o| Some(lang.money(o.amount?, o.currency.as_deref()?)));
    let back = if st.is_some_and(State::pay_again) {
        lang.t("shopper.pay_again")
    } else {
        lang.t("shopper.back")
    };
    let mut resp = html(
        StatusCode::OK,
        lang,
        &ReturnPage {
            lang: lang.code(),
            title: lang.t(if unchecked {
                "shopper.unchecked_title"
            } else {
                "shopper.title"
            }),
            shop: &company.name,
            state: state_class,
            status_url,
            final_message: lang.t(if email {
                "shopper.final"
            } else {
                "shopper.final_no_email"
            }),
            message,
            next,
            amount_label: lang.t("shopper.amount"),
            amount,
            order_label: lang.t("shopper.order"),
            order_id: found.map(|o| o.id.as_str()),
            reference_label: lang.t("shopper.reference"),
            reference: found.and_then(|o| o.client_reference_id.as_deref()),
            back,
            return_url,
            refresh: unchecked.then_some(RECHECK_AFTER_SECS),
        },
    )?;
    if unchecked {
        resp.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from(RECHECK_AFTER_SECS),
        );
    }
    Ok(resp)
}

/// `GET /checkout/{company_id}/return`: always a page, never JSON (see the module's table).
async fn landing(
    req: HttpRequest,
    state: web::Data<BackofficeState>,
    path: web::Path<String>,
    q: web::Query<ReturnQuery>,
) -> HttpResponse {
    match landing_page(&req, &state, &path, &q).await {
        Ok(r) => r,
        Err(e) => {
            let lang = language(&req);
            tracing::warn!(company_id = %path.as_str(), code = e.code(), "the shopper's page could not be shown");
            let status = if e.status().is_server_error() {
                e.status()
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            plain_page(status, lang, "shopper.error_title", "shopper.error")
                .unwrap_or_else(|_| HttpResponse::build(status).finish())
        }
    }
}

async fn landing_page(
    req: &HttpRequest,
    state: &BackofficeState,
    company_id: &str,
    q: &ReturnQuery,
) -> Result<HttpResponse, ApiError> {
    let lang = language(req);
    let Some(company) = known_company(state, company_id).await? else {
        return plain_page(
            StatusCode::NOT_FOUND,
            lang,
            "shopper.unknown_shop_title",
            "shopper.unknown_shop",
        );
    };
    let incomplete = || {
        plain_page(
            StatusCode::BAD_REQUEST,
            lang,
            "shopper.incomplete_title",
            "shopper.incomplete",
        )
    };
    match (q.session_id.as_deref(), q.source.as_deref()) {
        (Some(sid), _) => match session_mode(sid) {
            Some(mode) => session_page(req, state, &company, sid, mode).await,
            None => incomplete(),
        },
        (None, Some(src)) if is_source_id(src) => {
            let mode = livemode_param(q.livemode.as_deref());
            let scope = company.scope(mode);
            let Some(o) = find_source_order(state, scope, src).await? else {
                return unknown_page(lang);
            };
            let status_url = format!(
                "/checkout/{}/sources/{}/status?livemode={}",
                company.company_id,
                src,
                scope.livemode()
            );
            order_page(req, state, &company, Some(&o), true, &status_url).await
        }
        _ => incomplete(),
    }
}

/// The page of Checkout Session `session_id` (well-formed, of `mode`).
async fn session_page(
    req: &HttpRequest,
    state: &BackofficeState,
    company: &company::Model,
    session_id: &str,
    mode: Mode,
) -> Result<HttpResponse, ApiError> {
    let lang = language(req);
    let scope = session_scope(company, mode);
    let (pk, livemode) = (scope.company_pk(), scope.livemode());
    let lookups = &state.shopper_lookups;
    let mut found = find(state, scope, session_id).await?;
    let ask_stripe = match &found {
        Some((s, _)) if s.fulfillment_status == "fulfilled" => false,
        Some(_) => lookups.try_take(pk, livemode),
        None if lookups.is_unknown(pk, livemode, session_id) => return unknown_page(lang),
        None => lookups.try_take(pk, livemode),
    };
    let mut checked = false;
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
            Ok(Ok(_)) => checked = true,
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
        found = find(state, scope, session_id).await?;
    } else if found
        .as_ref()
        .is_none_or(|(s, _)| s.fulfillment_status != "fulfilled")
    {
        tracing::debug!(company_id = %company.company_id, session_id, "shopper lookup budget spent; the page answers from the database");
    }
    let status_url = format!(
        "/checkout/{}/sessions/{}/status",
        company.company_id, session_id
    );
    order_page(
        req,
        state,
        company,
        found.as_ref().map(|(_, o)| o),
        checked,
        &status_url,
    )
    .await
}

fn status_out(req: &HttpRequest, o: order::Model) -> HttpResponse {
    let lang = order_language(req, Some(&o));
    let st = State::of(&o.status);
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(SessionStatusOut {
            order_id: o.id,
            status: o.status,
            state: st.as_str(),
            message: st.message(lang),
        })
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
    Ok(status_out(&req, o))
}

/// The status of the order paid with a Source, in the mode `livemode` names (the company's
/// environment without it).
async fn source_status(
    req: HttpRequest,
    state: web::Data<BackofficeState>,
    path: web::Path<(String, String)>,
    q: web::Query<LivemodeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, source_id) = path.into_inner();
    let not_found = || ApiError::not_found("order_not_found", "no order uses this source");
    if !is_source_id(&source_id) {
        return Err(not_found());
    }
    let company = company_of(&state, &company_id).await?;
    let scope = company.scope(livemode_param(q.livemode.as_deref()));
    let o = find_source_order(&state, scope, &source_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(status_out(&req, o))
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
            State::of("payment_failed").message(Lang::It),
            "Pagamento non riuscito, l'ordine non è stato elaborato."
        );
        assert_eq!(
            State::of("awaiting_payment").message(Lang::De),
            "Bestellung erhalten, die Zahlungsbestätigung steht noch aus."
        );
        assert_eq!(State::of("no such status"), State::Pending);
        assert_eq!(State::of("expired"), State::Expired);
        assert_eq!(State::of("canceled").as_str(), "failed");
    }

    #[test]
    fn source_ids_and_livemode() {
        assert!(is_source_id("src_1AbC"));
        assert!(!is_source_id("src_"));
        assert!(!is_source_id("src_a-b"));
        assert!(!is_source_id("cs_test_a"));
        assert_eq!(livemode_param(Some("true")), Some(Mode::Live));
        assert_eq!(livemode_param(Some("false")), Some(Mode::Test));
        assert_eq!(livemode_param(Some("yes")), None);
    }
}
