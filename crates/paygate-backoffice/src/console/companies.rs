//! `/console/companies`: the tenants, with search.

use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::OperatorSession;
use crate::page::{Page, PageError, render};

/// Registers `/console/companies…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/companies", web::get().to(list));
}

/// A company as the list shows it.
pub struct CompanyRow {
    pub company_id: String,
    pub name: String,
    pub status_key: &'static str,
    pub created_at: i64,
}

#[derive(Template)]
#[template(path = "backoffice/console/companies.html")]
struct CompaniesTemplate {
    ctx: Page,
    search: String,
    companies: Vec<CompanyRow>,
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    search: Option<String>,
}

async fn list(op: OperatorSession, q: web::Query<ListQuery>) -> Result<HttpResponse, PageError> {
    let search = q.search.clone().unwrap_or_default();
    let rows = op
        .tenants()
        .list_companies(None, 500, Some(search.as_str()))
        .await?;
    render(&CompaniesTemplate {
        ctx: op.page("companies.title"),
        search,
        companies: rows
            .into_iter()
            .map(|c| CompanyRow {
                status_key: if c.status == "suspended" {
                    "company_status.suspended"
                } else {
                    "company_status.active"
                },
                company_id: c.company_id,
                name: c.name,
                created_at: c.created_at,
            })
            .collect(),
    })
}
