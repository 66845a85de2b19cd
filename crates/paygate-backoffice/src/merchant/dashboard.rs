//! `GET /app`: the company at a glance, with the callback URL to register in Stripe, and its data
//! in one mode ([`super::mode`]: `?mode=test|live`, the company's environment by default) — how
//! many events and orders Paygate holds and how many disputes wait for the merchant's evidence,
//! each a link to its list in that mode.

use actix_web::{HttpResponse, web};
use askama::Template;
use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};

use paygate_db::entities::dispute;

use crate::MerchantSession;
use crate::merchant::disputes::NEEDS_RESPONSE;
use crate::merchant::mode::{ModeParam, View};
use crate::page::{Page, PageError, render};

/// Registers `/app`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(dashboard));
}

/// The company's data in the page's mode.
struct Counts {
    events: u64,
    events_href: String,
    orders: u64,
    orders_href: String,
    disputes_open: u64,
    disputes_href: String,
}

#[derive(Template)]
#[template(path = "backoffice/app/dashboard.html")]
struct DashboardTemplate {
    ctx: Page,
    company_name: String,
    company_id: String,
    status_key: &'static str,
    environment_key: &'static str,
    role_key: &'static str,
    stripe_enabled: bool,
    suspended: bool,
    callback_url: String,
    counts: Counts,
    /// The connection's state when it asks for attention (issue 17): its sentence.
    connection_alert: Option<(String, String)>,
}

async fn dashboard(
    s: MerchantSession,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let company = &v.company;
    let out = s.tenants().company_out(company);
    let counts = Counts {
        events: v.scope.inbox_events().count(s.db()).await?,
        events_href: v.href("/app/events"),
        orders: v.scope.orders().count(s.db()).await?,
        orders_href: v.href("/app/orders"),
        disputes_open: v
            .scope
            .disputes()
            .filter(dispute::Column::Status.is_in(NEEDS_RESPONSE))
            .count(s.db())
            .await?,
        disputes_href: v.href("/app/disputes"),
    };
    render(&DashboardTemplate {
        ctx: v.page(&s, "dashboard.title", "/app"),
        company_name: company.name.clone(),
        company_id: company.company_id.clone(),
        status_key: if company.status == "suspended" {
            "company_status.suspended"
        } else {
            "company_status.active"
        },
        environment_key: if company.environment == "live" {
            "environment.live"
        } else {
            "environment.test"
        },
        role_key: crate::merchant::users::role_key(s.role),
        stripe_enabled: company.stripe_enabled,
        suspended: company.status == "suspended",
        callback_url: out.callback_url,
        counts,
        connection_alert: company
            .stripe_connection
            .as_deref()
            .filter(|st| *st != "ok")
            .map(|st| {
                (
                    st.to_owned(),
                    s.lang.t(&format!("connection_state.{st}")).to_owned(),
                )
            }),
    })
}
