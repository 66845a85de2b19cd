//! `/app/disputes/{id}`: one dispute and its evidence — the workbench (issue 18 part 3).
//!
//! | path | what |
//! | --- | --- |
//! | `GET /disputes/{id}` | the dispute, Stripe's `evidence_details`, the evidence form (pre-filled from the order until something was saved), the file upload, the buttons |
//! | `POST /disputes/{id}/evidence` | `action=draft`: save the evidence in Stripe (`submit=false`) and here; `action=submit`: the same, then the confirmation page |
//! | `GET, POST /disputes/{id}/submit` | the confirmation, then the submission of the saved draft (`submit=true`) |
//! | `POST /disputes/{id}/files` | a file (multipart) to Stripe's files (`purpose=dispute_evidence`); its `file_…` id goes into the chosen file field of the draft |
//! | `GET, POST /disputes/{id}/accept` | the confirmation, then the acceptance (`POST /v1/disputes/{id}/close`) |
//!
//! Everything goes through [`paygate_admin::disputes`] (the same functions as the merchant
//! API) in the page's mode: another company's dispute, or one of the other mode, is "not
//! found". Viewers see the evidence and change nothing (403). After a submission or an
//! acceptance, or once Stripe takes no more evidence, the form is read-only. Every POST ends in
//! a redirect (Post/Redirect/Get) or, with errors, the page again with every error at once.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use paygate_admin::disputes::{
    self as bench, Desk, EvidenceState, FILE_FIELDS, Problem, TEXT_FIELDS, TEXT_LIMIT, Workbench,
    WorkbenchError,
};
use paygate_db::Scope;

use crate::MerchantSession;
use crate::merchant::disputes::{DisputeRow, with_orders};
use crate::merchant::listing::{label, segment};
use crate::merchant::mode::{ModeParam, View};
use crate::page::{FieldErrors, Page, PageError, redirect, redirect_with_flash, render_status};

/// Registers `/app/disputes/{id}…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/disputes/{dispute_id}", web::get().to(detail))
        .route("/disputes/{dispute_id}/evidence", web::post().to(save))
        .route(
            "/disputes/{dispute_id}/submit",
            web::get().to(confirm_submit),
        )
        .route("/disputes/{dispute_id}/submit", web::post().to(submit))
        .route("/disputes/{dispute_id}/files", web::post().to(upload))
        .route(
            "/disputes/{dispute_id}/accept",
            web::get().to(confirm_accept),
        )
        .route("/disputes/{dispute_id}/accept", web::post().to(accept));
}

/// One field of the evidence form.
pub struct FieldView {
    pub name: &'static str,
    pub label: String,
    pub value: String,
    /// A long text (a `<textarea>`).
    pub long: bool,
    pub error: Option<String>,
}

/// The fields whose answer is usually long.
const LONG: [&str; 10] = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "duplicate_charge_explanation",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "shipping_address",
    "uncategorized_text",
];

#[derive(Template)]
#[template(path = "backoffice/app/dispute.html")]
struct DisputeTemplate {
    ctx: Page,
    row: DisputeRow,
    charge: Option<String>,
    payment_intent: Option<String>,
    withdrawn: Option<String>,
    reinstated: Option<String>,
    updated_at: i64,
    submission_count: i32,
    has_evidence: bool,
    past_due: bool,
    /// `open`, `submitted`, `accepted`, `closed`.
    state: &'static str,
    editable: bool,
    is_admin: bool,
    prefilled: bool,
    submitted_at: Option<i64>,
    text_fields: Vec<FieldView>,
    file_fields: Vec<FieldView>,
    /// The form's errors (the total length, the upload).
    errors: FieldErrors,
    /// Characters used of the limit.
    used: usize,
    limit: usize,
    base: String,
    /// The confirmation page of *Accept the dispute*, in the page's mode.
    accept_href: String,
}

fn base_path(id: &str) -> String {
    format!("/app/disputes/{}", segment(id))
}

fn desk(s: &MerchantSession) -> Desk<'_> {
    Desk {
        db: s.db(),
        tenants: s.tenants(),
        stripe: &s.state.stripe,
    }
}

async fn load(s: &MerchantSession, scope: Scope, id: &str) -> Result<Workbench, PageError> {
    bench::load(s.db(), scope, id)
        .await?
        .ok_or(PageError::NotFound)
}

/// The page, showing `values` (or what is recorded / proposed when `None`) and `errors`.
async fn page(
    s: &MerchantSession,
    v: &View,
    w: &Workbench,
    values: Option<BTreeMap<String, String>>,
    problems: &[Problem],
    mut errors: FieldErrors,
) -> Result<DisputeTemplate, PageError> {
    let d = &w.dispute;
    let row = with_orders(s, v.scope, std::slice::from_ref(d))
        .await?
        .pop()
        .ok_or(PageError::NotFound)?;
    let (values, prefilled) = match values {
        Some(v) => (v, false),
        None => bench::form_values(s.db(), v.scope, w).await?,
    };
    let lang = s.lang;
    let problem_text = |field: &str| -> Option<String> {
        problems
            .iter()
            .find(|p| p.field == field)
            .map(|p| match p.code {
                "invalid_file_id" => lang.t("dispute_workbench.invalid_file_id").to_owned(),
                _ => p.message.clone(),
            })
    };
    let view = |name: &'static str| FieldView {
        name,
        label: label(lang, "evidence_field", name),
        value: values.get(name).cloned().unwrap_or_default(),
        long: LONG.contains(&name),
        error: problem_text(name),
    };
    let used: usize = TEXT_FIELDS
        .iter()
        .filter_map(|f| values.get(*f))
        .map(|v| v.trim().encode_utf16().count())
        .sum();
    if problems.iter().any(|p| p.code == "evidence_too_long") {
        errors.add_text(
            "evidence",
            lang.format(
                "dispute_workbench.too_long",
                &[&used.to_string(), &TEXT_LIMIT.to_string()],
            ),
        );
    }
    // Each field's problem in the error summary too, linking to the field.
    for f in TEXT_FIELDS.iter().chain(FILE_FIELDS.iter()) {
        if let Some(text) = problem_text(f) {
            errors.add_text(&format!("ev-{f}"), text);
        }
    }
    let state = w.state();
    let mut ctx = v.page(s, "disputes.detail_title", "/app/disputes");
    ctx.title = lang.format("disputes.detail_title", &[&d.stripe_id]);
    Ok(DisputeTemplate {
        ctx,
        row,
        charge: d.charge_id.clone(),
        payment_intent: d.payment_intent_id.clone(),
        withdrawn: (d.funds_withdrawn > 0).then(|| lang.money(d.funds_withdrawn, &d.currency)),
        reinstated: (d.funds_reinstated > 0).then(|| lang.money(d.funds_reinstated, &d.currency)),
        updated_at: d.updated_at,
        submission_count: d.submission_count,
        has_evidence: d.has_evidence,
        past_due: d.past_due,
        state: state.as_str(),
        editable: state == EvidenceState::Open,
        is_admin: s.is_admin(),
        prefilled,
        submitted_at: w.record.as_ref().and_then(|r| r.submitted_at),
        text_fields: TEXT_FIELDS.iter().map(|f| view(f)).collect(),
        file_fields: FILE_FIELDS.iter().map(|f| view(f)).collect(),
        errors,
        used,
        limit: TEXT_LIMIT,
        base: base_path(&d.stripe_id),
        accept_href: v.href(&format!("{}/accept", base_path(&d.stripe_id))),
    })
}

async fn detail(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let w = load(&s, v.scope, &path).await?;
    let tpl = page(&s, &v, &w, None, &[], FieldErrors::new()).await?;
    render_status(StatusCode::OK, &tpl)
}

/// A workbench error as the page shows it: problems next to their fields (422), the others as
/// a message at the top of the form.
async fn show_error(
    s: &MerchantSession,
    v: &View,
    id: &str,
    values: Option<BTreeMap<String, String>>,
    e: WorkbenchError,
) -> Result<HttpResponse, PageError> {
    let w = load(s, v.scope, id).await?;
    let mut errors = FieldErrors::new();
    let (status, problems) = match e {
        WorkbenchError::NotFound => return Err(PageError::NotFound),
        WorkbenchError::Invalid(p) => (StatusCode::UNPROCESSABLE_ENTITY, p),
        WorkbenchError::NotEditable(_) => {
            errors.add_text(
                "form",
                s.lang.t("dispute_workbench.not_editable").to_owned(),
            );
            (StatusCode::CONFLICT, Vec::new())
        }
        WorkbenchError::InvalidFile(why) => {
            let key = match why {
                "the file is empty" => "dispute_workbench.file_empty",
                "the file is larger than 5 MB" => "dispute_workbench.file_too_large",
                _ => "dispute_workbench.file_type",
            };
            // Keyed by the upload control's id: the error summary links to it.
            errors.add_text("upload-file", s.lang.t(key).to_owned());
            (StatusCode::UNPROCESSABLE_ENTITY, Vec::new())
        }
        WorkbenchError::NoProfile(_) => {
            errors.add_text("form", s.lang.t("dispute_workbench.no_profile").to_owned());
            (StatusCode::UNPROCESSABLE_ENTITY, Vec::new())
        }
        WorkbenchError::Stripe(e) => {
            tracing::warn!(error = %e, "Stripe refused a dispute action");
            errors.add_text(
                "form",
                s.lang
                    .format("dispute_workbench.stripe_error", &[&e.to_string()]),
            );
            (StatusCode::BAD_GATEWAY, Vec::new())
        }
        WorkbenchError::Tenant(t) => return Err(PageError::internal(t)),
        WorkbenchError::Db(d) => return Err(d.into()),
    };
    let tpl = page(s, v, &w, values, &problems, errors).await?;
    render_status(status, &tpl)
}

/// The evidence fields and the other fields (`csrf`, `mode`, `action`) of a posted form.
fn evidence_of(pairs: Vec<(String, String)>) -> (BTreeMap<String, String>, ModeParam, String) {
    let mut evidence = BTreeMap::new();
    let mut mode = ModeParam::default();
    let mut action = String::new();
    for (k, v) in pairs {
        match k.as_str() {
            "csrf" => {}
            "mode" => mode.mode = v,
            "action" => action = v,
            _ => {
                // Only Stripe's fields are kept; the form sends nothing else.
                if TEXT_FIELDS.contains(&k.as_str()) || FILE_FIELDS.contains(&k.as_str()) {
                    evidence.insert(k, v);
                }
            }
        }
    }
    (evidence, mode, action)
}

async fn save(
    s: MerchantSession,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    // A body that is not a form is an empty form (every field then shows as empty).
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let (evidence, mode, action) = evidence_of(pairs);
    let v = View::of(&s, &mode).await?;
    let id = path.into_inner();
    // The two buttons of the form: *Submit* or (anything else) *Save draft*.
    let submit = action == "submit";
    // A draft in Stripe first, either way: the confirmation shows what was saved.
    match bench::save_evidence(desk(&s), v.scope, &s.actor(), &id, &evidence, false).await {
        Ok(w) if submit => Ok(redirect(
            &v.href(&format!("{}/submit", base_path(&w.dispute.stripe_id))),
        )),
        Ok(w) => Ok(redirect_with_flash(
            &v.href(&base_path(&w.dispute.stripe_id)),
            "dispute_workbench.flash_draft_saved",
        )),
        Err(e) => show_error(&s, &v, &id, Some(evidence), e).await,
    }
}

#[derive(Template)]
#[template(path = "backoffice/app/dispute_confirm.html")]
struct ConfirmTemplate {
    ctx: Page,
    amount: String,
    /// `submit` or `accept`.
    what: &'static str,
    action: String,
    back: String,
    /// The evidence to be submitted (label, value).
    evidence: Vec<(String, String)>,
}

async fn confirm(
    s: &MerchantSession,
    v: &View,
    w: &Workbench,
    what: &'static str,
) -> Result<HttpResponse, PageError> {
    let d = &w.dispute;
    let base = base_path(&d.stripe_id);
    if w.state() != EvidenceState::Open {
        return Ok(redirect(&v.href(&base)));
    }
    let recorded = w.recorded().unwrap_or_default();
    let evidence = TEXT_FIELDS
        .iter()
        .chain(FILE_FIELDS.iter())
        .filter_map(|f| {
            recorded
                .get(*f)
                .map(|val| (label(s.lang, "evidence_field", f), val.clone()))
        })
        .collect();
    let mut ctx = v.page(s, "disputes.detail_title", "/app/disputes");
    ctx.title = s.lang.format(
        if what == "submit" {
            "dispute_workbench.confirm_submit_title"
        } else {
            "dispute_workbench.confirm_accept_title"
        },
        &[&d.stripe_id],
    );
    render_status(
        StatusCode::OK,
        &ConfirmTemplate {
            ctx,
            amount: s.lang.money(d.amount, &d.currency),
            what,
            action: format!("{base}/{what}"),
            back: v.href(&base),
            evidence,
        },
    )
}

async fn confirm_submit(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let v = View::of(&s, &mode).await?;
    let w = load(&s, v.scope, &path).await?;
    confirm(&s, &v, &w, "submit").await
}

async fn confirm_accept(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let v = View::of(&s, &mode).await?;
    let w = load(&s, v.scope, &path).await?;
    confirm(&s, &v, &w, "accept").await
}

async fn submit(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Form<ModeParam>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let v = View::of(&s, &mode).await?;
    let id = path.into_inner();
    let w = load(&s, v.scope, &id).await?;
    let evidence = w.recorded().unwrap_or_default();
    match bench::save_evidence(desk(&s), v.scope, &s.actor(), &id, &evidence, true).await {
        Ok(w) => Ok(redirect_with_flash(
            &v.href(&base_path(&w.dispute.stripe_id)),
            "dispute_workbench.flash_submitted",
        )),
        Err(e) => show_error(&s, &v, &id, None, e).await,
    }
}

async fn accept(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Form<ModeParam>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let v = View::of(&s, &mode).await?;
    let id = path.into_inner();
    match bench::accept(desk(&s), v.scope, &s.actor(), &id).await {
        Ok(w) => Ok(redirect_with_flash(
            &v.href(&base_path(&w.dispute.stripe_id)),
            "dispute_workbench.flash_accepted",
        )),
        Err(e) => show_error(&s, &v, &id, None, e).await,
    }
}

async fn upload(
    s: MerchantSession,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // The guard found the CSRF token in it, so the body parsed; a broken one has no file.
    let parts = crate::multipart::parse(content_type, &body).unwrap_or_default();
    let text = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name && p.filename.is_none())
            .and_then(|p| String::from_utf8(p.data.clone()).ok())
            .unwrap_or_default()
    };
    let mode = ModeParam { mode: text("mode") };
    let field = text("field");
    let v = View::of(&s, &mode).await?;
    let id = path.into_inner();
    let file = parts
        .iter()
        .find(|p| p.name == "file" && p.filename.as_deref().is_some_and(|f| !f.is_empty()));
    let Some(file) = file else {
        return show_error(
            &s,
            &v,
            &id,
            None,
            WorkbenchError::InvalidFile("the file is empty"),
        )
        .await;
    };
    let filename = file.filename.clone().unwrap_or_default();
    let ctype = file
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    match bench::upload_file(
        desk(&s),
        v.scope,
        &s.actor(),
        &id,
        &field,
        &filename,
        &ctype,
        file.data.clone(),
    )
    .await
    {
        Ok(_) => Ok(redirect_with_flash(
            &v.href(&base_path(&id)),
            "dispute_workbench.flash_uploaded",
        )),
        Err(e) => show_error(&s, &v, &id, None, e).await,
    }
}
