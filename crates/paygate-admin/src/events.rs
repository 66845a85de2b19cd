//! `/admin/v1/companies/{companyID}/events` and `/delivery-failures`: what arrived, what was
//! refused.

use actix_web::{HttpResponse, web};
use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use paygate_db::Mode;
use paygate_db::entities::{delivery_failure, inbox_event, inbox_payload};
use paygate_web::{ApiError, Page, decode_cursor, encode_cursor, rfc3339_ms, rfc3339_s};

use crate::error_body::ErrorBody;
use crate::{AdminState, ModeQuery, OperatorPrincipal, page_limit};

/// Filters of the event list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// `test` or `live`; the company's environment when absent.
    mode: Option<Mode>,
    /// Stripe's event type (`payment_intent.succeeded` …).
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// `pending`, `processed`, `ignored`, `failed` or `unroutable` (a Connect platform's
    /// event no linked company takes).
    status: Option<String>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// An inbox event in a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventOut {
    /// Stripe's `evt_…`.
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    livemode: bool,
    /// `pending`, `processed`, `ignored`, `failed` or `unroutable` (a Connect platform's
    /// event no linked company takes).
    status: String,
    /// How it arrived: `webhook` or `reconcile`.
    origin: String,
    /// Stripe's `created`.
    created: String,
    received_at: String,
    attempts: i32,
    last_error: Option<String>,
    processed_at: Option<String>,
}

impl From<&inbox_event::Model> for EventOut {
    fn from(m: &inbox_event::Model) -> Self {
        Self {
            id: m.stripe_event_id.clone(),
            event_type: m.event_type.clone(),
            livemode: m.livemode,
            status: m.status.clone(),
            origin: m.origin.clone(),
            created: rfc3339_s(m.created),
            received_at: rfc3339_ms(m.received_at),
            attempts: m.attempts,
            last_error: m.last_error.clone(),
            processed_at: m.processed_at.map(rfc3339_ms),
        }
    }
}

/// One event with its raw payload, as Stripe sent it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventDetailOut {
    #[serde(flatten)]
    event: EventOut,
    api_version: Option<String>,
    /// The event as Stripe sent it.
    #[schema(value_type = Object)]
    payload: Box<RawValue>,
}

/// Counts of a company's inbox events by status (`{"pending": n, "processed": n, …, "total": n}`):
/// every status Paygate knows is there, 0 when none.
#[derive(Debug)]
pub struct EventStatsOut;

impl utoipa::PartialSchema for EventStatsOut {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let count = || {
            ObjectBuilder::new().schema_type(Type::Integer).format(Some(
                utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Int64),
            ))
        };
        let mut o = ObjectBuilder::new()
            .description(Some("Counts of inbox events by status, and their total."))
            .additional_properties(Some(count()));
        for s in STATUSES.iter().chain(&["total"]) {
            o = o.property(*s, count()).required(*s);
        }
        o.into()
    }
}

impl utoipa::ToSchema for EventStatsOut {}

const STATUSES: &[&str] = &["pending", "processed", "ignored", "failed", "unroutable"];

/// Inbox events, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/events",
    tag = "events",
    params(("company_id" = String, Path, description = "The company"), EventQuery),
    responses((status = 200, description = "A page of events", body = Page<EventOut>)),
)]
pub(crate) async fn list(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
    q: web::Query<EventQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let limit = page_limit(q.limit);
    let mut sel = company
        .scope(q.mode)
        .inbox_events()
        .order_by_desc(inbox_event::Column::Id)
        .limit(limit + 1);
    if let Some(t) = q.event_type.as_deref().filter(|t| !t.is_empty()) {
        sel = sel.filter(inbox_event::Column::EventType.eq(t));
    }
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        if !STATUSES.contains(&s) {
            return Err(ApiError::bad_request(
                "invalid_query",
                "status must be one of pending, processed, ignored, failed, unroutable",
            ));
        }
        sel = sel.filter(inbox_event::Column::Status.eq(s));
    }
    if let Some(c) = q.cursor.as_deref() {
        sel = sel.filter(inbox_event::Column::Id.lt(decode_cursor(c)?));
    }
    let mut rows = sel.all(&state.db).await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|r| encode_cursor(r.id))
    } else {
        None
    };
    let data: Vec<EventOut> = rows.iter().map(EventOut::from).collect();
    Ok(HttpResponse::Ok().json(Page {
        data,
        has_more,
        next_cursor,
    }))
}

/// Inbox events counted by status.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/events/stats",
    tag = "events",
    params(("company_id" = String, Path, description = "The company"), ModeQuery),
    responses((status = 200, description = "Counts by status", body = EventStatsOut)),
)]
pub(crate) async fn stats(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    use sea_orm::sea_query::{Expr, Func};
    let company = state.tenants.company(&path).await?;
    let rows: Vec<(String, i64)> = company
        .scope(mode.mode)
        .inbox_events()
        .select_only()
        .column(inbox_event::Column::Status)
        .column_as(
            Expr::from(Func::count(Expr::col(inbox_event::Column::Id))),
            "n",
        )
        .group_by(inbox_event::Column::Status)
        .into_tuple()
        .all(&state.db)
        .await?;
    let mut out = serde_json::Map::new();
    for s in STATUSES {
        out.insert((*s).to_owned(), serde_json::json!(0));
    }
    let mut total = 0;
    for (status, n) in rows {
        total += n;
        out.insert(status, serde_json::json!(n));
    }
    out.insert("total".into(), serde_json::json!(total));
    Ok(HttpResponse::Ok().json(out))
}

/// The backlog: how many of the company's events wait to be processed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BacklogOut {
    /// Events stored and not processed yet (status `pending`, retries included).
    pending: u64,
}

/// The company's backlog alone. Counted from the pending events' index entries only, so it
/// stays cheap however large the inbox grows (`/events/stats` counts every status): what a
/// monitor or a load test polls while events arrive.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/events/backlog",
    tag = "events",
    params(("company_id" = String, Path, description = "The company"), ModeQuery),
    responses((status = 200, description = "The backlog", body = BacklogOut)),
)]
pub(crate) async fn backlog(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let pending = company
        .scope(mode.mode)
        .inbox_events()
        .filter(inbox_event::Column::Status.eq("pending"))
        .count(&state.db)
        .await?;
    Ok(HttpResponse::Ok().json(BacklogOut { pending }))
}

/// One event with its raw payload.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/events/{event_id}",
    tag = "events",
    params(
        ("company_id" = String, Path, description = "The company"),
        ("event_id" = String, Path, description = "Stripe's event id (`evt_…`)"),
        ModeQuery,
    ),
    responses(
        (status = 200, description = "The event", body = EventDetailOut),
        (status = 404, description = "No such event (`event_not_found`)", body = ErrorBody),
    ),
)]
pub(crate) async fn get(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<(String, String)>,
    mode: web::Query<ModeQuery>,
) -> Result<HttpResponse, ApiError> {
    let (company_id, event_id) = path.into_inner();
    let company = state.tenants.company(&company_id).await?;
    let (m, body) = company
        .scope(mode.mode)
        .inbox_events()
        .find_also_related(inbox_payload::Entity)
        .filter(inbox_event::Column::StripeEventId.eq(&event_id))
        .one(&state.db)
        .await?
        .ok_or_else(|| ApiError::not_found("event_not_found", "no such event for this company"))?;
    // Every event is stored with its body, in the same statement.
    let payload = RawValue::from_string(body.map_or_else(|| "null".to_owned(), |b| b.payload))
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(EventDetailOut {
        event: EventOut::from(&m),
        api_version: m.api_version.clone(),
        payload,
    }))
}

/// Counts by reason, with a sentence a merchant can act on.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReasonCount {
    /// `signature_invalid`, `livemode_mismatch` …
    reason: String,
    count: u64,
    /// The latest one.
    last_at: String,
    explanation: &'static str,
}

/// A refused delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FailureOut {
    reason: String,
    remote_addr: Option<String>,
    occurred_at: String,
}

/// Refused deliveries: counts by reason, and the latest ones.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryFailuresOut {
    /// Every refused delivery kept.
    total: usize,
    /// By reason, the most recent reason first.
    summary: Vec<ReasonCount>,
    /// The latest 100, newest first.
    data: Vec<FailureOut>,
}

/// Plain words for a rejection reason.
pub fn explain(reason: &str) -> &'static str {
    match reason {
        "signature_invalid" => {
            "the signature matched none of your signing secrets: check that you copied the signing secret of this endpoint"
        }
        "signature_missing" => {
            "the delivery had no Stripe-Signature header: only Stripe should post to this URL"
        }
        "signature_malformed" => "the Stripe-Signature header could not be read",
        "timestamp_outside_tolerance" => {
            "the signature was too old or too far in the future: check the server clock, or a delivery was replayed"
        }
        "livemode_mismatch" => {
            "a live event was signed with a test profile's secret or the other way round: check which profile holds which secret"
        }
        "payload_invalid" => "the body was not a Stripe event",
        "thin_event_unsupported" => {
            "the endpoint sends thin events: create it in Stripe with snapshot payloads"
        }
        "payload_too_large" => "the body was larger than 1 MiB",
        "company_suspended" => {
            "the company is suspended: deliveries are refused until it is reactivated (Stripe retries for three days)"
        }
        _ => "the delivery was refused",
    }
}

/// Refused deliveries: counts by reason and the latest ones.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/delivery-failures",
    tag = "events",
    params(("company_id" = String, Path, description = "The company")),
    responses((status = 200, description = "The refused deliveries", body = DeliveryFailuresOut)),
)]
pub(crate) async fn failures(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    state.failures.flush().await;
    let rows = company
        .tenant()
        .find::<delivery_failure::Entity>()
        .order_by_desc(delivery_failure::Column::Id)
        .all(&state.db)
        .await?;
    let mut summary: Vec<ReasonCount> = Vec::new();
    for r in &rows {
        match summary.iter_mut().find(|s| s.reason == r.reason) {
            Some(s) => s.count += 1,
            None => summary.push(ReasonCount {
                reason: r.reason.clone(),
                count: 1,
                last_at: rfc3339_ms(r.occurred_at),
                explanation: explain(&r.reason),
            }),
        }
    }
    let recent: Vec<FailureOut> = rows
        .iter()
        .take(100)
        .map(|r| FailureOut {
            reason: r.reason.clone(),
            remote_addr: r.remote_addr.clone(),
            occurred_at: rfc3339_ms(r.occurred_at),
        })
        .collect();
    Ok(HttpResponse::Ok().json(DeliveryFailuresOut {
        total: rows.len(),
        summary,
        data: recent,
    }))
}
