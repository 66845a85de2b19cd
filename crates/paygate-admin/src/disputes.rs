//! The dispute workbench (issue 18 part 3): what a merchant *does* about a dispute — save the
//! evidence as a draft, submit it, upload evidence files, or accept the dispute. The merchant
//! API (`POST /api/v1/disputes/{id}/evidence`, `POST /api/v1/disputes/{id}/close`) and the back
//! office's dispute page call the same functions here ([`save_evidence`], [`accept`],
//! [`upload_file`]).
//!
//! Policy:
//! - The dispute is found through the caller's company *and mode* ([`Scope`]): another
//!   company's dispute, or one of the other mode, is "not found" and Stripe is never called.
//!   The call goes out with the secret key of the active profile of that same mode.
//! - Evidence is Stripe's dispute evidence object: the text fields ([`TEXT_FIELDS`]) and the
//!   file fields ([`FILE_FIELDS`], each a `file_…` id from an upload with purpose
//!   `dispute_evidence`). Every problem is reported at once ([`validate`]); the text fields
//!   together hold at most [`TEXT_LIMIT`] characters (Stripe's limit).
//! - What Paygate sent is recorded in `dispute_evidence` (one row per dispute): a draft
//!   (`submit=false` in Stripe) survives and the form shows it; before anything was saved the
//!   form is pre-filled from what Paygate knows of the order ([`prefill`]).
//! - Submitting is claimed in the database first (`draft` → `submitting`, a conditional update):
//!   two submissions racing send one `submit=true`. Its idempotency key is derived from the
//!   dispute and the evidence, so a retry after a lost answer is the same request to Stripe.
//!   A claim left behind by a crash is taken over after [`CLAIM_SECS`]. After submission, or
//!   after the dispute was accepted, or once Stripe no longer waits for evidence (the
//!   dispute's status), the evidence is read-only: 409 `dispute_not_editable`.
//! - Drafts, closes and uploads carry a fresh idempotency key of ours per action (a retry inside
//!   the Stripe client reuses it).
//! - Stripe's answer updates only what only grows (`submission_count`, `has_evidence`); the
//!   status comes with the events the action causes.
//! - Every action is audited (`dispute.evidence_saved`, `dispute.evidence_submitted`,
//!   `dispute.accepted`, `dispute.file_uploaded`), with the actor.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, DatabaseConnection, DbErr, QueryFilter, QueryOrder,
    Set,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use paygate_db::entities::{
    checkout_session, customer, dispute, dispute_evidence, line_item, order, payment_intent,
};
use paygate_db::{Mode, Scope, new_id, now_ms};
use paygate_stripe::{FileUpload, StripeClient, StripeError, UpdateDispute};
use paygate_tenant::TenantService;
use paygate_tenant::error::TenantError;
use paygate_web::ApiError;

use crate::AdminState;
use crate::error_body::ErrorBody;
use crate::merchant::MerchantPrincipal;

/// The text fields of Stripe's dispute evidence object.
pub const TEXT_FIELDS: [&str; 18] = [
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "duplicate_charge_id",
    "product_description",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_tracking_number",
    "uncategorized_text",
];

/// The file fields of Stripe's dispute evidence object (each a `file_…` id).
pub const FILE_FIELDS: [&str; 9] = [
    "cancellation_policy",
    "customer_communication",
    "customer_signature",
    "duplicate_charge_documentation",
    "receipt",
    "refund_policy",
    "service_documentation",
    "shipping_documentation",
    "uncategorized_file",
];

/// The most characters the text fields may hold together (Stripe's limit).
pub const TEXT_LIMIT: usize = 20_000;

/// The largest evidence file Paygate passes on (Stripe takes up to 5 MB for disputes).
pub const FILE_MAX_BYTES: usize = 5 * 1024 * 1024;

/// The file types Stripe takes as dispute evidence.
pub const FILE_TYPES: [&str; 3] = ["application/pdf", "image/jpeg", "image/png"];

/// How long a claim (`submitting`, `accepting`) holds before another attempt may take it over.
pub const CLAIM_SECS: i64 = 300;

/// The statuses in which Stripe waits for the merchant's evidence.
pub const NEEDS_RESPONSE: [&str; 2] = ["needs_response", "warning_needs_response"];

/// One problem with the evidence, on its field (`evidence` for the total).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub field: String,
    /// `unknown_field`, `invalid_file_id`, `evidence_too_long`.
    pub code: &'static str,
    pub message: String,
}

/// The evidence to send: only the fields with a value, trimmed at the ends; every problem at
/// once otherwise.
///
/// # Errors
///
/// Every [`Problem`] found.
pub fn validate(
    input: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, Vec<Problem>> {
    let mut problems = Vec::new();
    let mut out = BTreeMap::new();
    let mut total = 0usize;
    for (k, v) in input {
        let v = v.trim();
        if TEXT_FIELDS.contains(&k.as_str()) {
            total += v.encode_utf16().count();
        } else if FILE_FIELDS.contains(&k.as_str()) {
            let ok = v.is_empty()
                || (v.starts_with("file_")
                    && v.len() <= 255
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            if !ok {
                problems.push(Problem {
                    field: k.clone(),
                    code: "invalid_file_id",
                    message: format!("{k}: must be the id of an uploaded file (file_…)"),
                });
                continue;
            }
        } else {
            problems.push(Problem {
                field: k.clone(),
                code: "unknown_field",
                message: format!("{k}: not a field of Stripe's dispute evidence"),
            });
            continue;
        }
        if !v.is_empty() {
            out.insert(k.clone(), v.to_owned());
        }
    }
    if total > TEXT_LIMIT {
        problems.push(Problem {
            field: "evidence".into(),
            code: "evidence_too_long",
            message: format!(
                "the text fields hold {total} characters together; Stripe takes at most {TEXT_LIMIT}"
            ),
        });
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Why an action was not done. Nothing changed, locally or in Stripe, except for
/// [`WorkbenchError::Stripe`] when Stripe's answer was lost (the draft stays a draft; a retry
/// of a submission is the same request to Stripe).
#[derive(Debug, thiserror::Error)]
pub enum WorkbenchError {
    #[error("no such dispute")]
    NotFound,
    #[error("{0}")]
    NotEditable(&'static str),
    #[error("{}", .0.iter().map(|p| p.message.as_str()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Problem>),
    #[error("the file: {0}")]
    InvalidFile(&'static str),
    #[error("the company has no active {0} profile")]
    NoProfile(Mode),
    #[error("Stripe refused: {0}")]
    Stripe(#[source] StripeError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error("database error")]
    Db(#[from] DbErr),
}

/// 404 `dispute_not_found`, 409 `dispute_not_editable`, 422 `validation_failed` (every problem
/// in the message; the first one's field) / `invalid_file` / `active_profile_missing`, 502
/// `stripe_error` (Stripe's message, never a key), 500 otherwise.
impl From<WorkbenchError> for ApiError {
    fn from(e: WorkbenchError) -> Self {
        let message = e.to_string();
        match e {
            WorkbenchError::NotFound => ApiError::not_found("dispute_not_found", message),
            WorkbenchError::NotEditable(_) => ApiError::conflict("dispute_not_editable", message),
            WorkbenchError::Invalid(problems) => {
                let err = ApiError::unprocessable("validation_failed", message);
                match problems.first() {
                    Some(p) => err.with_field(p.field.clone()),
                    None => err,
                }
            }
            WorkbenchError::InvalidFile(_) => ApiError::unprocessable("invalid_file", message),
            WorkbenchError::NoProfile(_) => {
                ApiError::unprocessable("active_profile_missing", message)
            }
            WorkbenchError::Stripe(_) => {
                ApiError::new(StatusCode::BAD_GATEWAY, "stripe_error", message)
            }
            WorkbenchError::Tenant(t) => ApiError::from(t),
            WorkbenchError::Db(db) => ApiError::from(db),
        }
    }
}

/// What the workbench needs.
#[derive(Clone, Copy, Debug)]
pub struct Desk<'a> {
    pub db: &'a DatabaseConnection,
    pub tenants: &'a TenantService,
    pub stripe: &'a StripeClient,
}

/// A dispute with its recorded evidence.
#[derive(Clone, Debug)]
pub struct Workbench {
    pub dispute: dispute::Model,
    pub record: Option<dispute_evidence::Model>,
}

/// Where the evidence of a dispute stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvidenceState {
    /// Nothing saved yet, or a draft: the form can be changed.
    Open,
    /// Submitted through Paygate.
    Submitted,
    /// The merchant accepted the dispute.
    Accepted,
    /// Stripe no longer waits for evidence (the dispute's status).
    Closed,
}

impl EvidenceState {
    /// `open`, `submitted`, `accepted`, `closed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Submitted => "submitted",
            Self::Accepted => "accepted",
            Self::Closed => "closed",
        }
    }
}

impl Workbench {
    /// Where the evidence stands.
    pub fn state(&self) -> EvidenceState {
        match self.record.as_ref().map(|r| r.status.as_str()) {
            Some("submitted") => EvidenceState::Submitted,
            Some("accepted") => EvidenceState::Accepted,
            _ if !NEEDS_RESPONSE.contains(&self.dispute.status.as_str()) => EvidenceState::Closed,
            _ => EvidenceState::Open,
        }
    }

    /// The evidence recorded (draft or submitted), if any.
    pub fn recorded(&self) -> Option<BTreeMap<String, String>> {
        self.record
            .as_ref()
            .map(|r| serde_json::from_str(&r.fields).unwrap_or_default())
    }

    fn not_editable(&self) -> Option<WorkbenchError> {
        let why = match self.state() {
            EvidenceState::Open => {
                let busy = self.record.as_ref().is_some_and(|r| {
                    matches!(r.status.as_str(), "submitting" | "accepting")
                        && r.updated_at > now_ms() - CLAIM_SECS * 1000
                });
                if busy {
                    "the dispute is being submitted or accepted right now"
                } else {
                    return None;
                }
            }
            EvidenceState::Submitted => "the evidence was submitted: it can no longer change",
            EvidenceState::Accepted => "the dispute was accepted: it takes no evidence",
            EvidenceState::Closed => "Stripe no longer takes evidence for this dispute",
        };
        Some(WorkbenchError::NotEditable(why))
    }
}

/// The dispute `stripe_id` of `scope`, with its recorded evidence.
///
/// # Errors
///
/// A database error.
pub async fn load(
    db: &DatabaseConnection,
    scope: Scope,
    stripe_id: &str,
) -> Result<Option<Workbench>, DbErr> {
    let Some(dispute) = scope
        .disputes()
        .filter(dispute::Column::StripeId.eq(stripe_id))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let record = scope
        .find::<dispute_evidence::Entity>()
        .filter(dispute_evidence::Column::DisputeId.eq(stripe_id))
        .one(db)
        .await?;
    Ok(Some(Workbench { dispute, record }))
}

const ZERO_DECIMAL: [&str; 16] = [
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// `19.99 EUR` (plain, for evidence text the bank reads).
fn plain_money(minor: i64, currency: &str) -> String {
    let cur = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str()) {
        format!("{minor} {cur}")
    } else {
        let sign = if minor < 0 { "-" } else { "" };
        let a = minor.unsigned_abs();
        format!("{sign}{}.{:02} {cur}", a / 100, a % 100)
    }
}

fn date_of_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The order a dispute is about (by its payment intent, else its charge), if Paygate has it.
async fn order_of(
    db: &DatabaseConnection,
    scope: Scope,
    d: &dispute::Model,
) -> Result<Option<order::Model>, DbErr> {
    let mut on = Condition::any();
    let mut any = false;
    if let Some(pi) = &d.payment_intent_id {
        on = on.add(order::Column::PaymentIntentId.eq(pi.as_str()));
        any = true;
    }
    if let Some(ch) = &d.charge_id {
        on = on.add(order::Column::ChargeId.eq(ch.as_str()));
        any = true;
    }
    if !any {
        return Ok(None);
    }
    scope.orders().filter(on).one(db).await
}

/// The evidence Paygate can propose from what it knows of the order: the customer's e-mail
/// and name, the line items and amount (`product_description`), the dates (`service_date`,
/// `uncategorized_text`).
///
/// # Errors
///
/// A database error.
pub async fn prefill(
    db: &DatabaseConnection,
    scope: Scope,
    d: &dispute::Model,
) -> Result<BTreeMap<String, String>, DbErr> {
    let mut out = BTreeMap::new();
    let Some(o) = order_of(db, scope, d).await? else {
        return Ok(out);
    };
    let session = match &o.checkout_session_id {
        Some(cs) => {
            scope
                .checkout_sessions()
                .filter(checkout_session::Column::SessionId.eq(cs.as_str()))
                .one(db)
                .await?
        }
        None => None,
    };
    let email = o
        .customer_email
        .clone()
        .or_else(|| session.as_ref().and_then(|s| s.customer_email.clone()));
    // The customer's name, when Paygate holds the Stripe customer of the payment.
    let pi_customer = match &o.payment_intent_id {
        Some(pi) => scope
            .payment_intents()
            .filter(payment_intent::Column::StripeId.eq(pi.as_str()))
            .one(db)
            .await?
            .and_then(|p| p.customer),
        None => None,
    };
    if let Some(cus) = pi_customer {
        let c = scope
            .customers()
            .filter(customer::Column::StripeCustomerId.eq(cus.as_str()))
            .one(db)
            .await?;
        if let Some(name) = c.and_then(|c| c.name).filter(|n| !n.trim().is_empty()) {
            out.insert("customer_name".to_owned(), name);
        }
    }
    if let Some(e) = email.filter(|e| !e.trim().is_empty()) {
        out.insert("customer_email_address".to_owned(), e);
    }
    let currency = o.currency.clone().unwrap_or_else(|| d.currency.clone());
    let mut lines = Vec::new();
    if let Some(cs) = &o.checkout_session_id {
        let items = scope
            .line_items()
            .filter(line_item::Column::SessionId.eq(cs.as_str()))
            .order_by_asc(line_item::Column::Id)
            .all(db)
            .await?;
        for li in items {
            let what = li.description.unwrap_or_else(|| "item".to_owned());
            let cur = li.currency.unwrap_or_else(|| currency.clone());
            lines.push(format!(
                "{} × {what} ({})",
                li.quantity.unwrap_or(1),
                plain_money(li.amount_total, &cur)
            ));
        }
    }
    if lines.is_empty()
        && let Some(desc) = o.description.clone().filter(|s| !s.trim().is_empty())
    {
        lines.push(desc);
    }
    if let Some(amount) = o.amount {
        lines.push(format!("Total: {}", plain_money(amount, &currency)));
    }
    if !lines.is_empty() {
        out.insert("product_description".to_owned(), lines.join("\n"));
    }
    let served = o.fulfilled_at.unwrap_or(o.created_at);
    out.insert("service_date".to_owned(), date_of_ms(served));
    let mut text = format!("Order {} placed on {}", o.id, date_of_ms(o.created_at));
    if let Some(f) = o.fulfilled_at {
        text.push_str(&format!(", fulfilled on {}", date_of_ms(f)));
    }
    if let Some(amount) = o.amount {
        text.push_str(&format!(", amount {}", plain_money(amount, &currency)));
    }
    text.push('.');
    out.insert("uncategorized_text".to_owned(), text);
    Ok(out)
}

/// What the form shows: the recorded evidence, or else the pre-filled proposal.
///
/// # Errors
///
/// A database error.
pub async fn form_values(
    db: &DatabaseConnection,
    scope: Scope,
    w: &Workbench,
) -> Result<(BTreeMap<String, String>, bool), DbErr> {
    match w.recorded() {
        Some(v) => Ok((v, false)),
        None => Ok((prefill(db, scope, &w.dispute).await?, true)),
    }
}

async fn secret_key(desk: Desk<'_>, scope: Scope) -> Result<secrecy::SecretString, WorkbenchError> {
    desk.tenants
        .active_profile_for(scope.company_pk(), scope.mode().as_str())
        .await?
        .map(|p| p.secret_key)
        .ok_or(WorkbenchError::NoProfile(scope.mode()))
}

fn fields_json(evidence: &BTreeMap<String, String>) -> String {
    serde_json::to_string(evidence).unwrap_or_else(|_| "{}".into())
}

/// Writes the draft row (inserting it when absent) unless it is past being a draft; then claims
/// it with `claim` as its status when given. Returns whether the row is ours to act on.
async fn record_draft(
    db: &DatabaseConnection,
    scope: Scope,
    dispute_id: &str,
    evidence: &BTreeMap<String, String>,
    claim: Option<&str>,
) -> Result<bool, DbErr> {
    let now = now_ms();
    let fields = fields_json(evidence);
    let status = claim.unwrap_or("draft");
    // Only a draft, or a claim abandoned long ago, may be written.
    let writable = Condition::any()
        .add(dispute_evidence::Column::Status.eq("draft"))
        .add(
            Condition::all()
                .add(dispute_evidence::Column::Status.is_in(["submitting", "accepting"]))
                .add(dispute_evidence::Column::UpdatedAt.lt(now - CLAIM_SECS * 1000)),
        );
    let updated = scope
        .update::<dispute_evidence::Entity>()
        .col_expr(
            dispute_evidence::Column::Fields,
            Expr::value(fields.clone()),
        )
        .col_expr(dispute_evidence::Column::Status, Expr::value(status))
        .col_expr(dispute_evidence::Column::UpdatedAt, Expr::value(now))
        .filter(dispute_evidence::Column::DisputeId.eq(dispute_id))
        .filter(writable)
        .exec(db)
        .await?;
    if updated.rows_affected == 1 {
        return Ok(true);
    }
    let exists = scope
        .find::<dispute_evidence::Entity>()
        .filter(dispute_evidence::Column::DisputeId.eq(dispute_id))
        .one(db)
        .await?
        .is_some();
    if exists {
        return Ok(false);
    }
    let inserted = dispute_evidence::ActiveModel {
        company_pk: Set(scope.company_pk()),
        livemode: Set(scope.livemode()),
        dispute_id: Set(dispute_id.to_owned()),
        status: Set(status.to_owned()),
        fields: Set(fields),
        submitted_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        // Someone else inserted it a moment ago (the named unique index): theirs wins.
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(
        e.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

async fn set_status(
    db: &DatabaseConnection,
    scope: Scope,
    dispute_id: &str,
    from: &str,
    to: &str,
) -> Result<(), DbErr> {
    let now = now_ms();
    let mut q = scope
        .update::<dispute_evidence::Entity>()
        .col_expr(dispute_evidence::Column::Status, Expr::value(to))
        .col_expr(dispute_evidence::Column::UpdatedAt, Expr::value(now));
    if matches!(to, "submitted" | "accepted") {
        q = q.col_expr(dispute_evidence::Column::SubmittedAt, Expr::value(now));
    }
    q.filter(dispute_evidence::Column::DisputeId.eq(dispute_id))
        .filter(dispute_evidence::Column::Status.eq(from))
        .exec(db)
        .await?;
    Ok(())
}

/// Stripe's answer, for what only grows.
async fn apply_answer(
    db: &DatabaseConnection,
    scope: Scope,
    d: &dispute::Model,
    answer: &paygate_stripe::Dispute,
) -> Result<(), DbErr> {
    let Some(details) = &answer.evidence_details else {
        return Ok(());
    };
    if answer.id != d.stripe_id {
        return Ok(());
    }
    let count = i32::try_from(details.submission_count).unwrap_or(i32::MAX);
    scope
        .update::<dispute::Entity>()
        .col_expr(
            dispute::Column::SubmissionCount,
            Expr::value(d.submission_count.max(count)),
        )
        .col_expr(
            dispute::Column::HasEvidence,
            Expr::value(d.has_evidence || details.has_evidence),
        )
        .col_expr(dispute::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(dispute::Column::Id.eq(d.id))
        .exec(db)
        .await?;
    Ok(())
}

/// The idempotency key of a submission: the same dispute and evidence, the same request.
fn submit_key(dispute_id: &str, evidence: &BTreeMap<String, String>) -> String {
    let digest = Sha256::digest(fields_json(evidence).as_bytes());
    format!(
        "paygate_dispute_submit_{}_{}",
        dispute_id,
        &hex::encode(digest)[..32]
    )
}

/// Saves the evidence in Stripe (`submit=false`, a draft) or submits it (`submit=true`), and
/// records it.
///
/// # Errors
///
/// [`WorkbenchError`]; nothing is recorded as submitted unless Stripe took it.
pub async fn save_evidence(
    desk: Desk<'_>,
    scope: Scope,
    actor: &str,
    dispute_id: &str,
    input: &BTreeMap<String, String>,
    submit: bool,
) -> Result<Workbench, WorkbenchError> {
    let w = load(desk.db, scope, dispute_id)
        .await?
        .ok_or(WorkbenchError::NotFound)?;
    if let Some(e) = w.not_editable() {
        return Err(e);
    }
    let evidence = validate(input).map_err(WorkbenchError::Invalid)?;
    let key = secret_key(desk, scope).await?;
    let id = w.dispute.stripe_id.clone();
    let params = UpdateDispute {
        evidence: evidence.clone(),
        submit,
    };
    if submit {
        if !record_draft(desk.db, scope, &id, &evidence, Some("submitting")).await? {
            return Err(WorkbenchError::NotEditable(
                "the evidence was submitted already, or is being submitted",
            ));
        }
        let answer = desk
            .stripe
            .update_dispute(&key, &id, &params, &submit_key(&id, &evidence))
            .await;
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                set_status(desk.db, scope, &id, "submitting", "draft").await?;
                return Err(WorkbenchError::Stripe(e));
            }
        };
        set_status(desk.db, scope, &id, "submitting", "submitted").await?;
        apply_answer(desk.db, scope, &w.dispute, &answer).await?;
    } else {
        let answer = desk
            .stripe
            .update_dispute(&key, &id, &params, &new_id("paygate_dispute_draft"))
            .await
            .map_err(WorkbenchError::Stripe)?;
        if !record_draft(desk.db, scope, &id, &evidence, None).await? {
            return Err(WorkbenchError::NotEditable(
                "the evidence was submitted meanwhile",
            ));
        }
        apply_answer(desk.db, scope, &w.dispute, &answer).await?;
    }
    paygate_tenant::audit::record(
        desk.db,
        actor,
        Some(scope.company_pk()),
        if submit {
            "dispute.evidence_submitted"
        } else {
            "dispute.evidence_saved"
        },
        &id,
        serde_json::json!({
            "livemode": scope.livemode(),
            "fields": evidence.keys().collect::<Vec<_>>(),
        }),
    )
    .await?;
    load(desk.db, scope, &id)
        .await?
        .ok_or(WorkbenchError::NotFound)
}

/// Accepts (closes) the dispute in Stripe (`POST /v1/disputes/{id}/close`).
///
/// # Errors
///
/// [`WorkbenchError`].
pub async fn accept(
    desk: Desk<'_>,
    scope: Scope,
    actor: &str,
    dispute_id: &str,
) -> Result<Workbench, WorkbenchError> {
    let w = load(desk.db, scope, dispute_id)
        .await?
        .ok_or(WorkbenchError::NotFound)?;
    if let Some(e) = w.not_editable() {
        return Err(e);
    }
    let key = secret_key(desk, scope).await?;
    let id = w.dispute.stripe_id.clone();
    let kept = w.recorded().unwrap_or_default();
    if !record_draft(desk.db, scope, &id, &kept, Some("accepting")).await? {
        return Err(WorkbenchError::NotEditable(
            "the dispute was submitted or accepted already",
        ));
    }
    let answer = desk
        .stripe
        .close_dispute(&key, &id, &format!("paygate_dispute_close_{id}"))
        .await;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => {
            set_status(desk.db, scope, &id, "accepting", "draft").await?;
            return Err(WorkbenchError::Stripe(e));
        }
    };
    set_status(desk.db, scope, &id, "accepting", "accepted").await?;
    apply_answer(desk.db, scope, &w.dispute, &answer).await?;
    paygate_tenant::audit::record(
        desk.db,
        actor,
        Some(scope.company_pk()),
        "dispute.accepted",
        &id,
        serde_json::json!({"livemode": scope.livemode(), "status": answer.status}),
    )
    .await?;
    load(desk.db, scope, &id)
        .await?
        .ok_or(WorkbenchError::NotFound)
}

/// Uploads an evidence file to Stripe (`purpose=dispute_evidence`) for the dispute and puts
/// the `file_…` id Stripe returns into the file field `field` of the draft (recorded here; it
/// reaches Stripe with the next save or submission); returns Stripe's file.
///
/// # Errors
///
/// [`WorkbenchError::InvalidFile`] for an empty, too large or unsupported file,
/// [`WorkbenchError::Invalid`] for a field that takes no file, and the others.
#[expect(
    clippy::too_many_arguments,
    reason = "the upload's parts, each checked here"
)]
pub async fn upload_file(
    desk: Desk<'_>,
    scope: Scope,
    actor: &str,
    dispute_id: &str,
    field: &str,
    filename: &str,
    content_type: &str,
    bytes: Vec<u8>,
) -> Result<paygate_stripe::File, WorkbenchError> {
    let w = load(desk.db, scope, dispute_id)
        .await?
        .ok_or(WorkbenchError::NotFound)?;
    if let Some(e) = w.not_editable() {
        return Err(e);
    }
    if !FILE_FIELDS.contains(&field) {
        return Err(WorkbenchError::Invalid(vec![Problem {
            field: field.to_owned(),
            code: "unknown_field",
            message: format!("{field}: not a file field of Stripe's dispute evidence"),
        }]));
    }
    if bytes.is_empty() {
        return Err(WorkbenchError::InvalidFile("the file is empty"));
    }
    if bytes.len() > FILE_MAX_BYTES {
        return Err(WorkbenchError::InvalidFile("the file is larger than 5 MB"));
    }
    if !FILE_TYPES.contains(&content_type) {
        return Err(WorkbenchError::InvalidFile(
            "Stripe takes PDF, JPEG and PNG files as dispute evidence",
        ));
    }
    let key = secret_key(desk, scope).await?;
    let file = desk
        .stripe
        .upload_file(
            &key,
            &FileUpload {
                purpose: "dispute_evidence".into(),
                filename: filename.chars().take(200).collect(),
                content_type: content_type.to_owned(),
                bytes,
            },
            &new_id("paygate_dispute_file"),
        )
        .await
        .map_err(WorkbenchError::Stripe)?;
    // The draft now names the file (over what the form showed: the recorded draft, or else
    // the pre-filled proposal).
    let (mut fields, _) = form_values(desk.db, scope, &w).await?;
    fields.insert(field.to_owned(), file.id.clone());
    if !record_draft(desk.db, scope, &w.dispute.stripe_id, &fields, None).await? {
        return Err(WorkbenchError::NotEditable(
            "the evidence was submitted meanwhile",
        ));
    }
    paygate_tenant::audit::record(
        desk.db,
        actor,
        Some(scope.company_pk()),
        "dispute.file_uploaded",
        &w.dispute.stripe_id,
        serde_json::json!({"livemode": scope.livemode(), "file": file.id, "field": field}),
    )
    .await?;
    Ok(file)
}

// ------------------------------------------------------------------------------------------
// The merchant API.
// ------------------------------------------------------------------------------------------

/// `POST /api/v1/disputes/{id}/evidence`: Stripe's evidence fields (texts, and `file_…` ids in
/// the file fields) and whether to submit them now.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceIn {
    /// Field name → value, e.g. `{"customer_name": "Ada Lovelace", "receipt": "file_…"}`.
    /// Text fields together hold at most 20 000 characters.
    #[serde(default)]
    pub evidence: BTreeMap<String, String>,
    /// `false` saves a draft (Stripe stages it); `true` submits it to the bank (final).
    pub submit: bool,
}

/// A dispute's workbench state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DisputeWorkbenchOut {
    /// Stripe's dispute (`dp_…`).
    pub id: String,
    pub status: String,
    pub livemode: bool,
    /// `open`, `submitted`, `accepted` or `closed` (Stripe takes no more evidence).
    pub evidence_state: String,
    /// The evidence as Paygate last sent it.
    pub evidence: BTreeMap<String, String>,
    /// When the evidence was submitted or the dispute accepted (RFC 3339).
    pub submitted_at: Option<String>,
    /// Stripe's `evidence_details.due_by` (RFC 3339).
    pub evidence_due_by: Option<String>,
    pub submission_count: i32,
    pub has_evidence: bool,
    pub past_due: bool,
}

impl From<Workbench> for DisputeWorkbenchOut {
    fn from(w: Workbench) -> Self {
        let state = w.state().as_str().to_owned();
        let evidence = w.recorded().unwrap_or_default();
        let d = w.dispute;
        Self {
            id: d.stripe_id,
            status: d.status,
            livemode: d.livemode,
            evidence_state: state,
            evidence,
            submitted_at: w
                .record
                .and_then(|r| r.submitted_at)
                .map(paygate_web::rfc3339_ms),
            evidence_due_by: d.evidence_due_by.map(paygate_web::rfc3339_s),
            submission_count: d.submission_count,
            has_evidence: d.has_evidence,
            past_due: d.past_due,
        }
    }
}

fn desk(state: &AdminState) -> Desk<'_> {
    Desk {
        db: &state.db,
        tenants: &state.tenants,
        stripe: &state.stripe,
    }
}

/// Saves (`submit: false`) or submits (`submit: true`) a dispute's evidence.
#[utoipa::path(
    post,
    path = "/api/v1/disputes/{dispute_id}/evidence",
    tag = "merchant",
    params(("dispute_id" = String, Path, description = "Stripe's dispute (`dp_…`)")),
    request_body = EvidenceIn,
    responses(
        (status = 200, description = "The dispute's workbench state", body = DisputeWorkbenchOut),
        (status = 404, description = "No such dispute in the key's company and mode (`dispute_not_found`)", body = ErrorBody),
        (status = 409, description = "The evidence was submitted, the dispute accepted, or Stripe takes no more evidence (`dispute_not_editable`)", body = ErrorBody),
        (status = 422, description = "Fields are invalid (`validation_failed`: every problem in the message), or the company has no active profile of the key's mode (`active_profile_missing`)", body = ErrorBody),
        (status = 502, description = "Stripe refused (`stripe_error`)", body = ErrorBody),
    ),
)]
pub(crate) async fn evidence(
    state: web::Data<AdminState>,
    who: MerchantPrincipal,
    path: web::Path<String>,
    body: web::Json<EvidenceIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    let w = save_evidence(
        desk(&state),
        who.scope,
        "merchant_api",
        &path,
        &input.evidence,
        input.submit,
    )
    .await?;
    Ok(HttpResponse::Ok().json(DisputeWorkbenchOut::from(w)))
}

/// Accepts (closes) a dispute: the disputed amount is not contested.
#[utoipa::path(
    post,
    path = "/api/v1/disputes/{dispute_id}/close",
    tag = "merchant",
    params(("dispute_id" = String, Path, description = "Stripe's dispute (`dp_…`)")),
    responses(
        (status = 200, description = "The dispute's workbench state", body = DisputeWorkbenchOut),
        (status = 404, description = "No such dispute in the key's company and mode (`dispute_not_found`)", body = ErrorBody),
        (status = 409, description = "The evidence was submitted, the dispute accepted already, or Stripe takes no more evidence (`dispute_not_editable`)", body = ErrorBody),
        (status = 422, description = "The company has no active profile of the key's mode (`active_profile_missing`)", body = ErrorBody),
        (status = 502, description = "Stripe refused (`stripe_error`)", body = ErrorBody),
    ),
)]
pub(crate) async fn close(
    state: web::Data<AdminState>,
    who: MerchantPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let w = accept(desk(&state), who.scope, "merchant_api", &path).await?;
    Ok(HttpResponse::Ok().json(DisputeWorkbenchOut::from(w)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let long = "x".repeat(TEXT_LIMIT);
        let problems = validate(&map(&[
            ("customer_name", &long),
            ("uncategorized_text", "y"),
            ("receipt", "not a file"),
            ("favourite_colour", "blue"),
        ]))
        .expect_err("invalid");
        let codes: Vec<_> = problems
            .iter()
            .map(|p| (p.field.as_str(), p.code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("favourite_colour", "unknown_field"),
                ("receipt", "invalid_file_id"),
                ("evidence", "evidence_too_long"),
            ]
        );
    }

    #[test]
    fn empty_fields_are_dropped_and_values_trimmed() {
        let ok = validate(&map(&[
            ("customer_name", "  Ada "),
            ("receipt", ""),
            ("uncategorized_file", "file_1Abc"),
        ]))
        .expect("valid");
        assert_eq!(
            ok,
            map(&[
                ("customer_name", "Ada"),
                ("uncategorized_file", "file_1Abc")
            ])
        );
    }

    #[test]
    fn money_is_plain() {
        assert_eq!(plain_money(1999, "eur"), "19.99 EUR");
        assert_eq!(plain_money(500, "jpy"), "500 JPY");
    }
}
