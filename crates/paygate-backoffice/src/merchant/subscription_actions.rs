//! The merchant's actions on subscriptions and customers (issue 19), in the back office:
//! *Cancel now*, *Cancel at period end*, *Resume* on a subscription and *Customer portal link*
//! on a customer. The pages of one subscription or customer show them as links
//! ([`subscription_buttons`], [`customer_buttons`], rendered by the partial
//! `backoffice/app/subscription_actions.html`); each leads to a page of its own:
//!
//! - `GET /app/subscriptions/{id}/{action}` (`cancel-now`, `cancel-at-period-end`, `resume`):
//!   the confirmation page, saying what will happen; its form posts to the same path, with a
//!   hidden `confirm=yes` (a post without it only shows the confirmation again), and answers
//!   with a redirect to the subscription's page and a flash (Post/Redirect/Get). A refusal
//!   (the subscription ended, nothing to resume, no active profile, Stripe refused) shows the
//!   confirmation page again with the reason.
//! - `GET /app/customers/{id}/portal`: a form asking where the portal's "return" link leads;
//!   its post opens a Stripe customer portal session and redirects back to the form, whose GET
//!   shows the link once (Post/Redirect/Get through [`crate::oneshot`]: a reload opens no second
//!   session). The link is a short-lived credential for the customer's billing, kept nowhere
//!   else, shown once (as a new API key is).
//!
//! Admins only: a viewer sees no buttons and gets 403 on every one of these paths. Every page
//! shows one mode (`?mode=`, the hidden `mode` field of the forms, [`super::mode`]); the object
//! is found in the company in that mode, so another company's subscription, or one of the other
//! mode, is "not found". What is done, with which Stripe call, idempotency key and local update,
//! is [`paygate_admin::subscription_actions`], the same code as the merchant API's.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use paygate_admin::subscription_actions::{
    self as domain, ActionError, Billing, SubscriptionAction,
};
use paygate_db::Mode;
use paygate_db::entities::{customer, subscription};

use crate::MerchantSession;
use crate::merchant::listing::segment;
use crate::merchant::mode::{ModeParam, View};
use crate::page::{
    FieldErrors, Page, PageError, mode_href, redirect, redirect_with_flash, render_status,
};

/// The [`crate::oneshot`] slot of a portal link just made: (customer id, return URL, link).
const PORTAL_LINK: &str = "oneshot:subscription_actions.portal_link";

/// Registers `/app/subscriptions/{id}/{action}` and `/app/customers/{id}/portal`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/subscriptions/{subscription_id}/{action}",
        web::get().to(confirm),
    )
    .route(
        "/subscriptions/{subscription_id}/{action}",
        web::post().to(act),
    )
    .route(
        "/customers/{customer_id}/portal",
        web::get().to(portal_form),
    )
    .route(
        "/customers/{customer_id}/portal",
        web::post().to(portal_create),
    );
}

/// An action link of an object's page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionButton {
    /// The confirmation (or form) page, in the page's mode.
    pub href: String,
    /// The catalogue key of its label.
    pub label_key: &'static str,
    /// Whether it ends or changes something for good (shown in red).
    pub danger: bool,
}

/// The path segment of an action (`cancel-now`, `cancel-at-period-end`, `resume`).
fn slug(a: SubscriptionAction) -> &'static str {
    match a {
        SubscriptionAction::CancelNow => "cancel-now",
        SubscriptionAction::CancelAtPeriodEnd => "cancel-at-period-end",
        SubscriptionAction::Resume => "resume",
    }
}

fn from_slug(s: &str) -> Option<SubscriptionAction> {
    [
        SubscriptionAction::CancelNow,
        SubscriptionAction::CancelAtPeriodEnd,
        SubscriptionAction::Resume,
    ]
    .into_iter()
    .find(|a| slug(*a) == s)
}

/// What the texts of an action are (`subscription_actions.<x>_…`).
fn key(a: SubscriptionAction, what: &str) -> &'static str {
    match (a, what) {
        (SubscriptionAction::CancelNow, "title") => "subscription_actions.cancel_now_title",
        (SubscriptionAction::CancelNow, "warning") => "subscription_actions.cancel_now_warning",
        (SubscriptionAction::CancelNow, "submit") => "subscription_actions.cancel_now_submit",
        (SubscriptionAction::CancelNow, "flash") => "subscription_actions.flash_canceled",
        (SubscriptionAction::CancelNow, _) => "subscription_actions.cancel_now",
        (SubscriptionAction::CancelAtPeriodEnd, "title") => {
            "subscription_actions.cancel_at_period_end_title"
        }
        (SubscriptionAction::CancelAtPeriodEnd, "warning") => {
            "subscription_actions.cancel_at_period_end_warning"
        }
        (SubscriptionAction::CancelAtPeriodEnd, "submit") => {
            "subscription_actions.cancel_at_period_end_submit"
        }
        (SubscriptionAction::CancelAtPeriodEnd, "flash") => {
            "subscription_actions.flash_cancel_scheduled"
        }
        (SubscriptionAction::CancelAtPeriodEnd, _) => "subscription_actions.cancel_at_period_end",
        (SubscriptionAction::Resume, "title") => "subscription_actions.resume_title",
        (SubscriptionAction::Resume, "warning") => "subscription_actions.resume_warning",
        (SubscriptionAction::Resume, "submit") => "subscription_actions.resume_submit",
        (SubscriptionAction::Resume, "flash") => "subscription_actions.flash_resumed",
        (SubscriptionAction::Resume, _) => "subscription_actions.resume",
    }
}

/// The subscription's page, in `mode`.
pub fn subscription_href(id: &str, mode: Mode) -> String {
    mode_href(&format!("/app/subscriptions/{}", segment(id)), mode)
}

/// The customer's page, in `mode`.
pub fn customer_href(id: &str, mode: Mode) -> String {
    mode_href(&format!("/app/customers/{}", segment(id)), mode)
}

/// The action links of a subscription's page: those the subscription offers now, and none at
/// all for a viewer.
pub fn subscription_buttons(
    is_admin: bool,
    mode: Mode,
    row: &subscription::Model,
) -> Vec<ActionButton> {
    if !is_admin {
        return Vec::new();
    }
    [
        SubscriptionAction::CancelAtPeriodEnd,
        SubscriptionAction::CancelNow,
        SubscriptionAction::Resume,
    ]
    .into_iter()
    .filter(|a| a.applies_to(row))
    .map(|a| ActionButton {
        href: mode_href(
            &format!(
                "/app/subscriptions/{}/{}",
                segment(&row.stripe_subscription_id),
                slug(a)
            ),
            mode,
        ),
        label_key: key(a, "label"),
        danger: a != SubscriptionAction::Resume,
    })
    .collect()
}

/// The action links of a customer's page: the portal link (not for a deleted customer), none
/// for a viewer.
pub fn customer_buttons(is_admin: bool, mode: Mode, row: &customer::Model) -> Vec<ActionButton> {
    if !is_admin || row.deleted {
        return Vec::new();
    }
    vec![ActionButton {
        href: mode_href(
            &format!("/app/customers/{}/portal", segment(&row.stripe_customer_id)),
            mode,
        ),
        label_key: "subscription_actions.portal",
        danger: false,
    }]
}

fn billing(s: &MerchantSession) -> Billing<'_> {
    Billing {
        db: s.db(),
        tenants: s.tenants(),
        stripe: &s.state.stripe,
    }
}

/// The reason of a refusal, in the page's language.
fn refusal(lang: crate::i18n::Lang, e: &ActionError) -> Option<(StatusCode, String)> {
    let (status, k) = match e {
        ActionError::Ended(_) => (StatusCode::CONFLICT, "subscription_actions.ended"),
        ActionError::NotResumable => (StatusCode::CONFLICT, "subscription_actions.not_resumable"),
        ActionError::CustomerDeleted => (
            StatusCode::CONFLICT,
            "subscription_actions.customer_deleted",
        ),
        ActionError::NoProfile(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "subscription_actions.no_profile",
        ),
        ActionError::Stripe(err) => {
            return Some((
                StatusCode::BAD_GATEWAY,
                lang.format("subscription_actions.stripe_refused", &[&err.to_string()]),
            ));
        }
        _ => return None,
    };
    Some((status, lang.t(k).to_owned()))
}

#[derive(Template)]
#[template(path = "backoffice/app/subscription_action_confirm.html")]
struct ConfirmTemplate {
    ctx: Page,
    /// The subscription (`sub_…`).
    id: String,
    status: String,
    period_end: Option<i64>,
    back_href: String,
    action_href: String,
    mode: &'static str,
    warning_key: &'static str,
    submit_key: &'static str,
    danger: bool,
    errors: FieldErrors,
}

/// The action a path names (404 for any other).
fn action_of(path: &(String, String)) -> Result<SubscriptionAction, PageError> {
    from_slug(&path.1).ok_or(PageError::NotFound)
}

async fn confirm_page(
    s: &MerchantSession,
    view: &View,
    id: &str,
    action: SubscriptionAction,
    status: StatusCode,
    errors: FieldErrors,
) -> Result<HttpResponse, PageError> {
    let row = domain::find_subscription(s.db(), view.scope, id)
        .await?
        .ok_or(PageError::NotFound)?;
    let back_href = subscription_href(&row.stripe_subscription_id, view.mode());
    render_status(
        status,
        &ConfirmTemplate {
            ctx: view.page(s, key(action, "title"), "/app/subscriptions"),
            action_href: format!(
                "/app/subscriptions/{}/{}",
                segment(&row.stripe_subscription_id),
                slug(action)
            ),
            id: row.stripe_subscription_id,
            status: crate::merchant::listing::label(s.lang, "subscription_status", &row.status),
            period_end: row.current_period_end,
            back_href,
            mode: view.mode().as_str(),
            warning_key: key(action, "warning"),
            submit_key: key(action, "submit"),
            danger: action != SubscriptionAction::Resume,
            errors,
        },
    )
}

async fn confirm(
    s: MerchantSession,
    path: web::Path<(String, String)>,
    q: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let action = action_of(&path)?;
    let view = View::of(&s, &q).await?;
    confirm_page(
        &s,
        &view,
        &path.0,
        action,
        StatusCode::OK,
        FieldErrors::new(),
    )
    .await
}

/// The confirmation page's form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ActForm {
    mode: String,
    confirm: String,
}

async fn act(
    s: MerchantSession,
    path: web::Path<(String, String)>,
    form: web::Form<ActForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let action = action_of(&path)?;
    let form = form.into_inner();
    let view = View::of(
        &s,
        &ModeParam {
            mode: form.mode.clone(),
        },
    )
    .await?;
    let id = path.into_inner().0;
    if form.confirm != "yes" {
        // Not confirmed: nothing is done, the confirmation is shown.
        return confirm_page(&s, &view, &id, action, StatusCode::OK, FieldErrors::new()).await;
    }
    match domain::perform(billing(&s), view.scope, &s.actor(), &id, action).await {
        Ok(row) => Ok(redirect_with_flash(
            &subscription_href(&row.stripe_subscription_id, view.mode()),
            key(action, "flash"),
        )),
        Err(ActionError::SubscriptionNotFound) => Err(PageError::NotFound),
        Err(e) => {
            let Some((status, text)) = refusal(s.lang, &e) else {
                return Err(PageError::internal(e));
            };
            tracing::info!(subscription = %id, error = %e, "subscription action refused");
            let mut errors = FieldErrors::new();
            errors.add_text("form", text);
            confirm_page(&s, &view, &id, action, status, errors).await
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/app/customer_portal.html")]
struct PortalTemplate {
    ctx: Page,
    /// The customer (`cus_…`).
    id: String,
    email: Option<String>,
    back_href: String,
    action_href: String,
    mode: &'static str,
    form_return_url: String,
    errors: FieldErrors,
    /// The portal's URL, once made.
    url: Option<String>,
}

async fn portal_page(
    s: &MerchantSession,
    view: &View,
    id: &str,
    status: StatusCode,
    form_return_url: String,
    errors: FieldErrors,
    url: Option<String>,
) -> Result<HttpResponse, PageError> {
    let row = domain::find_customer(s.db(), view.scope, id)
        .await?
        .ok_or(PageError::NotFound)?;
    render_status(
        status,
        &PortalTemplate {
            ctx: view.page(s, "subscription_actions.portal_title", "/app/customers"),
            action_href: format!("/app/customers/{}/portal", segment(&row.stripe_customer_id)),
            back_href: customer_href(&row.stripe_customer_id, view.mode()),
            id: row.stripe_customer_id,
            email: row.email,
            mode: view.mode().as_str(),
            form_return_url,
            errors,
            url,
        },
    )
}

async fn portal_form(
    s: MerchantSession,
    path: web::Path<String>,
    q: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let view = View::of(&s, &q).await?;
    // The link the post just made (for this customer only), once.
    let (return_url, url) = match s.take_once::<(String, String, String)>(PORTAL_LINK) {
        Some((customer, return_url, url)) if customer == *path => (return_url, Some(url)),
        _ => (String::new(), None),
    };
    portal_page(
        &s,
        &view,
        &path,
        StatusCode::OK,
        return_url,
        FieldErrors::new(),
        url,
    )
    .await
}

/// The portal form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PortalForm {
    mode: String,
    return_url: String,
}

async fn portal_create(
    s: MerchantSession,
    path: web::Path<String>,
    form: web::Form<PortalForm>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let form = form.into_inner();
    let view = View::of(
        &s,
        &ModeParam {
            mode: form.mode.clone(),
        },
    )
    .await?;
    let id = path.into_inner();
    let return_url = form.return_url.trim().to_owned();
    if !domain::is_http_url(&return_url) {
        let mut errors = FieldErrors::new();
        errors.add_text(
            "return_url",
            s.lang
                .t("subscription_actions.return_url_invalid")
                .to_owned(),
        );
        return portal_page(
            &s,
            &view,
            &id,
            StatusCode::UNPROCESSABLE_ENTITY,
            return_url,
            errors,
            None,
        )
        .await;
    }
    match domain::portal_session(billing(&s), view.scope, &s.actor(), &id, &return_url).await {
        Ok(session) => {
            // Shown once by the GET after the redirect: a reload opens no second session.
            s.put_once(PORTAL_LINK, &(id.clone(), return_url, session.url));
            Ok(redirect(
                &view.href(&format!("/app/customers/{}/portal", segment(&id))),
            ))
        }
        Err(ActionError::CustomerNotFound) => Err(PageError::NotFound),
        Err(e) => {
            let Some((status, text)) = refusal(s.lang, &e) else {
                return Err(PageError::internal(e));
            };
            let mut errors = FieldErrors::new();
            errors.add_text("form", text);
            portal_page(&s, &view, &id, status, return_url, errors, None).await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, cancel_at_period_end: bool) -> subscription::Model {
        subscription::Model {
            id: 1,
            company_pk: 1,
            livemode: false,
            stripe_subscription_id: "sub_1".into(),
            stripe_customer_id: "cus_1".into(),
            status: status.into(),
            items_json: "[]".into(),
            currency: None,
            current_period_start: None,
            current_period_end: None,
            trial_end: None,
            cancel_at_period_end,
            cancel_at: None,
            canceled_at: None,
            ended_at: None,
            pause_collection: None,
            latest_invoice_id: None,
            stripe_created: 0,
            last_event_created: 0,
            updated_at: 0,
        }
    }

    fn labels(b: &[ActionButton]) -> Vec<&'static str> {
        b.iter().map(|b| b.label_key).collect()
    }

    #[test]
    fn buttons_follow_the_subscription_and_the_role() {
        let active = subscription_buttons(true, Mode::Test, &row("active", false));
        assert_eq!(
            labels(&active),
            [
                "subscription_actions.cancel_at_period_end",
                "subscription_actions.cancel_now"
            ]
        );
        assert_eq!(
            active[0].href,
            "/app/subscriptions/sub_1/cancel-at-period-end?mode=test"
        );
        assert_eq!(
            labels(&subscription_buttons(
                true,
                Mode::Live,
                &row("active", true)
            )),
            [
                "subscription_actions.cancel_now",
                "subscription_actions.resume"
            ]
        );
        assert_eq!(
            labels(&subscription_buttons(
                true,
                Mode::Test,
                &row("paused", false)
            )),
            [
                "subscription_actions.cancel_at_period_end",
                "subscription_actions.cancel_now",
                "subscription_actions.resume"
            ]
        );
        assert!(subscription_buttons(true, Mode::Test, &row("canceled", false)).is_empty());
        assert!(subscription_buttons(false, Mode::Test, &row("active", false)).is_empty());
    }

    #[test]
    fn slugs_round_trip() {
        for a in [
            SubscriptionAction::CancelNow,
            SubscriptionAction::CancelAtPeriodEnd,
            SubscriptionAction::Resume,
        ] {
            assert_eq!(from_slug(slug(a)), Some(a));
        }
        assert_eq!(from_slug("delete"), None);
    }
}
