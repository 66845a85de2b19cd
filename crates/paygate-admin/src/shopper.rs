//! The shopper's pages (seeds 002 and 004): the landing page Stripe redirects to after Checkout
//! (`success_url`), which also triggers fulfillment, and the status the page polls.
//!
//! Policy: the page never fails because fulfillment could not finish (Stripe slow, another
//! replica holding the claim): it shows the order's state, and the webhook completes the rest.
//! Every value put into the page is HTML-escaped; the page has no inline script.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::Deserialize;

use paygate_db::entities::{checkout_session, order};
use paygate_router::fulfillment::fulfill_checkout;
use paygate_web::ApiError;

use crate::AdminState;

const TEMPLATE: &str = include_str!("../../../frontend-templates/shopper/return.html");
const STATUS_JS: &str = include_str!("../../../frontend-templates/static/checkout-status.js");
const CSS: &str = include_str!("../../../frontend-templates/static/paygate.css");

/// Registers `/checkout/…` and `/static/…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
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

/// Escapes text for HTML content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The shopper's language from `Accept-Language`: Italian, German or English.
pub fn language(req: &HttpRequest) -> &'static str {
    let header = req
        .headers()
        .get("accept-language")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    for part in header.split(',') {
        let tag = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match tag.split('-').next() {
            Some("it") => return "it",
            Some("de") => return "de",
            Some("en") => return "en",
            _ => {}
        }
    }
    "en"
}

/// `confirmed`, `pending` or `failed`, from an order status.
fn state_of(status: &str) -> &'static str {
    match status {
        "paid" | "fulfilled" => "confirmed",
        "payment_failed" | "canceled" | "expired" => "failed",
        _ => "pending",
    }
}

/// Seed 004's message per state, in the shopper's language.
fn message(lang: &str, state: &str) -> &'static str {
    match (lang, state) {
        ("it", "confirmed") => "Pagamento confermato, ordine completato.",
        ("it", "failed") => "Pagamento non riuscito, l'ordine non è stato elaborato.",
        ("it", _) => "Ordine ricevuto, in attesa della conferma del pagamento.",
        ("de", "confirmed") => "Zahlung bestätigt, Bestellung abgeschlossen.",
        ("de", "failed") => "Zahlung fehlgeschlagen, die Bestellung wurde nicht bearbeitet.",
        ("de", _) => "Bestellung erhalten, die Zahlungsbestätigung steht noch aus.",
        (_, "confirmed") => "Payment confirmed, order complete.",
        (_, "failed") => "Payment failed, order not processed.",
        _ => "Order received, awaiting payment confirmation.",
    }
}

fn final_message(lang: &str) -> &'static str {
    match lang {
        "it" => {
            "L'ordine è in attesa di conferma: riceverai un'e-mail appena il pagamento sarà confermato."
        }
        "de" => {
            "Die Bestellung wartet auf Bestätigung: Sie erhalten eine E-Mail, sobald die Zahlung bestätigt ist."
        }
        _ => {
            "Your order awaits confirmation: you will receive an e-mail as soon as the payment is confirmed."
        }
    }
}

fn labels(lang: &str) -> (&'static str, &'static str, &'static str) {
    match lang {
        "it" => ("Il tuo ordine", "Ordine", "Torna al negozio"),
        "de" => ("Ihre Bestellung", "Bestellung", "Zurück zum Shop"),
        _ => ("Your order", "Order", "Back to the shop"),
    }
}

/// `?session_id=cs_…`.
#[derive(Debug, Deserialize)]
pub struct ReturnQuery {
    session_id: Option<String>,
}

async fn find(
    state: &AdminState,
    company_pk: i64,
    session_id: &str,
) -> Result<Option<(checkout_session::Model, order::Model)>, ApiError> {
    let Some(s) = checkout_session::Entity::find()
        .filter(checkout_session::Column::CompanyPk.eq(company_pk))
        .filter(checkout_session::Column::SessionId.eq(session_id))
        .one(&state.db)
        .await?
    else {
        return Ok(None);
    };
    let o = order::Entity::find_by_id(s.order_id.clone())
        .one(&state.db)
        .await?;
    Ok(o.map(|o| (s, o)))
}

async fn landing(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<String>,
    q: web::Query<ReturnQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let session_id = q
        .session_id
        .as_deref()
        .filter(|s| s.starts_with("cs_") && s.len() < 256)
        .ok_or_else(|| {
            ApiError::bad_request("invalid_session_id", "session_id=cs_… is required")
        })?;
    let livemode = company.environment == "live" || session_id.starts_with("cs_live_");
    // Fulfill now if the payment is through; whatever happens, show the order's state.
    let attempt = tokio::time::timeout(
        Duration::from_secs(8),
        fulfill_checkout(
            &state.db,
            &state.tenants,
            &state.stripe,
            company.id,
            session_id,
            livemode,
            "landing",
        ),
    )
    .await;
    if let Ok(Err(e)) = &attempt {
        tracing::warn!(company_id = %company.company_id, session_id, error = %paygate_web::error_chain(e), "landing-page fulfillment did not complete");
    }
    let lang = language(&req);
    let (title, order_label, back) = labels(lang);
    let found = find(&state, company.id, session_id).await?;
    let (status, order_id, return_url) = match &found {
        Some((_, o)) => (o.status.clone(), o.id.clone(), o.return_url.clone()),
        None => ("open".to_owned(), String::new(), None),
    };
    let st = state_of(&status);
    let back_link = match return_url {
        Some(u) => format!(
            "<a class=\"button\" href=\"{}\">{}</a>",
            escape_html(&u),
            escape_html(back)
        ),
        None => String::new(),
    };
    let status_url = format!(
        "/checkout/{}/sessions/{}/status",
        company.company_id, session_id
    );
    let mut html = TEMPLATE.to_owned();
    for (k, v) in [
        ("lang", escape_html(lang)),
        ("title", escape_html(title)),
        ("state", escape_html(st)),
        ("status_url", escape_html(&status_url)),
        ("final_message", escape_html(final_message(lang))),
        ("message", escape_html(message(lang, st))),
        ("order_label", escape_html(order_label)),
        ("order_id", escape_html(&order_id)),
        ("back_link", back_link),
    ] {
        html = html.replace(&format!("{{{{{k}}}}}"), &v);
    }
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'",
        ))
        .insert_header(("Content-Language", lang))
        .body(html))
}

async fn status(
    req: HttpRequest,
    state: web::Data<AdminState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, session_id) = path.into_inner();
    let company = state.tenants.company(&company_id).await?;
    let (_, o) = find(&state, company.id, &session_id)
        .await?
        .ok_or_else(|| {
            ApiError::not_found("checkout_session_not_found", "no such checkout session")
        })?;
    let lang = language(&req);
    let st = state_of(&o.status);
    Ok(HttpResponse::Ok().json(serde_json::json!({"order_id": o.id, "status": o.status, "state": st, "message": message(lang, st)})))
}
