//! Issue 19: subscriptions, invoices and customers as Stripe's events left them (read only),
//! for operators (`/admin/v1/companies/{company_id}/…`, `?mode=` like the other operator lists)
//! and for merchants with an API key (`/api/v1/…`, the key's company and mode). One set of
//! handlers serves both (`Requester`, as for notifications); reads go through the company and
//! mode `Scope`, so another company's object is 404 and the other mode's is never seen. Also
//! the company's dunning settings (`…/billing-settings`).

use actix_web::{HttpRequest, HttpResponse, web};
use sea_orm::sea_query::OnConflict;
use sea_orm::{EntityTrait, Set};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use paygate_db::entities::{billing_settings, customer, invoice, subscription};
use paygate_db::{Mode, Tenant, now_ms};
use paygate_router::billing_read::{self, BillingFilter};
use paygate_web::{ApiError, Page, decode_cursor, encode_cursor, rfc3339_ms, rfc3339_s};

use crate::error_body::ErrorBody;
use crate::notifications::Requester;
use crate::{AdminState, ModeQuery, page_limit};

/// Filters of the billing lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BillingQuery {
    /// `test` or `live` (operators: the company's environment by default; merchants: the
    /// key's own mode, the other is 403).
    mode: Option<Mode>,
    /// Stripe's status (subscriptions: `trialing`, `active`, `past_due`, `canceled`, …;
    /// invoices: `draft`, `open`, `paid`, `uncollectible`, `void`).
    status: Option<String>,
    /// The customer's e-mail address.
    email: Option<String>,
    /// Stripe's customer id (`cus_…`).
    customer: Option<String>,
    /// Stripe's subscription id (`sub_…`; invoices only).
    subscription: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

impl BillingQuery {
    fn filter(&self) -> BillingFilter {
        BillingFilter {
            status: self.status.clone().filter(|s| !s.is_empty()),
            email: self.email.clone(),
            customer: self.customer.clone().filter(|s| !s.is_empty()),
            subscription: self.subscription.clone().filter(|s| !s.is_empty()),
        }
    }
}

/// An item of a subscription.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SubscriptionItemOut {
    /// Stripe's `si_…`.
    pub id: Option<String>,
    /// The price (`price_…`, or an older `plan_…`).
    pub price: Option<String>,
    pub product: Option<String>,
    pub quantity: Option<i64>,
    /// Minor units.
    pub unit_amount: Option<i64>,
    pub currency: Option<String>,
    /// `day`, `week`, `month` or `year`.
    pub interval: Option<String>,
}

/// A subscription.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SubscriptionOut {
    /// Stripe's `sub_…`.
    pub id: String,
    pub object: &'static str,
    pub livemode: bool,
    /// Stripe's customer (`cus_…`).
    pub customer: String,
    /// Stripe's status: `incomplete`, `incomplete_expired`, `trialing`, `active`, `past_due`,
    /// `canceled`, `unpaid` or `paused`.
    pub status: String,
    pub items: Vec<SubscriptionItemOut>,
    pub currency: Option<String>,
    pub current_period_start: Option<String>,
    pub current_period_end: Option<String>,
    pub trial_end: Option<String>,
    pub cancel_at_period_end: bool,
    pub cancel_at: Option<String>,
    pub canceled_at: Option<String>,
    pub ended_at: Option<String>,
    /// `pause_collection.behavior` while collection is paused.
    pub pause_collection: Option<String>,
    /// The latest invoice (`in_…`).
    pub latest_invoice: Option<String>,
    pub created: String,
    pub updated_at: String,
}

/// An invoice.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceOut {
    /// Stripe's `in_…`.
    pub id: String,
    pub object: &'static str,
    pub livemode: bool,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub number: Option<String>,
    /// Stripe's status: `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub status: String,
    pub currency: String,
    /// Minor units.
    pub amount_due: i64,
    pub amount_paid: i64,
    pub amount_remaining: i64,
    /// Payment attempts made so far.
    pub attempt_count: i32,
    /// When Stripe tries again, if it will.
    pub next_payment_attempt: Option<String>,
    /// Stripe's page where the customer pays it.
    pub hosted_invoice_url: Option<String>,
    pub customer_email: Option<String>,
    pub billing_reason: Option<String>,
    pub created: String,
    pub updated_at: String,
}

/// A customer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CustomerOut {
    /// Stripe's `cus_…`.
    pub id: String,
    pub object: &'static str,
    pub livemode: bool,
    pub email: Option<String>,
    pub name: Option<String>,
    /// The first of the customer's preferred locales.
    pub locale: Option<String>,
    pub deleted: bool,
    pub created: String,
    pub updated_at: String,
}

/// A subscription on the wire.
pub fn subscription_out(s: &subscription::Model) -> SubscriptionOut {
    let items: Vec<SubscriptionItemOut> = serde_json::from_str::<Vec<Value>>(&s.items_json)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    SubscriptionOut {
        id: s.stripe_subscription_id.clone(),
        object: "subscription",
        livemode: s.livemode,
        customer: s.stripe_customer_id.clone(),
        status: s.status.clone(),
        items,
        currency: s.currency.clone(),
        current_period_start: s.current_period_start.map(rfc3339_s),
        current_period_end: s.current_period_end.map(rfc3339_s),
        trial_end: s.trial_end.map(rfc3339_s),
        cancel_at_period_end: s.cancel_at_period_end,
        cancel_at: s.cancel_at.map(rfc3339_s),
        canceled_at: s.canceled_at.map(rfc3339_s),
        ended_at: s.ended_at.map(rfc3339_s),
        pause_collection: s.pause_collection.clone(),
        latest_invoice: s.latest_invoice_id.clone(),
        created: rfc3339_s(s.stripe_created),
        updated_at: rfc3339_ms(s.updated_at),
    }
}

/// An invoice on the wire.
pub fn invoice_out(i: &invoice::Model) -> InvoiceOut {
    InvoiceOut {
        id: i.stripe_invoice_id.clone(),
        object: "invoice",
        livemode: i.livemode,
        customer: i.stripe_customer_id.clone(),
        subscription: i.stripe_subscription_id.clone(),
        number: i.number.clone(),
        status: i.status.clone(),
        currency: i.currency.clone(),
        amount_due: i.amount_due,
        amount_paid: i.amount_paid,
        amount_remaining: i.amount_remaining,
        attempt_count: i.attempt_count,
        next_payment_attempt: i.next_payment_attempt.map(rfc3339_s),
        hosted_invoice_url: i.hosted_invoice_url.clone(),
        customer_email: i.customer_email.clone(),
        billing_reason: i.billing_reason.clone(),
        created: rfc3339_s(i.stripe_created),
        updated_at: rfc3339_ms(i.updated_at),
    }
}

/// A customer on the wire.
pub fn customer_out(c: &customer::Model) -> CustomerOut {
    CustomerOut {
        id: c.stripe_customer_id.clone(),
        object: "customer",
        livemode: c.livemode,
        email: c.email.clone(),
        name: c.name.clone(),
        locale: c.locale.clone(),
        deleted: c.deleted,
        created: rfc3339_s(c.stripe_created),
        updated_at: rfc3339_ms(c.updated_at),
    }
}

fn param(req: &HttpRequest, name: &str) -> String {
    req.match_info().get(name).unwrap_or_default().to_owned()
}

fn nf(what: &'static str) -> ApiError {
    ApiError::not_found(
        format!("{what}_not_found"),
        format!("no such {what} for this company and mode"),
    )
}

/// A page from rows fetched one over the limit.
fn paged<M, T>(mut rows: Vec<M>, limit: u64, id: fn(&M) -> i64, out: fn(&M) -> T) -> Page<T> {
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|r| encode_cursor(id(r)))
    } else {
        None
    };
    Page {
        data: rows.iter().map(out).collect(),
        has_more,
        next_cursor,
    }
}

async fn list_subscriptions_impl(
    state: web::Data<AdminState>,
    who: Requester,
    q: web::Query<BillingQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = who.data_scope(q.mode)?;
    let limit = page_limit(q.limit);
    let before = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows =
        billing_read::subscriptions(&state.db, scope, &q.filter(), before, limit + 1).await?;
    Ok(HttpResponse::Ok().json(paged(rows, limit, |r| r.id, subscription_out)))
}

async fn get_subscription_impl(
    state: web::Data<AdminState>,
    who: Requester,
    req: HttpRequest,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = who.data_scope(q.mode)?;
    let m = billing_read::subscription(&state.db, scope, &param(&req, "subscription_id"))
        .await?
        .ok_or_else(|| nf("subscription"))?;
    Ok(HttpResponse::Ok().json(subscription_out(&m)))
}

async fn list_invoices_impl(
    state: web::Data<AdminState>,
    who: Requester,
    q: web::Query<BillingQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = who.data_scope(q.mode)?;
    let limit = page_limit(q.limit);
    let before = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows = billing_read::invoices(&state.db, scope, &q.filter(), before, limit + 1).await?;
    Ok(HttpResponse::Ok().json(paged(rows, limit, |r| r.id, invoice_out)))
}

async fn get_invoice_impl(
    state: web::Data<AdminState>,
    who: Requester,
    req: HttpRequest,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = who.data_scope(q.mode)?;
    let m = billing_read::invoice(&state.db, scope, &param(&req, "invoice_id"))
        .await?
        .ok_or_else(|| nf("invoice"))?;
    Ok(HttpResponse::Ok().json(invoice_out(&m)))
}

async fn list_customers_impl(
    state: web::Data<AdminState>,
    who: Requester,
    q: web::Query<BillingQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = who.data_scope(q.mode)?;
    let limit = page_limit(q.limit);
    let before = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let rows = billing_read::customers(&state.db, scope, &q.filter(), before, limit + 1).await?;
    Ok(HttpResponse::Ok().json(paged(rows, limit, |r| r.id, customer_out)))
}

async fn get_customer_impl(
    state: web::Data<AdminState>,
    who: Requester,
    req: HttpRequest,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let scope = who.data_scope(q.mode)?;
    let m = billing_read::customer(&state.db, scope, &param(&req, "customer_id"))
        .await?
        .ok_or_else(|| nf("customer"))?;
    Ok(HttpResponse::Ok().json(customer_out(&m)))
}

// --- operators ---------------------------------------------------------------------------

/// Subscriptions, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/subscriptions",
    tag = "billing",
    params(("company_id" = String, Path, description = "The company"), BillingQuery),
    responses((status = 200, description = "A page of subscriptions", body = Page<SubscriptionOut>)),
)]
pub(crate) async fn list_subscriptions(
    state: web::Data<AdminState>,
    who: Requester,
    q: web::Query<BillingQuery>,
) -> Result<HttpResponse, ApiError> {
    list_subscriptions_impl(state, who, q).await
}

/// A subscription.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/subscriptions/{subscription_id}",
    tag = "billing",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("subscription_id" = String, Path, description = "Stripe's `sub_…`"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionOut),
        (status = 404, description = "Not of this company and mode (`subscription_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_subscription(
    state: web::Data<AdminState>,
    who: Requester,
    req: HttpRequest,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    get_subscription_impl(state, who, req, q).await
}

/// Invoices, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/invoices",
    tag = "billing",
    params(("company_id" = String, Path, description = "The company"), BillingQuery),
    responses((status = 200, description = "A page of invoices", body = Page<InvoiceOut>)),
)]
pub(crate) async fn list_invoices(
    state: web::Data<AdminState>,
    who: Requester,
    q: web::Query<BillingQuery>,
) -> Result<HttpResponse, ApiError> {
    list_invoices_impl(state, who, q).await
}

/// An invoice.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/invoices/{invoice_id}",
    tag = "billing",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("invoice_id" = String, Path, description = "Stripe's `in_…`"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The invoice", body = InvoiceOut),
        (status = 404, description = "Not of this company and mode (`invoice_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_invoice(
    state: web::Data<AdminState>,
    who: Requester,
    req: HttpRequest,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    get_invoice_impl(state, who, req, q).await
}

/// Customers, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/customers",
    tag = "billing",
    params(("company_id" = String, Path, description = "The company"), BillingQuery),
    responses((status = 200, description = "A page of customers", body = Page<CustomerOut>)),
)]
pub(crate) async fn list_customers(
    state: web::Data<AdminState>,
    who: Requester,
    q: web::Query<BillingQuery>,
) -> Result<HttpResponse, ApiError> {
    list_customers_impl(state, who, q).await
}

/// A customer.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/customers/{customer_id}",
    tag = "billing",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("customer_id" = String, Path, description = "Stripe's `cus_…`"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The customer", body = CustomerOut),
        (status = 404, description = "Not of this company and mode (`customer_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get_customer(
    state: web::Data<AdminState>,
    who: Requester,
    req: HttpRequest,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    get_customer_impl(state, who, req, q).await
}

// --- merchants ---------------------------------------------------------------------------

/// The key's subscriptions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/subscriptions",
    tag = "merchant",
    params(BillingQuery),
    responses((status = 200, description = "A page of subscriptions", body = Page<SubscriptionOut>)),
)]
pub(crate) async fn merchant_list_subscriptions(
    state: web::Data<AdminState>,
    who: Requester,
    q: web::Query<BillingQuery>,
) -> Result<HttpResponse, ApiError> {
    list_subscriptions_impl(state, who, q).await
}

/// A subscription of the key's company and mode.
#[utoipa::path(
    get,
    path = "/api/v1/subscriptions/{subscription_id}",
    tag = "merchant",
    params(("subscription_id" = String, Path, description = "Stripe's `sub_…`"), ModeQuery),
    responses(
        (status = 200, description = "The subscription", body = SubscriptionOut),
        (status = 404, description = "Not of the key's company and mode (`subscription_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn merchant_get_subscription(
    state: web::Data<AdminState>,
    who: Requester,
    req: HttpRequest,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    get_subscription_impl(state, who, req, q).await
}

/// The key's invoices, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/invoices",
    tag = "merchant",
    params(BillingQuery),
    responses((status = 200, description = "A page of invoices", body = Page<InvoiceOut>)),
)]
pub(crate) async fn merchant_list_invoices(
    state: web::Data<AdminState>,
    who: Requester,
    q: web::Query<BillingQuery>,
) -> Result<HttpResponse, ApiError> {
    list_invoices_impl(state, who, q).await
}

/// An invoice of the key's company and mode.
#[utoipa::path(
    get,
    path = "/api/v1/invoices/{invoice_id}",
    tag = "merchant",
    params(("invoice_id" = String, Path, description = "Stripe's `in_…`"), ModeQuery),
    responses(
        (status = 200, description = "The invoice", body = InvoiceOut),
        (status = 404, description = "Not of the key's company and mode (`invoice_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn merchant_get_invoice(
    state: web::Data<AdminState>,
    who: Requester,
    req: HttpRequest,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    get_invoice_impl(state, who, req, q).await
}

/// The key's customers, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/customers",
    tag = "merchant",
    params(BillingQuery),
    responses((status = 200, description = "A page of customers", body = Page<CustomerOut>)),
)]
pub(crate) async fn merchant_list_customers(
    state: web::Data<AdminState>,
    who: Requester,
    q: web::Query<BillingQuery>,
) -> Result<HttpResponse, ApiError> {
    list_customers_impl(state, who, q).await
}

/// A customer of the key's company and mode.
#[utoipa::path(
    get,
    path = "/api/v1/customers/{customer_id}",
    tag = "merchant",
    params(("customer_id" = String, Path, description = "Stripe's `cus_…`"), ModeQuery),
    responses(
        (status = 200, description = "The customer", body = CustomerOut),
        (status = 404, description = "Not of the key's company and mode (`customer_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn merchant_get_customer(
    state: web::Data<AdminState>,
    who: Requester,
    req: HttpRequest,
    q: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    get_customer_impl(state, who, req, q).await
}

// --- dunning settings --------------------------------------------------------------------

/// A company's dunning settings (issue 19).
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingSettingsIo {
    /// Whether a shopper gets an e-mail (in their language, with the link to pay) when a
    /// payment of a subscription invoice fails.
    pub dunning_emails: bool,
    /// After which failed attempts (1 to 10; e.g. `[1, 2, 3]`).
    pub dunning_attempts: Vec<i32>,
}

/// Checks and normalizes settings (sorted, unique attempts 1 to 10).
pub fn validate_settings(mut s: BillingSettingsIo) -> Result<BillingSettingsIo, ApiError> {
    if s.dunning_attempts.iter().any(|a| !(1..=10).contains(a)) {
        return Err(ApiError::unprocessable(
            "invalid_parameter",
            "dunning_attempts: each attempt is a number from 1 to 10",
        ));
    }
    s.dunning_attempts.sort_unstable();
    s.dunning_attempts.dedup();
    Ok(s)
}

/// The dunning settings of a company (off, attempts 1 to 3, when never saved).
pub async fn read_settings(
    db: &sea_orm::DatabaseConnection,
    company_pk: i64,
) -> Result<BillingSettingsIo, sea_orm::DbErr> {
    let row = Tenant::new(company_pk)
        .find::<billing_settings::Entity>()
        .one(db)
        .await?;
    Ok(match row {
        Some(r) => BillingSettingsIo {
            dunning_emails: r.dunning_emails,
            dunning_attempts: r.attempts(),
        },
        None => BillingSettingsIo {
            dunning_emails: false,
            dunning_attempts: vec![1, 2, 3],
        },
    })
}

/// Saves (already validated) dunning settings.
pub async fn write_settings(
    db: &sea_orm::DatabaseConnection,
    company_pk: i64,
    s: &BillingSettingsIo,
) -> Result<(), sea_orm::DbErr> {
    let attempts = serde_json::to_string(&s.dunning_attempts).unwrap_or_else(|_| "[]".into());
    billing_settings::Entity::insert(billing_settings::ActiveModel {
        company_pk: Set(company_pk),
        dunning_emails: Set(s.dunning_emails),
        dunning_attempts: Set(attempts),
        updated_at: Set(now_ms()),
    })
    .on_conflict(
        OnConflict::column(billing_settings::Column::CompanyPk)
            .update_columns([
                billing_settings::Column::DunningEmails,
                billing_settings::Column::DunningAttempts,
                billing_settings::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The dunning settings.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/billing-settings",
    tag = "billing",
    params(("company_id" = String, Path, description = "The company")),
    responses((status = 200, description = "The settings", body = BillingSettingsIo)),
)]
pub(crate) async fn settings(
    state: web::Data<AdminState>,
    who: Requester,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(read_settings(&state.db, who.company.id).await?))
}

/// Saves the dunning settings.
#[utoipa::path(
    put,
    path = "/admin/v1/companies/{company_id}/billing-settings",
    tag = "billing",
    params(("company_id" = String, Path, description = "The company")),
    request_body = BillingSettingsIo,
    responses(
        (status = 200, description = "The settings", body = BillingSettingsIo),
        (status = 422, description = "An attempt is not 1 to 10 (`invalid_parameter`)", body = ErrorBody),
    ),
)]
pub(crate) async fn save_settings(
    state: web::Data<AdminState>,
    who: Requester,
    body: web::Json<BillingSettingsIo>,
) -> Result<HttpResponse, ApiError> {
    let s = validate_settings(body.into_inner())?;
    write_settings(&state.db, who.company.id, &s).await?;
    paygate_tenant::audit::record(
        &state.db,
        &who.actor,
        Some(who.company.id),
        "billing_settings.updated",
        &who.company.company_id,
        serde_json::json!({"dunning_emails": s.dunning_emails, "dunning_attempts": s.dunning_attempts}),
    )
    .await?;
    Ok(HttpResponse::Ok().json(s))
}
