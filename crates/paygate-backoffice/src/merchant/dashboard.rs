//! `GET /app`: the company at a glance, with the callback URL to register in Stripe.

use actix_web::{HttpResponse, web};
use askama::Template;
use sea_orm::EntityTrait;

use paygate_db::entities::company;

use crate::MerchantSession;
use crate::page::{Page, PageError, render};

/// Registers `/app`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(dashboard));
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
}

async fn dashboard(s: MerchantSession) -> Result<HttpResponse, PageError> {
    // Fresh from the database (the session carries only what every page needs).
    let company = company::Entity::find_by_id(s.company_pk)
        .one(s.db())
        .await?
        .ok_or(PageError::NotFound)?;
    let out = s.tenants().company_out(&company);
    render(&DashboardTemplate {
        ctx: s.page("dashboard.title"),
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
    })
}
