//! The operator console under `/console`: companies, their users, operators, and the system's
//! health. Every handler takes an [`OperatorSession`](crate::OperatorSession); company changes
//! go through [`paygate_tenant::TenantService`] so caches are invalidated and audit is written.

pub mod companies;
pub mod operators;
pub mod system;

use actix_web::{HttpResponse, web};

use crate::OperatorSession;
use crate::page::redirect;

/// Registers the console pages (inside the guarded `/console` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::get().to(home))
        .configure(companies::configure)
        .configure(operators::configure)
        .configure(system::configure);
}

async fn home(_op: OperatorSession) -> HttpResponse {
    redirect("/console/companies")
}
