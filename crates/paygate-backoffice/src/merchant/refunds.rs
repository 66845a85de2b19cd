//! `/app/orders/{order_id}/refund`: an admin refunds an order, in full or in part.
//!
//! Three steps, and money moves only at the last: the form (GET), the confirmation page (GET,
//! the form's answers checked, every error at once, shown again on the form), then the POST
//! from the confirmation page, which asks Stripe and redirects to the order with a flash
//! (Post/Redirect/Get). The confirmation page carries a one-off token sent as the refund's
//! idempotency key (see `paygate_router::refunds`), so a double submit makes one refund.
//! Viewers see none of it (403), and the order is found in the page's mode of the session's
//! company only.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use sea_orm::ColumnTrait;
use sea_orm::QueryFilter;
use serde::Deserialize;

use paygate_db::entities::order;
use paygate_db::new_id;
use paygate_router::refunds::{self, REFUND_REASONS, RefundError, RefundRequest};
use paygate_stripe::StripeError;

use crate::MerchantSession;
use crate::i18n::{Lang, currency_exponent};
use crate::merchant::listing::{Choice, choices, order_href, with_query};
use crate::merchant::mode::{ModeParam, View};
use crate::page::{FieldErrors, Page, PageError, redirect_with_flash, render, render_status};

/// Registers `/app/orders/{order_id}/refund…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/orders/{order_id}/refund", web::get().to(form))
        .route("/orders/{order_id}/refund/confirm", web::get().to(confirm))
        .route("/orders/{order_id}/refund", web::post().to(submit));
}

/// The form's fields (query of the confirmation page).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RefundQuery {
    mode: String,
    amount: String,
    reason: String,
}

/// The confirmation page's fields.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RefundForm {
    mode: String,
    /// In minor units.
    amount: String,
    reason: String,
    /// The one-off idempotency token of the confirmation page.
    token: String,
}

#[derive(Template)]
#[template(path = "backoffice/app/refund.html")]
struct FormTemplate {
    ctx: Page,
    order_id: String,
    order_href: String,
    /// The mode of the page, sent along.
    mode: String,
    currency: String,
    left: String,
    amount: String,
    reasons: Vec<Choice>,
    errors: FieldErrors,
}

#[derive(Template)]
#[template(path = "backoffice/app/refund_confirm.html")]
struct ConfirmTemplate {
    ctx: Page,
    order_id: String,
    order_href: String,
    form_action: String,
    mode: String,
    amount_minor: i64,
    amount_text: String,
    reason: String,
    reason_label: String,
    token: String,
}

/// An order of the page's mode that can still be refunded, with what is left (minor units).
async fn refundable(
    s: &MerchantSession,
    v: &View,
    order_id: &str,
) -> Result<(order::Model, i64), PageError> {
    let m = v
        .scope
        .orders()
        .filter(order::Column::Id.eq(order_id))
        .one(s.db())
        .await?
        .ok_or(PageError::NotFound)?;
    let left = m.amount.unwrap_or(0) - m.amount_refunded;
    Ok((m, left))
}

/// An amount typed in the currency's major units (`12`, `12.5`, `12,50`) in minor units.
fn parse_amount(raw: &str, currency: &str) -> Option<i64> {
    let exp = currency_exponent(&currency.to_ascii_uppercase());
    let t = raw.trim().replace(',', ".");
    let (whole, frac) = match t.split_once('.') {
        Some((w, f)) => (w, f),
        None => (t.as_str(), ""),
    };
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > exp as usize
        || whole.len() > 12
    {
        return None;
    }
    let scale = 10_i64.pow(exp);
    let mut minor = whole.parse::<i64>().ok()?.checked_mul(scale)?;
    if !frac.is_empty() {
        let f: i64 = frac.parse().ok()?;
        minor += f * 10_i64.pow(exp - frac.len() as u32);
    }
    (minor > 0).then_some(minor)
}

/// Minor units as typed in the form (`12.50`).
fn major(minor: i64, currency: &str) -> String {
    let exp = currency_exponent(&currency.to_ascii_uppercase());
    if exp == 0 {
        return minor.to_string();
    }
    let scale = 10_i64.pow(exp);
    format!(
        "{}.{:0width$}",
        minor / scale,
        minor % scale,
        width = exp as usize
    )
}

fn reason_choices(lang: Lang, selected: &str) -> Vec<Choice> {
    choices(lang, "refund_reason", REFUND_REASONS, selected)
}

#[expect(clippy::too_many_arguments, reason = "one page's parts")]
fn form_page(
    s: &MerchantSession,
    v: &View,
    m: &order::Model,
    left: i64,
    amount: String,
    reason: &str,
    errors: FieldErrors,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let currency = m.currency.clone().unwrap_or_else(|| "eur".into());
    let mut ctx = v.page(s, "refunds.form_title", "/app/orders");
    ctx.title = s.lang.format("refunds.form_title", &[&m.id]);
    let tpl = FormTemplate {
        ctx,
        order_href: order_href(v.scope, &m.id),
        order_id: m.id.clone(),
        mode: v.mode().as_str().to_owned(),
        left: s.lang.money(left.max(0), &currency),
        currency: currency.to_ascii_uppercase(),
        amount,
        reasons: reason_choices(s.lang, reason),
        errors,
    };
    if status == StatusCode::OK {
        render(&tpl)
    } else {
        render_status(status, &tpl)
    }
}

/// The form, prefilled with everything left to refund.
async fn form(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let v = View::of(&s, &mode).await?;
    let (m, left) = refundable(&s, &v, &path.into_inner()).await?;
    let currency = m.currency.clone().unwrap_or_else(|| "eur".into());
    let mut errors = FieldErrors::new();
    if left <= 0 || (m.payment_intent_id.is_none() && m.charge_id.is_none()) {
        errors.add_text("amount", s.lang.t("refunds.not_refundable").to_owned());
    }
    let amount = major(left.max(0), &currency);
    form_page(
        &s,
        &v,
        &m,
        left,
        amount,
        "requested_by_customer",
        errors,
        StatusCode::OK,
    )
}

/// The confirmation page, or the form again with every error.
async fn confirm(
    s: MerchantSession,
    path: web::Path<String>,
    q: web::Query<RefundQuery>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let q = q.into_inner();
    let v = View::of(
        &s,
        &ModeParam {
            mode: q.mode.clone(),
        },
    )
    .await?;
    let (m, left) = refundable(&s, &v, &path.into_inner()).await?;
    let currency = m.currency.clone().unwrap_or_else(|| "eur".into());
    let mut errors = FieldErrors::new();
    let amount = parse_amount(&q.amount, &currency);
    match amount {
        None => errors.add_text("amount", s.lang.t("refunds.amount_invalid").to_owned()),
        Some(a) if a > left => errors.add_text(
            "amount",
            s.lang.format(
                "refunds.amount_too_high",
                &[&s.lang.money(left.max(0), &currency)],
            ),
        ),
        Some(_) => {}
    }
    if !REFUND_REASONS.contains(&q.reason.as_str()) {
        errors.add_text("reason", s.lang.t("refunds.reason_invalid").to_owned());
    }
    let Some(amount) = amount.filter(|_| errors.is_empty()) else {
        return form_page(
            &s,
            &v,
            &m,
            left,
            q.amount.clone(),
            &q.reason,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let amount_text = s.lang.money(amount, &currency);
    let mut ctx = v.page(&s, "refunds.confirm_title", "/app/orders");
    ctx.title = s.lang.t("refunds.confirm_title").to_owned();
    render(&ConfirmTemplate {
        ctx,
        order_href: order_href(v.scope, &m.id),
        form_action: format!("/app/orders/{}/refund", m.id),
        order_id: m.id.clone(),
        mode: v.mode().as_str().to_owned(),
        amount_minor: amount,
        amount_text,
        reason_label: s.lang.t(&format!("refund_reason.{}", q.reason)).to_owned(),
        reason: q.reason,
        token: new_id("rft"),
    })
}

/// The refund: asked from Stripe, then back to the order (303) with a flash.
async fn submit(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<RefundForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let f = form.into_inner();
    let v = View::of(
        &s,
        &ModeParam {
            mode: f.mode.clone(),
        },
    )
    .await?;
    let order_id = path.into_inner();
    let (m, left) = refundable(&s, &v, &order_id).await?;
    let amount = f.amount.trim().parse::<i64>().ok().filter(|a| *a > 0);
    let token = f.token.trim();
    let mut errors = FieldErrors::new();
    if amount.is_none() {
        errors.add_text("amount", s.lang.t("refunds.amount_invalid").to_owned());
    }
    if !REFUND_REASONS.contains(&f.reason.as_str()) {
        errors.add_text("reason", s.lang.t("refunds.reason_invalid").to_owned());
    }
    if token.is_empty() || token.len() > 64 {
        errors.add_text("amount", s.lang.t("refunds.amount_invalid").to_owned());
    }
    let currency = m.currency.clone().unwrap_or_else(|| "eur".into());
    let typed = amount.map(|a| major(a, &currency)).unwrap_or_default();
    let Some(amount) = amount.filter(|_| errors.is_empty()) else {
        return form_page(
            &s,
            &v,
            &m,
            left,
            typed,
            &f.reason,
            errors,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    };
    let made = refunds::create_refund(
        s.db(),
        s.tenants(),
        &s.state.stripe,
        v.scope,
        RefundRequest {
            order_id: &order_id,
            amount: Some(amount),
            reason: Some(f.reason.clone()),
            idempotency_key: Some(token),
        },
    )
    .await;
    let message = match made {
        Ok(_) => {
            return Ok(redirect_with_flash(
                &order_href(v.scope, &order_id),
                "refunds.flash_requested",
            ));
        }
        Err(RefundError::OrderNotFound) => return Err(PageError::NotFound),
        Err(RefundError::Db(e)) => return Err(e.into()),
        Err(RefundError::Tenant(e)) => return Err(PageError::internal(e)),
        Err(RefundError::Invalid { .. }) => s.lang.t("refunds.amount_invalid").to_owned(),
        Err(RefundError::NotRefundable(_)) => s.lang.t("refunds.not_refundable").to_owned(),
        Err(RefundError::KeyReused) => s.lang.t("refunds.amount_invalid").to_owned(),
        Err(RefundError::NoProfile(_)) => s.lang.t("refunds.unreachable").to_owned(),
        Err(RefundError::Stripe(e @ StripeError::Api { .. })) if !e.is_retryable() => {
            s.lang.format("refunds.refused", &[&refused_text(&e)])
        }
        Err(RefundError::Stripe(_)) => s.lang.t("refunds.unreachable").to_owned(),
    };
    errors.add_text("amount", message);
    form_page(
        &s,
        &v,
        &m,
        left,
        typed,
        &f.reason,
        errors,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

/// Stripe's own words for a refusal (never the key: Stripe's errors do not carry it).
fn refused_text(e: &StripeError) -> String {
    match e {
        StripeError::Api { message, code, .. } => {
            message.clone().or_else(|| code.clone()).unwrap_or_default()
        }
        _ => String::new(),
    }
}

/// The link from the order page to the form, in the page's mode.
pub fn refund_href(v_mode: paygate_db::Mode, order_id: &str) -> String {
    with_query(
        &format!("/app/orders/{order_id}/refund"),
        &[("mode", v_mode.as_str())],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_in_major_units() {
        assert_eq!(parse_amount("12", "eur"), Some(1200));
        assert_eq!(parse_amount("12.5", "eur"), Some(1250));
        assert_eq!(parse_amount(" 12,05 ", "eur"), Some(1205));
        assert_eq!(parse_amount("500", "jpy"), Some(500));
        assert_eq!(parse_amount("5.5", "jpy"), None);
        assert_eq!(parse_amount("0", "eur"), None);
        assert_eq!(parse_amount("1.234", "eur"), None);
        assert_eq!(parse_amount("-3", "eur"), None);
        assert_eq!(parse_amount("abc", "eur"), None);
        assert_eq!(major(1205, "eur"), "12.05");
        assert_eq!(major(500, "jpy"), "500");
    }
}
