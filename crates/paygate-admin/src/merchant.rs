//! The merchant API under `/api/v1`, for the company's own servers, authenticated with the
//! company's API key (`Authorization: Bearer pgk_test_…` / `pgk_live_…`).
//!
//! Policy: a key reaches only its own company *and its own mode*: another company's order, or
//! an order of the other mode, is simply "not found"; `?mode=` naming the other mode is 403.
//! Orders are created in the company's environment, and only with a key of that mode (a test
//! key never creates, reads or changes anything live).

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, dev::Payload, web};
use sea_orm::{ActiveModelTrait, ColumnTrait, QueryFilter, Set, TransactionTrait};
use serde::Deserialize;

use paygate_db::entities::{checkout_session, company, order};
use paygate_db::{Mode, Scope, new_id, now_ms};
use paygate_stripe::{CreateCheckoutSession, LineItemParam, PriceData, ProductData};
use paygate_tenant::api_keys::{self, KeyCheck};
use paygate_web::ApiError;

use crate::domain::{OrderOut, order_out};
use crate::error_body::ErrorBody;
use crate::{AdminState, List, ModeQuery};

/// The company behind a valid API key, and the key's mode.
#[derive(Clone, Debug)]
pub struct MerchantPrincipal {
    pub company: company::Model,
    /// The company in the key's mode: everything the key may reach.
    pub scope: Scope,
}

/// A key's `scope`, after checking the mode a request may name: only the key's own (403
/// `mode_not_allowed` otherwise).
pub(crate) fn key_scope(scope: Scope, asked: Option<Mode>) -> Result<Scope, ApiError> {
    match asked {
        Some(m) if m != scope.mode() => {
            let key = scope.mode();
            Err(ApiError::forbidden(
                "mode_not_allowed",
                format!("this is a {key} key: it reads and changes {key} data only"),
            ))
        }
        _ => Ok(scope),
    }
}

impl MerchantPrincipal {
    /// The key's scope, after checking a `?mode=` the request may name.
    pub fn scope_for(&self, asked: Option<Mode>) -> Result<Scope, ApiError> {
        key_scope(self.scope, asked)
    }

    /// The key's scope, when it is also the company's environment (where new orders go).
    fn scope_to_create(&self) -> Result<Scope, ApiError> {
        let env = self.company.environment_mode();
        if env != self.scope.mode() {
            return Err(ApiError::conflict(
                "environment_mismatch",
                format!(
                    "the company works in {env} mode: orders are created with a {env} key, this is a {} key",
                    self.scope.mode()
                ),
            ));
        }
        Ok(self.scope)
    }
}

/// The API key a request presents (`Authorization: Bearer pgk_…`), if any.
fn presented_key(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|k| k.trim().to_owned())
}

/// The company and mode of the request's API key: 401 without a valid key, 403 for a suspended
/// company. The idempotency layer authenticates a `POST` before its handler runs and leaves the
/// principal in the request's extensions, where the extractor finds it (one lookup per request).
pub(crate) async fn authenticate(req: &HttpRequest) -> Result<MerchantPrincipal, ApiError> {
    if let Some(p) = req.extensions().get::<MerchantPrincipal>() {
        return Ok(p.clone());
    }
    let state = req
        .app_data::<web::Data<AdminState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(std::io::Error::other("state missing")))?;
    let key = presented_key(req)
        .filter(|k| k.starts_with(api_keys::KEY_PREFIX))
        .ok_or_else(|| {
            ApiError::unauthorized("an API key is required: Authorization: Bearer pgk_…")
        })?;
    let principal = match api_keys::check_key(&state.db, &key).await? {
        KeyCheck::Valid { company, scope } => MerchantPrincipal { company, scope },
        KeyCheck::Suspended => {
            return Err(ApiError::forbidden(
                "company_suspended",
                "the company is suspended",
            ));
        }
        KeyCheck::Unknown => {
            return Err(ApiError::unauthorized("the API key is unknown or revoked"));
        }
    };
    req.extensions_mut().insert(principal.clone());
    Ok(principal)
}

impl FromRequest for MerchantPrincipal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { authenticate(&req).await })
    }
}

/// Product data of an ad-hoc price.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProductDataIn {
    name: String,
    description: Option<String>,
}

/// An ad-hoc price.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PriceDataIn {
    /// Lowercase ISO code: `eur`.
    currency: String,
    /// In the currency's smallest unit, ≥ 0.
    unit_amount: i64,
    product_data: ProductDataIn,
}

/// A line item: a Stripe price id, or price data.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LineItemIn {
    /// A Stripe price id (`price_…`); or `price_data`.
    price: Option<String>,
    price_data: Option<PriceDataIn>,
    /// 1 to 10000 (default 1).
    quantity: Option<i64>,
}

/// 409 `stripe_disabled` while the company's Stripe payment method is off: no new order of
/// any kind (Checkout Sessions, Source orders).
fn stripe_switched_on(company: &company::Model) -> Result<(), ApiError> {
    if company.stripe_enabled {
        return Ok(());
    }
    Err(ApiError::conflict(
        "stripe_disabled",
        "the Stripe payment method is disabled for this company; an operator or the company's admin turns it on",
    ))
}

/// `POST /api/v1/checkout-sessions`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutSessionIn {
    line_items: Vec<LineItemIn>,
    /// Stripe's Checkout mode: `payment` (default), `subscription` or `setup`.
    mode: Option<String>,
    customer_email: Option<String>,
    client_reference_id: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    /// The merchant's own page the shopper returns to in the end. With `ui_mode: embedded`
    /// required, and it must contain `{CHECKOUT_SESSION_ID}` (Stripe sends the shopper there).
    return_url: Option<String>,
    /// Hosted Checkout only: where Stripe sends a shopper who cancels.
    cancel_url: Option<String>,
    /// The shopper's language: one of Stripe's Checkout locales (`auto`, the default, lets
    /// Stripe follow the browser; `it`, `de`, `en`, `fr`, `pt-BR` …). Passed to Stripe and kept
    /// on the order: the shopper's e-mails and landing page speak it when Paygate does
    /// (English, Italian, German).
    locale: Option<String>,
    /// `hosted` (the default): Stripe's page at `url`. `embedded`: Checkout mounted in the
    /// merchant's page with the answer's `client_secret`; needs `return_url`, takes no
    /// `cancel_url`.
    ui_mode: Option<String>,
    /// Not accepted: hosted Checkout returns the shopper to Paygate's landing page (which
    /// completes the order and links to `return_url`), embedded Checkout to `return_url`.
    success_url: Option<String>,
}

/// Stripe's Checkout locales.
pub const CHECKOUT_LOCALES: &[&str] = &[
    "auto", "bg", "cs", "da", "de", "el", "en", "en-GB", "es", "es-419", "et", "fi", "fil", "fr",
    "fr-CA", "hr", "hu", "id", "it", "ja", "ko", "lt", "lv", "ms", "mt", "nb", "nl", "pl", "pt",
    "pt-BR", "ro", "ru", "sk", "sl", "sv", "th", "tr", "vi", "zh", "zh-HK", "zh-TW",
];

/// The placeholder Stripe replaces with the session's id in an embedded Checkout's `return_url`.
const SESSION_ID_PLACEHOLDER: &str = "{CHECKOUT_SESSION_ID}";

/// Checks `locale`, `ui_mode` and the URLs together: every problem at once, in one 400
/// `validation_failed` (the message lists them, `field` names the first). `Ok(true)` for
/// embedded Checkout.
fn checkout_options(input: &CheckoutSessionIn) -> Result<bool, ApiError> {
    let mut problems: Vec<(&'static str, String)> = Vec::new();
    if let Some(l) = &input.locale
        && !CHECKOUT_LOCALES.contains(&l.as_str())
    {
        problems.push((
            "locale",
            format!(
                "must be one of Stripe's Checkout locales: {}",
                CHECKOUT_LOCALES.join(", ")
            ),
        ));
    }
    let embedded = match input.ui_mode.as_deref() {
        None | Some("hosted") => false,
        Some("embedded") => true,
        Some(_) => {
            problems.push(("ui_mode", "must be hosted or embedded".into()));
            false
        }
    };
    if input.success_url.is_some() {
        problems.push((
            "success_url",
            if embedded {
                "not allowed with ui_mode embedded: Stripe sends the shopper to return_url".into()
            } else {
                "not accepted: Stripe sends the shopper to Paygate's landing page, which links to return_url".into()
            },
        ));
    }
    if embedded {
        if input.cancel_url.is_some() {
            problems.push((
                "cancel_url",
                "not allowed with ui_mode embedded: the shopper stays on the merchant's page"
                    .into(),
            ));
        }
        let web = |u: &str| u.starts_with("https://") || u.starts_with("http://");
        match input.return_url.as_deref() {
            None => problems.push(("return_url", "required with ui_mode embedded".into())),
            Some(u) if !web(u) || !u.contains(SESSION_ID_PLACEHOLDER) => problems.push((
                "return_url",
                format!("with ui_mode embedded, must be an http(s) URL containing {SESSION_ID_PLACEHOLDER}"),
            )),
            Some(_) => {}
        }
    }
    match problems.first() {
        None => Ok(embedded),
        Some((field, _)) => {
            let message = problems
                .iter()
                .map(|(f, m)| format!("{f}: {m}"))
                .collect::<Vec<_>>()
                .join("; ");
            Err(ApiError::bad_request("validation_failed", message).with_field(*field))
        }
    }
}

fn invalid(field: &'static str, msg: &str) -> ApiError {
    ApiError::unprocessable("validation_failed", format!("{field}: {msg}")).with_field(field)
}

fn check_url(field: &'static str, u: &Option<String>) -> Result<(), ApiError> {
    match u {
        Some(u) if !(u.starts_with("https://") || u.starts_with("http://")) => {
            Err(invalid(field, "must be an http(s) URL"))
        }
        _ => Ok(()),
    }
}

fn currency_ok(c: &str) -> bool {
    c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase())
}

/// In `subscription` mode a session sells recurring prices: every line item names a Stripe
/// price (`price_…`) with a quantity; ad-hoc items (`price_data`) are refused. Every problem of
/// the body is named at once: 400 `validation_failed`, the message listing them (`field` names
/// the first).
fn check_subscription_body(input: &CheckoutSessionIn) -> Result<(), ApiError> {
    let mut problems: Vec<(String, String)> = Vec::new();
    if input.line_items.is_empty() {
        problems.push((
            "line_items".into(),
            "at least one line item with a recurring price is required".into(),
        ));
    }
    for (i, li) in input.line_items.iter().enumerate() {
        let at = format!("line_items[{i}]");
        if li.price_data.is_some() {
            problems.push((
                format!("{at}.price_data"),
                "subscription mode takes a recurring Stripe price (price: \"price_…\"), not an ad-hoc price_data amount".into(),
            ));
        }
        match li.price.as_deref().map(str::trim) {
            None if li.price_data.is_none() => {
                problems.push((format!("{at}.price"), "is required".into()));
            }
            Some("") => problems.push((format!("{at}.price"), "must not be empty".into())),
            Some(p) if p.len() > 255 || p.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                problems.push((format!("{at}.price"), "is not a Stripe price id".into()));
            }
            _ => {}
        }
        if let Some(q) = li.quantity
            && !(1..=10_000).contains(&q)
        {
            problems.push((
                format!("{at}.quantity"),
                "must be between 1 and 10000".into(),
            ));
        }
    }
    for (field, url) in [
        ("return_url", &input.return_url),
        ("cancel_url", &input.cancel_url),
    ] {
        if check_url(field, url).is_err() {
            problems.push((field.into(), "must be an http(s) URL".into()));
        }
    }
    let Some((first, _)) = problems.first() else {
        return Ok(());
    };
    let first = first.clone();
    let message = problems
        .iter()
        .map(|(f, m)| format!("{f}: {m}"))
        .collect::<Vec<_>>()
        .join("; ");
    Err(ApiError::bad_request("validation_failed", message).with_field(first))
}

/// The answer to `POST /api/v1/checkout-sessions`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CheckoutSessionCreatedOut {
    /// The order made for it (`ord_…`).
    pub order_id: String,
    /// Stripe's Checkout Session (`cs_…`).
    pub id: String,
    /// Stripe's hosted payment page, to send the shopper to (hosted Checkout).
    pub url: Option<String>,
    /// What mounts embedded Checkout in the merchant's page (`ui_mode: embedded`; else null).
    pub client_secret: Option<String>,
}

/// Creates a Stripe Checkout Session, and the order it pays.
///
/// Only with a key of the company's environment's mode.
#[utoipa::path(
    post,
    path = "/api/v1/checkout-sessions",
    tag = "merchant",
    request_body = CheckoutSessionIn,
    responses(
        (status = 201, description = "The session and its order", body = CheckoutSessionCreatedOut),
        (status = 400, description = "`locale`, `ui_mode` and the URLs do not go together, or in `subscription` mode the line items are not all recurring prices with valid quantities, or a URL is invalid; every problem named at once (`validation_failed`)", body = ErrorBody),
        (status = 409, description = "The key's mode is not the company's environment (`environment_mismatch`), or Stripe is disabled for the company (`stripe_disabled`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`validation_failed`), or the company has no active profile of the mode (`active_profile_missing`)", body = ErrorBody),
        (status = 502, description = "Stripe refused the Checkout Session (`stripe_error`)", body = ErrorBody),
    ),
)]
pub(crate) async fn create_checkout_session(
    state: web::Data<AdminState>,
    who: MerchantPrincipal,
    body: web::Json<CheckoutSessionIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let scope = who.scope_to_create()?;
    let company = who.company;
    let embedded = checkout_options(&input)?;
    if input.mode.as_deref() == Some("subscription") {
        check_subscription_body(&input)?;
    }
    if input.line_items.is_empty() {
        return Err(invalid("line_items", "at least one line item is required"));
    }
    let mode = input.mode.clone().unwrap_or_else(|| "payment".into());
    if !matches!(mode.as_str(), "payment" | "subscription" | "setup") {
        return Err(invalid("mode", "must be payment, subscription or setup"));
    }
    check_url("return_url", &input.return_url)?;
    check_url("cancel_url", &input.cancel_url)?;
    let mut items = Vec::new();
    for li in &input.line_items {
        let quantity = li.quantity.unwrap_or(1);
        if !(1..=10_000).contains(&quantity) {
            return Err(invalid(
                "line_items",
                "quantity must be between 1 and 10000",
            ));
        }
        let price_data = match (&li.price, &li.price_data) {
            (Some(_), None) => None,
            (None, Some(pd)) => {
                if !currency_ok(&pd.currency)
                    || pd.unit_amount < 0
                    || pd.product_data.name.trim().is_empty()
                {
                    return Err(invalid(
                        "line_items",
                        "price_data needs a lowercase ISO currency, a unit_amount ≥ 0 in minor units and a product name",
                    ));
                }
                Some(PriceData {
                    currency: pd.currency.clone(),
                    unit_amount: pd.unit_amount,
                    product_data: ProductData {
                        name: pd.product_data.name.clone(),
                        description: pd.product_data.description.clone(),
                    },
                })
            }
            _ => {
                return Err(invalid(
                    "line_items",
                    "each line item needs either price or price_data",
                ));
            }
        };
        items.push(LineItemParam {
            price: li.price.clone(),
            price_data,
            quantity,
        });
    }
    stripe_switched_on(&company)?;
    let profile = state
        .tenants
        .active_profile_for(company.id, scope.mode().as_str())
        .await?
        .ok_or_else(|| {
            ApiError::unprocessable(
                "active_profile_missing",
                format!("the company has no active {} profile", scope.mode()),
            )
        })?;
    let order_id = new_id("ord");
    let base = state.tenants.public_base_url().to_owned();
    let mut metadata = input.metadata.clone();
    metadata.insert("paygate_order_id".into(), order_id.clone());
    // The subscription the session creates carries the order too (its events name it).
    let subscription_metadata = if mode == "subscription" {
        metadata.clone()
    } else {
        BTreeMap::new()
    };
    let mut params = CreateCheckoutSession {
        mode,
        line_items: items,
        customer_email: input.customer_email.clone(),
        client_reference_id: input.client_reference_id.clone(),
        metadata,
        subscription_metadata,
        locale: input.locale.clone(),
        ..CreateCheckoutSession::default()
    };
    if embedded {
        params.ui_mode = Some("embedded".into());
        params.return_url = input.return_url.clone();
    } else {
        params.success_url = Some(format!(
            "{base}/checkout/{}/return?session_id={{CHECKOUT_SESSION_ID}}",
            company.company_id
        ));
        params.cancel_url = input
            .cancel_url
            .clone()
            .or_else(|| input.return_url.clone())
            .or_else(|| Some(base.clone()));
    }
    let session = state
        .stripe
        .create_checkout_session(&profile.secret_key, &params, &order_id)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "stripe_error",
                format!("Stripe refused the Checkout Session: {e}"),
            )
        })?;
    let now = now_ms();
    let livemode = scope.livemode();
    let txn = state.db.begin().await?;
    order::ActiveModel {
        id: Set(order_id.clone()),
        company_pk: Set(company.id),
        livemode: Set(livemode),
        kind: Set("checkout".into()),
        status: Set("open".into()),
        checkout_session_id: Set(Some(session.id.clone())),
        amount: Set(session.amount_total),
        currency: Set(session.currency.clone()),
        customer_email: Set(input.customer_email.clone()),
        client_reference_id: Set(input.client_reference_id.clone()),
        metadata: Set(serde_json::to_string(&input.metadata).unwrap_or_else(|_| "{}".into())),
        // Embedded: where Stripe sent the shopper, this session's id in place.
        return_url: Set(input
            .return_url
            .as_ref()
            .map(|u| u.replace(SESSION_ID_PLACEHOLDER, &session.id))),
        // Where the shopper goes back to pay again (hosted Checkout only).
        cancel_url: Set(input.cancel_url.clone()),
        // `auto` is Stripe's to resolve: the session's events bring the language it chose.
        locale: Set(input.locale.clone().filter(|l| l != "auto")),
        disputed: Set(false),
        status_created: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    checkout_session::ActiveModel {
        company_pk: Set(company.id),
        session_id: Set(session.id.clone()),
        order_id: Set(order_id.clone()),
        livemode: Set(livemode),
        status: Set(session.status.clone()),
        payment_status: Set(Some(session.payment_status.clone())),
        amount_total: Set(session.amount_total),
        currency: Set(session.currency.clone()),
        fulfillment_status: Set("none".into()),
        state_created: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    let client_secret = session.raw["client_secret"].as_str().map(str::to_owned);
    Ok(HttpResponse::Created().json(CheckoutSessionCreatedOut {
        order_id,
        id: session.id,
        url: session.url,
        client_secret,
    }))
}

/// `POST /api/v1/orders`: an order paid with a legacy Source created in the shopper's browser.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceOrderIn {
    /// The Source (`src_…`).
    source: String,
    /// In the currency's smallest unit, > 0.
    amount: i64,
    /// Lowercase ISO code: `eur`.
    currency: String,
    description: Option<String>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    return_url: Option<String>,
    /// The shopper's e-mail: they are told when the order is paid or fails.
    customer_email: Option<String>,
    /// The shopper's language for those e-mails: one of Stripe's Checkout locales (`it`, `de`,
    /// `en` …); Paygate writes English, Italian and German, English for the others.
    locale: Option<String>,
}

/// Creates an order paid with a legacy Source created in the shopper's browser.
///
/// Only with a key of the company's environment's mode, and while the company's Stripe
/// payment method is on (as for Checkout Sessions).
#[utoipa::path(
    post,
    path = "/api/v1/orders",
    tag = "merchant",
    request_body = SourceOrderIn,
    responses(
        (status = 201, description = "The order", body = OrderOut),
        (status = 409, description = "The key's mode is not the company's environment (`environment_mismatch`), Stripe is disabled for the company (`stripe_disabled`), or an order already uses the source (`source_in_use`)", body = ErrorBody),
        (status = 422, description = "A field is invalid (`validation_failed`)", body = ErrorBody),
    ),
)]
pub(crate) async fn create_source_order(
    state: web::Data<AdminState>,
    who: MerchantPrincipal,
    body: web::Json<SourceOrderIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    if !input.source.starts_with("src_") || input.source.len() > 255 {
        return Err(invalid("source", "must be a Source id starting with src_"));
    }
    if input.amount <= 0 {
        return Err(invalid(
            "amount",
            "must be a positive amount in minor units",
        ));
    }
    if !currency_ok(&input.currency) {
        return Err(invalid(
            "currency",
            "must be a lowercase ISO currency code such as eur",
        ));
    }
    check_url("return_url", &input.return_url)?;
    let customer_email = match input.customer_email.as_deref() {
        Some(e) => Some(
            paygate_tenant::operators::normalize_email(e)
                .map_err(|_| invalid("customer_email", "must be an e-mail address"))?,
        ),
        None => None,
    };
    if let Some(l) = &input.locale
        && !CHECKOUT_LOCALES.contains(&l.as_str())
    {
        return Err(invalid(
            "locale",
            "must be one of Stripe's Checkout locales, such as it, de or en",
        ));
    }
    let scope = who.scope_to_create()?;
    stripe_switched_on(&who.company)?;
    let taken = scope
        .orders()
        .filter(order::Column::SourceId.eq(input.source.as_str()))
        .one(&state.db)
        .await?;
    if taken.is_some() {
        return Err(ApiError::conflict(
            "source_in_use",
            "an order already uses this source",
        ));
    }
    let now = now_ms();
    let m = order::ActiveModel {
        id: Set(new_id("ord")),
        company_pk: Set(scope.company_pk()),
        livemode: Set(scope.livemode()),
        kind: Set("source".into()),
        status: Set("awaiting_payment".into()),
        source_id: Set(Some(input.source)),
        amount: Set(Some(input.amount)),
        currency: Set(Some(input.currency)),
        description: Set(input.description),
        metadata: Set(serde_json::to_string(&input.metadata).unwrap_or_else(|_| "{}".into())),
        return_url: Set(input.return_url),
        customer_email: Set(customer_email),
        locale: Set(input.locale.filter(|l| l != "auto")),
        disputed: Set(false),
        status_created: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&state.db)
    .await?;
    Ok(HttpResponse::Created().json(order_out(&state.db, &m).await?))
}

/// An order of the key's company and mode.
#[utoipa::path(
    get,
    path = "/api/v1/orders/{order_id}",
    tag = "merchant",
    params(("order_id" = String, Path, description = "The order (`ord_…`)"), ModeQuery),
    responses(
        (status = 200, description = "The order", body = OrderOut),
        (status = 404, description = "No such order in the key's company and mode (`order_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_order(
    state: web::Data<AdminState>,
    who: MerchantPrincipal,
    path: web::Path<String>,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let m = who
        .scope_for(q.mode)?
        .orders()
        .filter(order::Column::Id.eq(path.into_inner()))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("order_not_found", "no such order"))?;
    Ok(HttpResponse::Ok().json(order_out(&state.db, &m).await?))
}

/// `GET /api/v1/orders?checkout_session=cs_…`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// The Checkout Session (`cs_…`): required.
    checkout_session: Option<String>,
    /// The key's own mode (another is 403).
    mode: Option<Mode>,
}

/// The orders of a Checkout Session.
#[utoipa::path(
    get,
    path = "/api/v1/orders",
    tag = "merchant",
    params(OrdersQuery),
    responses(
        (status = 200, description = "The orders (none when the session is not the key's)", body = List<OrderOut>),
        (status = 400, description = "`checkout_session` is missing (`invalid_query`)", body = ErrorBody),
    ),
)]
pub(crate) async fn find_orders(
    state: web::Data<AdminState>,
    who: MerchantPrincipal,
    q: web::Query<OrdersQuery>,
) -> Result<HttpResponse, ApiError> {
    let cs = q.checkout_session.as_deref().ok_or_else(|| {
        ApiError::bad_request("invalid_query", "checkout_session=cs_… is required")
    })?;
    let rows = who
        .scope_for(q.mode)?
        .orders()
        .filter(order::Column::CheckoutSessionId.eq(cs))
        .all(&state.db)
        .await?;
    let mut data = Vec::new();
    for m in &rows {
        data.push(order_out(&state.db, m).await?);
    }
    Ok(HttpResponse::Ok().json(List { data }))
}
