//! Thin events (event destinations, API v2: `"object": "v2.core.event"`). The delivery carries
//! no snapshot: the handler fetches the event (`GET /v2/core/events/{id}`) with the active
//! profile of the event's mode, and the object it is about where Paygate acts on it.
//!
//! Policy, by type ([`ThinEventType`], not [`paygate_wire::EventType`]: that is the list of
//! snapshot types merchants select):
//! - `v2.core.event_destination.ping`: processed at once, nothing fetched (Stripe checks the
//!   destination answers; the event list shows it processed);
//! - `v2.core.health.event_generation_failure.resolved`: Stripe could not generate events for
//!   a while; the window it names (`data.started_at` or `data.impact.started_at`, else the
//!   event's `created` less a day, up to `data.resolved_at`, else `created`) is reconciled
//!   through `GET /v1/events` (`reconcile::reconcile_window`);
//! - any other type: by its `related_object.type`; a `payment_intent` is fetched at
//!   `related_object.url` and applied by the payment intent handler, forward-only like a
//!   snapshot (the fetched object is the newest state, judged at the event's `created`);
//!   other objects are ignored (stored, visible).

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::Value;

use paygate_wire::ThinEventType;

use super::context::{HandlerCtx, HandlerError, HandlerResult, Outcome};
use super::payments;
use crate::inbox::InboxWriter;

/// How far back a resolved generation failure is reconciled when Stripe names no start.
const DEFAULT_WINDOW_SECS: i64 = 24 * 3600;

/// Handles a thin event. `notice` is the delivered body; `writer` stores what a
/// reconciliation recovers.
pub async fn handle<C: ConnectionTrait + TransactionTrait>(
    ctx: &HandlerCtx<'_, C>,
    notice: &Value,
    writer: Option<&InboxWriter>,
) -> HandlerResult {
    let kind = ThinEventType::parse(&ctx.event.event_type);
    if kind == ThinEventType::DestinationPing {
        return Ok(Outcome::Processed);
    }
    let mode = ctx.mode();
    let profile = ctx
        .tenants
        .active_profile_for(ctx.scope.company_pk(), mode.as_str())
        .await?
        .ok_or_else(|| {
            HandlerError::Other(format!(
                "no active {} profile to fetch the thin event with",
                mode.as_str()
            ))
        })?;
    let event = ctx
        .stripe
        .retrieve_v2_event(&profile.secret_key, &ctx.event.id)
        .await?;
    match kind {
        ThinEventType::DestinationPing => Ok(Outcome::Processed),
        ThinEventType::EventGenerationFailureResolved => {
            let writer = writer.ok_or_else(|| {
                HandlerError::Other("no inbox writer to store recovered events in".into())
            })?;
            let window = window_of(&event["data"], ctx.event.created);
            crate::reconcile::reconcile_window(
                ctx.tenants,
                ctx.stripe,
                writer,
                ctx.scope.company_pk(),
                mode,
                window,
            )
            .await
            .map_err(|e| HandlerError::Other(paygate_web::error_chain(&e)))?;
            Ok(Outcome::Processed)
        }
        ThinEventType::Other => {
            // The fetched event's, else the notice's (they are the same object).
            let related = match &event["related_object"] {
                Value::Object(_) => &event["related_object"],
                _ => &notice["related_object"],
            };
            match related["type"].as_str() {
                Some("payment_intent") => {
                    let url = related["url"].as_str().ok_or_else(|| {
                        HandlerError::Payload("related_object.url is missing".into())
                    })?;
                    let object = ctx
                        .stripe
                        .retrieve_related_object(&profile.secret_key, url)
                        .await?;
                    if object["livemode"]
                        .as_bool()
                        .is_some_and(|l| l != mode.livemode())
                    {
                        return Err(HandlerError::Payload(
                            "the related object's livemode is not the event's".into(),
                        ));
                    }
                    let applied = HandlerCtx {
                        object: &object,
                        previous_attributes: None,
                        ..*ctx
                    };
                    payments::payment_intent(&applied).await
                }
                _ => Ok(Outcome::Ignored),
            }
        }
    }
}

/// The window `(from, to)` in Unix seconds a resolved generation failure names.
fn window_of(data: &Value, created: i64) -> (i64, i64) {
    let at = |v: &Value| {
        v.as_str()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp())
    };
    let to = at(&data["resolved_at"]).unwrap_or(created);
    let from = at(&data["started_at"])
        .or_else(|| at(&data["impact"]["started_at"]))
        .unwrap_or(to - DEFAULT_WINDOW_SECS);
    (from.min(to), to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_read_from_the_event() {
        let data = serde_json::json!({
            "started_at": "2026-12-01T10:00:00Z",
            "resolved_at": "2026-12-01T11:00:00Z",
        });
        assert_eq!(window_of(&data, 0), (1_796_119_200, 1_796_122_800));
        let data = serde_json::json!({"resolved_at": "2026-12-01T11:00:00Z"});
        assert_eq!(
            window_of(&data, 0),
            (1_796_122_800 - DEFAULT_WINDOW_SECS, 1_796_122_800)
        );
        assert_eq!(
            window_of(&Value::Null, 500_000),
            (500_000 - DEFAULT_WINDOW_SECS, 500_000)
        );
    }
}
