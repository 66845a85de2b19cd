//! The back office's static files, compiled in: `/static/backoffice.css` and
//! `/static/backoffice.js` (the copy buttons, keyboard access to cards that scroll sideways;
//! every page works without it).

use actix_web::{HttpResponse, web};

const CSS: &str = include_str!("../../../frontend-templates/static/backoffice.css");
const JS: &str = include_str!("../../../frontend-templates/static/backoffice.js");

/// Registers the static files.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/static/backoffice.css", web::get().to(css))
        .route("/static/backoffice.js", web::get().to(js));
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    let mut res = HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "public, max-age=300"))
        .body(body);
    res.headers_mut().insert(
        actix_web::http::header::X_CONTENT_TYPE_OPTIONS,
        actix_web::http::header::HeaderValue::from_static("nosniff"),
    );
    res
}

async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}
