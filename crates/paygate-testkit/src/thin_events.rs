//! Builders of thin events (event destinations, API v2) in the shapes of Stripe's
//! `v2.core.event`: the notification a destination receives (no `data`), and the event as
//! `GET /v2/core/events/{id}` returns it.

use serde_json::{Value, json};

/// An RFC 3339 time of Unix seconds `t` (thin events' `created`).
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The notification of a thin event of `event_type`, test mode, created now, with a fresh id;
/// `related` is `(id, type, url)` of the object it is about. Set `livemode` / `context` on the
/// returned value as needed.
pub fn thin_event(event_type: &str, related: Option<(&str, &str, &str)>) -> Value {
    let mut e = json!({
        "id": crate::unique("evt_test_thin_"),
        "object": "v2.core.event",
        "type": event_type,
        "created": rfc3339(crate::now_secs()),
        "livemode": false,
        "context": null,
    });
    if let Some((id, t, url)) = related {
        e["related_object"] = json!({"id": id, "type": t, "url": url});
    }
    e
}

/// The event of `notice` as `GET /v2/core/events/{id}` answers it: the notification with
/// `data` and `reason`.
pub fn fetched(notice: &Value, data: Value) -> Value {
    let mut e = notice.clone();
    e["data"] = data;
    e["reason"] = Value::Null;
    e
}
