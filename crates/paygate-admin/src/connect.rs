//! `GET /admin/v1/companies/{companyID}/unroutable-events`: a Connect platform's events that no
//! linked company takes.
//!
//! An event delivered to a platform's callback URL naming a connected account is stored for the
//! linked company whose active profile of the event's mode has that account id (see `intake`).
//! When none has (no linked company, only a profile of the other mode, the linked company
//! suspended, or two linked companies claiming the account), it is acknowledged and stored for
//! the platform with status `unroutable`: never processed, listed here, newest first, both modes
//! unless `?mode=` names one. Link the company (or fix its profile's account id) and Stripe's
//! next deliveries of that account route; the ones listed stay as they are.

use actix_web::{HttpResponse, web};
use sea_orm::{ColumnTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};

use paygate_db::Mode;
use paygate_db::entities::inbox_event;
use paygate_router::inbox::status;
use paygate_web::{ApiError, Page, decode_cursor, encode_cursor, rfc3339_ms, rfc3339_s};

use crate::{AdminState, OperatorPrincipal, page_limit};

/// Filters of the unroutable list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnroutableQuery {
    /// `test` or `live`; both when absent.
    mode: Option<Mode>,
    /// Page size, 1 to 200 (default 50).
    limit: Option<u64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// A platform's event that no linked company takes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnroutableEventOut {
    /// Stripe's `evt_…`.
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    livemode: bool,
    /// The connected account the event names.
    account: Option<String>,
    /// Stripe's `created`.
    created: String,
    received_at: String,
    /// Why it was not routed.
    reason: String,
}

impl From<&inbox_event::Model> for UnroutableEventOut {
    fn from(m: &inbox_event::Model) -> Self {
        let mode = if m.livemode { "live" } else { "test" };
        Self {
            id: m.stripe_event_id.clone(),
            event_type: m.event_type.clone(),
            livemode: m.livemode,
            account: m.account_id.clone(),
            created: rfc3339_s(m.created),
            received_at: rfc3339_ms(m.received_at),
            reason: format!(
                "no active linked company has an active {mode} profile with this account id"
            ),
        }
    }
}

/// A Connect platform's unroutable events, newest first.
#[utoipa::path(
    get,
    path = "/admin/v1/companies/{company_id}/unroutable-events",
    tag = "events",
    params(("company_id" = String, Path, description = "The Connect platform"), UnroutableQuery),
    responses((status = 200, description = "A page of unroutable events", body = Page<UnroutableEventOut>)),
)]
pub(crate) async fn unroutable(
    state: web::Data<AdminState>,
    _op: OperatorPrincipal,
    path: web::Path<String>,
    q: web::Query<UnroutableQuery>,
) -> Result<HttpResponse, ApiError> {
    let company = state.tenants.company(&path).await?;
    let limit = page_limit(q.limit);
    let before = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let modes: Vec<Mode> = match q.mode {
        Some(m) => vec![m],
        None => Mode::ALL.to_vec(),
    };
    let mut rows = Vec::new();
    for mode in modes {
        let mut sel = company
            .scope(Some(mode))
            .inbox_events()
            .filter(inbox_event::Column::Status.eq(status::UNROUTABLE))
            .order_by_desc(inbox_event::Column::Id)
            .limit(limit + 1);
        if let Some(b) = before {
            sel = sel.filter(inbox_event::Column::Id.lt(b));
        }
        rows.extend(sel.all(&state.db).await?);
    }
    rows.sort_by_key(|r| std::cmp::Reverse(r.id));
    let has_more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if has_more {
        rows.last().map(|r| encode_cursor(r.id))
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(Page {
        data: rows
            .iter()
            .map(UnroutableEventOut::from)
            .collect::<Vec<_>>(),
        has_more,
        next_cursor,
    }))
}
