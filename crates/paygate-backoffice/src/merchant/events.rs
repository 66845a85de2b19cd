//! `/app/events`: the company's Stripe events as Paygate received them (`inbox_events`), newest
//! first, filtered by type, status and the day Stripe created them (a GET form: works without
//! JavaScript, and a filtered list is a link to share); one event with its payload pretty-printed,
//! its origin, attempts, last error and processing time; and **Replay** for company admins.
//!
//! Replay does what the operators' `POST …/events/{id}/replay` does
//! ([`paygate_router::worker::replay`]): the stored event is due again, the workers process it
//! once more (the handlers are idempotent, so an applied event changes nothing), and the audit
//! log names the user.
//!
//! Every page shows the events of one mode ([`super::mode`]): every query starts from the
//! session's company in that mode, so another company's event, or one of the other mode, is
//! "not found". Replay takes the mode from the form's hidden `mode` field and goes back to the
//! event in that mode.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::Deserialize;

use paygate_db::Scope;
use paygate_db::entities::{inbox_event, inbox_payload};

use crate::MerchantSession;
use crate::merchant::listing::{
    Choice, PAGE_SIZE, choices, day_start_secs, label, parse_day, segment, with_query,
};
use crate::merchant::mode::{ModeParam, View};
use crate::page::{FieldErrors, Page, PageError, redirect_with_flash, render, render_status};

/// Registers `/app/events…`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/events", web::get().to(list))
        .route("/events/{event_id}", web::get().to(detail))
        .route("/events/{event_id}/replay", web::post().to(replay));
}

/// The processing states of an inbox event.
pub const STATUSES: &[&str] = &["pending", "processed", "ignored", "failed"];

/// The filters of the list, as the form sends them (every field may be missing or empty).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Filters {
    #[serde(rename = "type")]
    event_type: String,
    status: String,
    from: String,
    to: String,
    /// The cursor of the next (older) page.
    before: String,
}

/// An event as the list shows it.
pub struct EventRow {
    pub id: String,
    pub href: String,
    pub event_type: String,
    pub status: String,
    pub status_label: String,
    pub origin_label: String,
    pub livemode: bool,
    /// Stripe's `created`, seconds.
    pub created: i64,
    pub received_at: i64,
    pub attempts: i32,
}

impl EventRow {
    fn new(s: &MerchantSession, v: &View, m: inbox_event::Model) -> Self {
        Self {
            href: v.href(&format!("/app/events/{}", segment(&m.stripe_event_id))),
            status_label: label(s.lang, "event_status", &m.status),
            origin_label: label(s.lang, "event_origin", &m.origin),
            id: m.stripe_event_id,
            event_type: m.event_type,
            status: m.status,
            livemode: m.livemode,
            created: m.created,
            received_at: m.received_at,
            attempts: m.attempts,
        }
    }
}

#[derive(Template)]
#[template(path = "backoffice/app/events.html")]
struct EventsTemplate {
    ctx: Page,
    rows: Vec<EventRow>,
    /// The company's event types, for the type field's suggestions.
    types: Vec<String>,
    statuses: Vec<Choice>,
    f_type: String,
    f_from: String,
    f_to: String,
    filtered: bool,
    older: Option<String>,
    errors: FieldErrors,
}

async fn list(
    s: MerchantSession,
    q: web::Query<Filters>,
    m: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &m).await?;
    let f = q.into_inner();
    let mut errors = FieldErrors::new();
    let event_type = f.event_type.trim();
    let mut status = f.status.trim();
    if !status.is_empty() && !STATUSES.contains(&status) {
        errors.add_text("status", s.lang.t("events.status_invalid").to_owned());
        status = "";
    }
    let from = parse_day(&f.from).unwrap_or_else(|_| {
        errors.add_text("from", s.lang.t("events.date_invalid").to_owned());
        None
    });
    let to = parse_day(&f.to).unwrap_or_else(|_| {
        errors.add_text("to", s.lang.t("events.date_invalid").to_owned());
        None
    });
    if let (Some(a), Some(b)) = (from, to)
        && a > b
    {
        errors.add_text("to", s.lang.t("events.range_invalid").to_owned());
    }

    let mut sel = v
        .scope
        .inbox_events()
        .order_by_desc(inbox_event::Column::Id)
        .limit(PAGE_SIZE + 1);
    if !event_type.is_empty() {
        sel = sel.filter(inbox_event::Column::EventType.eq(event_type));
    }
    if !status.is_empty() {
        sel = sel.filter(inbox_event::Column::Status.eq(status));
    }
    if let Some(d) = from {
        sel = sel.filter(inbox_event::Column::Created.gte(day_start_secs(d)));
    }
    if let Some(d) = to.and_then(|d| d.succ_opt()) {
        // Up to the end of the last day.
        sel = sel.filter(inbox_event::Column::Created.lt(day_start_secs(d)));
    }
    if let Ok(before) = paygate_web::decode_cursor(f.before.trim()) {
        sel = sel.filter(inbox_event::Column::Id.lt(before));
    }
    let mut rows = sel.all(s.db()).await?;
    let more = rows.len() as u64 > PAGE_SIZE;
    rows.truncate(PAGE_SIZE as usize);
    let older = match rows.last() {
        Some(last) if more => Some(with_query(
            "/app/events",
            &[
                ("mode", v.mode().as_str()),
                ("type", event_type),
                ("status", status),
                ("from", f.from.trim()),
                ("to", f.to.trim()),
                ("before", &paygate_web::encode_cursor(last.id)),
            ],
        )),
        _ => None,
    };
    let types: Vec<String> = v
        .scope
        .inbox_events()
        .select_only()
        .column(inbox_event::Column::EventType)
        .distinct()
        .order_by_asc(inbox_event::Column::EventType)
        .into_tuple()
        .all(s.db())
        .await?;
    let tpl = EventsTemplate {
        ctx: v.page(&s, "events.title", "/app/events"),
        rows: rows.into_iter().map(|m| EventRow::new(&s, &v, m)).collect(),
        types,
        statuses: choices(s.lang, "event_status", STATUSES, status),
        f_type: event_type.to_owned(),
        f_from: f.from.trim().to_owned(),
        f_to: f.to.trim().to_owned(),
        filtered: !event_type.is_empty()
            || !status.is_empty()
            || !f.from.trim().is_empty()
            || !f.to.trim().is_empty(),
        older,
        errors,
    };
    if tpl.errors.is_empty() {
        render(&tpl)
    } else {
        render_status(StatusCode::UNPROCESSABLE_ENTITY, &tpl)
    }
}

/// The event with Stripe id `event_id` of the company in the mode of `scope`, if it has one,
/// with its stored body.
async fn find_event(
    s: &MerchantSession,
    scope: Scope,
    event_id: &str,
) -> Result<Option<(inbox_event::Model, Option<inbox_payload::Model>)>, PageError> {
    Ok(scope
        .inbox_events()
        .find_also_related(inbox_payload::Entity)
        .filter(inbox_event::Column::StripeEventId.eq(event_id))
        .one(s.db())
        .await?)
}

/// The payload as indented JSON (as stored, when it is not JSON at all).
fn pretty(payload: &str) -> String {
    serde_json::from_str::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| payload.to_owned())
}

#[derive(Template)]
#[template(path = "backoffice/app/event.html")]
struct EventTemplate {
    ctx: Page,
    row: EventRow,
    api_version: Option<String>,
    account_id: Option<String>,
    next_attempt_at: Option<i64>,
    last_error: Option<String>,
    processed_at: Option<i64>,
    payload: String,
    replay_action: String,
    is_admin: bool,
}

async fn detail(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Query<ModeParam>,
) -> Result<HttpResponse, PageError> {
    let v = View::of(&s, &mode).await?;
    let (m, body) = find_event(&s, v.scope, &path)
        .await?
        .ok_or(PageError::NotFound)?;
    let mut ctx = v.page(&s, "events.detail_title", "/app/events");
    ctx.title = s.lang.format("events.detail_title", &[&m.stripe_event_id]);
    let tpl = EventTemplate {
        ctx,
        api_version: m.api_version.clone(),
        account_id: m.account_id.clone(),
        next_attempt_at: (m.status == "pending").then_some(m.next_attempt_at),
        last_error: m.last_error.clone(),
        processed_at: m.processed_at,
        payload: body.map(|b| pretty(&b.payload)).unwrap_or_default(),
        replay_action: format!("/app/events/{}/replay", segment(&m.stripe_event_id)),
        is_admin: s.is_admin(),
        row: EventRow::new(&s, &v, m),
    };
    render(&tpl)
}

async fn replay(
    s: MerchantSession,
    path: web::Path<String>,
    mode: web::Form<ModeParam>,
) -> Result<HttpResponse, PageError> {
    s.require_admin()?;
    let v = View::of(&s, &mode).await?;
    let event_id = path.into_inner();
    // The session's company in the form's mode: another company's event, or one of the other
    // mode, is not found.
    if !paygate_router::worker::replay(s.db(), v.scope, &event_id).await? {
        return Err(PageError::NotFound);
    }
    paygate_tenant::audit::record(
        s.db(),
        &s.actor(),
        Some(s.company_pk),
        "event.replayed",
        &event_id,
        serde_json::json!({}),
    )
    .await?;
    Ok(redirect_with_flash(
        &v.href(&format!("/app/events/{}", segment(&event_id))),
        "events.flash_replayed",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_indented_and_junk_is_kept() {
        assert_eq!(pretty(r#"{"a":[1]}"#), "{\n  \"a\": [\n    1\n  ]\n}");
        assert_eq!(pretty("not json <b>"), "not json <b>");
    }
}
