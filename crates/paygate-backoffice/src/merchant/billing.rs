//! Issue 19: the company's subscriptions, invoices and customers as Stripe's events left them,
//! and its dunning settings.
//!
//! | path | what |
//! |---|---|
//! | `GET /app/subscriptions` | subscriptions, newest first, by status and customer e-mail |
//! | `GET /app/subscriptions/{id}` | one subscription: items, period, trial, cancellation, its invoices and the actions ([`super::subscription_actions`]) |
//! | `GET /app/invoices` | invoices, newest first, by status and customer e-mail |
//! | `GET /app/customers` | customers, newest first, by e-mail |
//! | `GET /app/customers/{id}` | one customer, their subscriptions and invoices, the portal action |
//! | `GET /app/billing-settings`, `POST` | dunning e-mails on/off and after which attempts (admins; Post/Redirect/Get) |
//!
//! Every data page shows one mode ([`super::mode`]); every query starts from the session's
//! company in that mode (`paygate_router::billing_read`), so another company's object, or one
//! of the other mode, is "not found".

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use paygate_admin::billing::{BillingSettingsIo, read_settings, validate_settings, write_settings};
use paygate_db::entities::{customer, invoice, subscription};
use paygate_router::billing_read::{self, BillingFilter};

use crate::MerchantSession;
use crate::i18n::Lang;
use crate::merchant::listing::{Choice, PAGE_SIZE, choices, label, segment, with_query};
use crate::merchant::mode::{ModeParam, View};
use crate::merchant::subscription_actions::{
    ActionButton, customer_buttons, customer_href, subscription_buttons, subscription_href,
};
use crate::page::{
    FieldErrors, Page, PageError, mode_href, redirect_with_flash, render, render_status,
};

/// Stripe's subscription statuses (the filter's choices).
pub const SUBSCRIPTION_STATUSES: &[&str] = &[
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
];

/// Stripe's invoice statuses (the filter's choices).
pub const INVOICE_STATUSES: &[&str] = &["draft", "open", "paid", "uncollectible", "void"];

/// Registers the billing pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/subscriptions", web::get().to(subscriptions))
        .route(
            "/subscriptions/{subscription_id}",
            web::get().to(subscription_page),
        )
        .route("/invoices", web::get().to(invoices))
        .route("/customers", web::get().to(customers))
        .route("/customers/{customer_id}", web::get().to(customer_page))
        .route("/billing-settings", web::get().to(settings_page))
        .route("/billing-settings", web::post().to(save_settings));
}

/// The filters of the lists.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Filters {
    status: String,
    email: String,
    /// The id of the last row of the previous page.
    before: String,
}

/// A subscription as the pages show it.
pub struct SubscriptionRow {
    pub id: String,
    pub href: String,
    pub status: String,
    pub status_label: String,
    pub customer: String,
    pub customer_href: String,
    pub customer_email: Option<String>,
    /// `2 × 20.00 EUR / month`, one per item.
    pub items: Vec<String>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub canceled_at: Option<i64>,
    pub latest_invoice: Option<String>,
    pub created: i64,
}

fn item_text(lang: Lang, v: &serde_json::Value) -> String {
    let qty = v["quantity"].as_i64().unwrap_or(1);
    let price = match (v["unit_amount"].as_i64(), v["currency"].as_str()) {
        (Some(a), Some(c)) => lang.money(a, c),
        _ => v["price"].as_str().unwrap_or("—").to_owned(),
    };
    match v["interval"].as_str() {
        Some(i) => format!("{qty} × {price} / {}", label(lang, "billing_interval", i)),
        None => format!("{qty} × {price}"),
    }
}

impl SubscriptionRow {
    fn new(lang: Lang, v: &View, m: &subscription::Model, email: Option<String>) -> Self {
        let items: Vec<serde_json::Value> = serde_json::from_str(&m.items_json).unwrap_or_default();
        Self {
            id: m.stripe_subscription_id.clone(),
            href: subscription_href(&m.stripe_subscription_id, v.mode()),
            status: m.status.clone(),
            status_label: label(lang, "subscription_status", &m.status),
            customer: m.stripe_customer_id.clone(),
            customer_href: customer_href(&m.stripe_customer_id, v.mode()),
            customer_email: email,
            items: items.iter().map(|i| item_text(lang, i)).collect(),
            current_period_end: m.current_period_end,
            trial_end: m.trial_end,
            cancel_at_period_end: m.cancel_at_period_end,
            canceled_at: m.canceled_at,
            latest_invoice: m.latest_invoice_id.clone(),
            created: m.stripe_created,
        }
    }
}

/// An invoice as the pages show it.
pub struct InvoiceRow {
    pub id: String,
    pub number: Option<String>,
    pub status: String,
    pub status_label: String,
    pub amount_due: String,
    pub amount_paid: String,
    pub attempt_count: i32,
    pub next_payment_attempt: Option<i64>,
    pub hosted_invoice_url: Option<String>,
    pub customer_email: Option<String>,
    pub subscription: Option<String>,
    pub subscription_href: Option<String>,
    pub created: i64,
}

impl InvoiceRow {
    fn new(lang: Lang, v: &View, m: &invoice::Model) -> Self {
        Self {
            id: m.stripe_invoice_id.clone(),
            number: m.number.clone(),
            status: m.status.clone(),
            status_label: label(lang, "invoice_status", &m.status),
            amount_due: lang.money(m.amount_due, &m.currency),
            amount_paid: lang.money(m.amount_paid, &m.currency),
            attempt_count: m.attempt_count,
            next_payment_attempt: m.next_payment_attempt,
            // Only Stripe's own pages are linked.
            hosted_invoice_url: m
                .hosted_invoice_url
                .clone()
                .filter(|u| u.starts_with("https://")),
            customer_email: m.customer_email.clone(),
            subscription_href: m
                .stripe_subscription_id
                .as_deref()
                .map(|s| subscription_href(s, v.mode())),
            subscription: m.stripe_subscription_id.clone(),
            created: m.stripe_created,
        }
    }
}

/// A customer as the pages show it.
pub struct CustomerRow {
    pub id: String,
    pub href: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub locale: Option<String>,
    pub deleted: bool,
    pub created: i64,
}

impl CustomerRow {
    fn new(v: &View, m: &customer::Model) -> Self {
        Self {
            id: m.stripe_customer_id.clone(),
            href: customer_href(&m.stripe_customer_id, v.mode()),
            email: m.email.clone(),
            name: m.name.clone(),
            locale: m.locale.clone(),
            deleted: m.deleted,
            created: m.stripe_created,
        }
    }
}

/// The e-mail addresses of the customers of `rows`.
async fn emails(
    s: &MerchantSession,
    v: &View,
    ids: Vec<String>,
) -> Result<std::collections::HashMap<String, Option<String>>, PageError> {
    use sea_orm::{ColumnTrait, QueryFilter};
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let found = v
        .scope
        .customers()
        .filter(customer::Column::StripeCustomerId.is_in(ids))
        .all(s.db())
        .await?;
    Ok(found
        .into_iter()
        .map(|c| (c.stripe_customer_id, c.email))
        .collect())
}

/// The status filter, checked against `allowed` (an unknown one is an error of the form).
fn status_filter<'a>(
    lang: Lang,
    f: &'a Filters,
    allowed: &[&str],
    errors: &mut FieldErrors,
) -> &'a str {
    let status = f.status.trim();
    if !status.is_empty() && !allowed.contains(&status) {
        errors.add_text("status", lang.t("billing.status_invalid").to_owned());
        return "";
    }
    status
}

fn filter_of(status: &str, email: &str) -> BillingFilter {
    BillingFilter {
        status: Some(status.to_owned()).filter(|s| !s.is_empty()),
        email: Some(email.trim().to_owned()).filter(|e| !e.is_empty()),
        ..Default::default()
    }
}

fn older(path: &str, v: &View, status: &str, email: &str, last: Option<i64>) -> Option<String> {
    last.map(|id| {
        with_query(
            path,
            &[
                ("mode", v.mode().as_str()),
                ("status", status),
                ("email", email.trim()),
                ("before", &id.to_string()),
            ],
        )
    })
}

#[derive(Template)]
#[template(path = "backoffice/app/subscriptions.html")]
struct SubscriptionsTemplate {
    ctx: Page,
    rows: Vec<SubscriptionRow>,
    statuses: Vec<Choice>,
    email: String,
    filtered: bool,
    older: Option<String>,
    errors: FieldErrors,
    settings_href: String,
}

async fn subscriptions(
    s: MerchantSession,
    q: web::Query<Filters>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let mut errors = FieldErrors::new();
    let status = status_filter(s.lang, &q, SUBSCRIPTION_STATUSES, &mut errors);
    let before = q.before.trim().parse::<i64>().ok();
    let mut rows = billing_read::subscriptions(
        s.db(),
        v.scope,
        &filter_of(status, &q.email),
        before,
        PAGE_SIZE + 1,
    )
    .await?;
    let more = rows.len() as u64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let by = emails(
        &s,
        &v,
        rows.iter().map(|r| r.stripe_customer_id.clone()).collect(),
    )
    .await?;
    let tpl = SubscriptionsTemplate {
        ctx: v.page(&s, "billing.subscriptions_title", "/app/subscriptions"),
        rows: rows
            .iter()
            .map(|m| {
                let email = by.get(&m.stripe_customer_id).cloned().flatten();
                SubscriptionRow::new(s.lang, &v, m, email)
            })
            .collect(),
        statuses: choices(s.lang, "subscription_status", SUBSCRIPTION_STATUSES, status),
        email: q.email.trim().to_owned(),
        filtered: !status.is_empty() || !q.email.trim().is_empty(),
        older: older(
            "/app/subscriptions",
            &v,
            status,
            &q.email,
            rows.last().filter(|_| more).map(|r| r.id),
        ),
        errors,
        settings_href: v.href("/app/billing-settings"),
    };
    if tpl.errors.is_empty() {
        render(&tpl)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl)
    }
}

#[derive(Template)]
#[template(path = "backoffice/app/subscription.html")]
struct SubscriptionTemplate {
    ctx: Page,
    sub: SubscriptionRow,
    pause_collection: Option<String>,
    cancel_at: Option<i64>,
    ended_at: Option<i64>,
    current_period_start: Option<i64>,
    invoices: Vec<InvoiceRow>,
    action_buttons: Vec<ActionButton>,
}

async fn subscription_page(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let id = path.into_inner();
    let m = billing_read::subscription(s.db(), v.scope, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let by = emails(&s, &v, vec![m.stripe_customer_id.clone()]).await?;
    let invoices = billing_read::invoices(
        s.db(),
        v.scope,
        &BillingFilter {
            subscription: Some(id.clone()),
            ..Default::default()
        },
        None,
        PAGE_SIZE,
    )
    .await?;
    let mut ctx = v.page(
        &s,
        "billing.subscription_title",
        &format!("/app/subscriptions/{}", segment(&id)),
    );
    ctx.title = format!("{} {}", ctx.title, m.stripe_subscription_id);
    render(&SubscriptionTemplate {
        ctx,
        pause_collection: m.pause_collection.clone(),
        cancel_at: m.cancel_at,
        ended_at: m.ended_at,
        current_period_start: m.current_period_start,
        invoices: invoices
            .iter()
            .map(|i| InvoiceRow::new(s.lang, &v, i))
            .collect(),
        action_buttons: subscription_buttons(s.is_admin(), v.mode(), &m),
        sub: SubscriptionRow::new(
            s.lang,
            &v,
            &m,
            by.get(&m.stripe_customer_id).cloned().flatten(),
        ),
    })
}

#[derive(Template)]
#[template(path = "backoffice/app/invoices.html")]
struct InvoicesTemplate {
    ctx: Page,
    rows: Vec<InvoiceRow>,
    statuses: Vec<Choice>,
    email: String,
    filtered: bool,
    older: Option<String>,
    errors: FieldErrors,
}

async fn invoices(
    s: MerchantSession,
    q: web::Query<Filters>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let mut errors = FieldErrors::new();
    let status = status_filter(s.lang, &q, INVOICE_STATUSES, &mut errors);
    let before = q.before.trim().parse::<i64>().ok();
    let mut rows = billing_read::invoices(
        s.db(),
        v.scope,
        &filter_of(status, &q.email),
        before,
        PAGE_SIZE + 1,
    )
    .await?;
    let more = rows.len() as u64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let tpl = InvoicesTemplate {
        ctx: v.page(&s, "billing.invoices_title", "/app/invoices"),
        rows: rows
            .iter()
            .map(|m| InvoiceRow::new(s.lang, &v, m))
            .collect(),
        statuses: choices(s.lang, "invoice_status", INVOICE_STATUSES, status),
        email: q.email.trim().to_owned(),
        filtered: !status.is_empty() || !q.email.trim().is_empty(),
        older: older(
            "/app/invoices",
            &v,
            status,
            &q.email,
            rows.last().filter(|_| more).map(|r| r.id),
        ),
        errors,
    };
    if tpl.errors.is_empty() {
        render(&tpl)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl)
    }
}

#[derive(Template)]
#[template(path = "backoffice/app/customers.html")]
struct CustomersTemplate {
    ctx: Page,
    rows: Vec<CustomerRow>,
    email: String,
    filtered: bool,
    older: Option<String>,
}

async fn customers(
    s: MerchantSession,
    q: web::Query<Filters>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let before = q.before.trim().parse::<i64>().ok();
    let mut rows = billing_read::customers(
        s.db(),
        v.scope,
        &filter_of("", &q.email),
        before,
        PAGE_SIZE + 1,
    )
    .await?;
    let more = rows.len() as u64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    render(&CustomersTemplate {
        ctx: v.page(&s, "billing.customers_title", "/app/customers"),
        rows: rows.iter().map(|m| CustomerRow::new(&v, m)).collect(),
        email: q.email.trim().to_owned(),
        filtered: !q.email.trim().is_empty(),
        older: older(
            "/app/customers",
            &v,
            "",
            &q.email,
            rows.last().filter(|_| more).map(|r| r.id),
        ),
    })
}

#[derive(Template)]
#[template(path = "backoffice/app/customer.html")]
struct CustomerTemplate {
    ctx: Page,
    customer: CustomerRow,
    subscriptions: Vec<SubscriptionRow>,
    invoices: Vec<InvoiceRow>,
    action_buttons: Vec<ActionButton>,
}

async fn customer_page(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let id = path.into_inner();
    let m = billing_read::customer(s.db(), v.scope, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let f = BillingFilter {
        customer: Some(id.clone()),
        ..Default::default()
    };
    let subs = billing_read::subscriptions(s.db(), v.scope, &f, None, PAGE_SIZE).await?;
    let invs = billing_read::invoices(s.db(), v.scope, &f, None, PAGE_SIZE).await?;
    let mut ctx = v.page(
        &s,
        "billing.customer_title",
        &format!("/app/customers/{}", segment(&id)),
    );
    ctx.title = format!("{} {}", ctx.title, m.stripe_customer_id);
    render(&CustomerTemplate {
        ctx,
        subscriptions: subs
            .iter()
            .map(|x| SubscriptionRow::new(s.lang, &v, x, m.email.clone()))
            .collect(),
        invoices: invs
            .iter()
            .map(|i| InvoiceRow::new(s.lang, &v, i))
            .collect(),
        action_buttons: customer_buttons(s.is_admin(), v.mode(), &m),
        customer: CustomerRow::new(&v, &m),
    })
}

/// One attempt's checkbox of the settings form.
pub struct AttemptBox {
    pub n: i32,
    pub checked: bool,
}

#[derive(Template)]
#[template(path = "backoffice/app/billing_settings.html")]
struct SettingsTemplate {
    ctx: Page,
    is_admin: bool,
    dunning_emails: bool,
    attempts: Vec<AttemptBox>,
    errors: FieldErrors,
}

fn settings_template(
    s: &MerchantSession,
    v: &View,
    io: &BillingSettingsIo,
    errors: FieldErrors,
) -> SettingsTemplate {
    SettingsTemplate {
        ctx: v.page(s, "billing.settings_title", "/app/billing-settings"),
        is_admin: s.is_admin(),
        dunning_emails: io.dunning_emails,
        attempts: (1..=4)
            .map(|n| AttemptBox {
                n,
                checked: io.dunning_attempts.contains(&n),
            })
            .collect(),
        errors,
    }
}

async fn settings_page(
    s: MerchantSession,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let io = read_settings(s.db(), s.company_pk).await?;
    render(&settings_template(&s, &v, &io, FieldErrors::new()))
}

async fn save_settings(s: MerchantSession, body: String) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    // Repeated `attempt` fields: read the form by hand.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    let get = |k: &'static str| {
        pairs
            .iter()
            .filter(move |(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let mode = ModeParam {
        mode: get("mode").next().unwrap_or_default().to_owned(),
    };
    let v = View::of(&s, &mode).await?;
    let mut errors = FieldErrors::new();
    let mut attempts = Vec::new();
    for a in get("attempt") {
        match a.trim().parse::<i32>() {
            Ok(n) if (1..=10).contains(&n) => attempts.push(n),
            _ => errors.add_text("attempt", s.lang.t("billing.attempts_invalid").to_owned()),
        }
    }
    let on = get("dunning_emails").next().is_some();
    if on && attempts.is_empty() && errors.is_empty() {
        errors.add_text("attempt", s.lang.t("billing.attempts_required").to_owned());
    }
    let io = BillingSettingsIo {
        dunning_emails: on,
        dunning_attempts: attempts,
    };
    let io = match validate_settings(io) {
        Ok(io) if errors.is_empty() => io,
        Ok(io) => {
            return render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &settings_template(&s, &v, &io, errors),
            );
        }
        Err(_) => {
            errors.add_text("attempt", s.lang.t("billing.attempts_invalid").to_owned());
            let io = BillingSettingsIo {
                dunning_emails: on,
                dunning_attempts: Vec::new(),
            };
            return render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &settings_template(&s, &v, &io, errors),
            );
        }
    };
    write_settings(s.db(), s.company_pk, &io).await?;
    paygate_tenant::audit::record(
        s.db(),
        &s.actor(),
        Some(s.company_pk),
        "billing_settings.updated",
        &s.company_id,
        serde_json::json!({"dunning_emails": io.dunning_emails, "dunning_attempts": io.dunning_attempts}),
    )
    .await?;
    Ok(redirect_with_flash(
        &mode_href("/app/billing-settings", v.mode()),
        "billing.flash_settings_saved",
    ))
}
