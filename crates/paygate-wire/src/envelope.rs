//! The event envelope: only the fields the intake needs, borrowed from the body.
//!
//! Two shapes are read: a snapshot event (`"object": "event"`, `created` in Unix seconds, the
//! object in `data.object`) and a thin event of an event destination (`"object":
//! "v2.core.event"`, `created` as an RFC 3339 string, the connected account in `context`, no
//! snapshot: the worker fetches the event and its related object). [`Envelope::thin`] says which.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Why a payload is not a Stripe event envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the payload is not a Stripe event: {0}")]
    Invalid(String),
}

impl EnvelopeError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::Invalid(_) => "payload_invalid",
        }
    }
}

/// The envelope fields of a snapshot event.
#[derive(Debug)]
pub struct Envelope<'a> {
    pub id: Cow<'a, str>,
    pub event_type: Cow<'a, str>,
    pub created: i64,
    pub livemode: bool,
    pub api_version: Option<Cow<'a, str>>,
    /// The connected account: `account` of a snapshot event, `context` of a thin one.
    pub account: Option<Cow<'a, str>>,
    /// A thin event (`v2.core.event`): no snapshot; its type is not an [`crate::EventType`].
    pub thin: bool,
}

#[derive(Deserialize)]
struct Raw<'a> {
    #[serde(borrow)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    object: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    event_type: Option<Cow<'a, str>>,
    // Thin events carry `created` as a string: read it raw, judge it after `object`.
    #[serde(borrow)]
    created: Option<&'a RawValue>,
    livemode: Option<bool>,
    #[serde(borrow, default)]
    api_version: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    account: Option<Cow<'a, str>>,
    /// Thin events: the connected account.
    #[serde(borrow, default)]
    context: Option<Cow<'a, str>>,
    #[serde(borrow)]
    data: Option<RawData<'a>>,
}

#[derive(Deserialize)]
struct RawData<'a> {
    #[serde(borrow)]
    object: Option<&'a RawValue>,
}

/// Parses and checks the envelope.
pub fn parse(body: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    let raw: Raw<'_> = serde_json::from_slice(body).map_err(|e| {
        EnvelopeError::Invalid(format!("not a JSON object with the event fields ({e})"))
    })?;
    let thin = match raw.object.as_deref() {
        Some("event") => false,
        Some("v2.core.event") => true,
        Some(other) => {
            return Err(EnvelopeError::Invalid(format!(
                "\"object\" is {other:?}, expected \"event\""
            )));
        }
        None => return Err(EnvelopeError::Invalid("\"object\" is missing".into())),
    };
    let id = raw
        .id
        .ok_or_else(|| EnvelopeError::Invalid("\"id\" is missing".into()))?;
    if !id.starts_with("evt_") || id.len() > 255 {
        return Err(EnvelopeError::Invalid(
            "\"id\" must be an event id starting with evt_".into(),
        ));
    }
    let event_type = raw
        .event_type
        .ok_or_else(|| EnvelopeError::Invalid("\"type\" is missing".into()))?;
    if event_type.is_empty() || event_type.len() > 255 {
        return Err(EnvelopeError::Invalid(
            "\"type\" is empty or too long".into(),
        ));
    }
    let created = raw
        .created
        .ok_or_else(|| EnvelopeError::Invalid("\"created\" is missing".into()))?
        .get();
    let created = if thin {
        thin_created(created)?
    } else {
        created
            .parse::<i64>()
            .map_err(|_| EnvelopeError::Invalid("\"created\" must be a Unix timestamp".into()))?
    };
    let livemode = raw
        .livemode
        .ok_or_else(|| EnvelopeError::Invalid("\"livemode\" is missing".into()))?;
    if thin {
        let account = match raw.context {
            Some(c) if c.len() > 255 => {
                return Err(EnvelopeError::Invalid("\"context\" is too long".into()));
            }
            c => c.filter(|c| !c.is_empty()),
        };
        return Ok(Envelope {
            id,
            event_type,
            created,
            livemode,
            api_version: None,
            account,
            thin: true,
        });
    }
    let obj = raw
        .data
        .and_then(|d| d.object)
        .ok_or_else(|| EnvelopeError::Invalid("\"data.object\" is missing".into()))?;
    if !obj.get().starts_with('{') {
        return Err(EnvelopeError::Invalid(
            "\"data.object\" must be an object".into(),
        ));
    }
    Ok(Envelope {
        id,
        event_type,
        created,
        livemode,
        api_version: raw.api_version,
        account: raw.account,
        thin: false,
    })
}

/// A thin event's `created`: an RFC 3339 string (`"2024-09-26T17:46:22.134Z"`), as Unix seconds.
fn thin_created(raw: &str) -> Result<i64, EnvelopeError> {
    let bad = || EnvelopeError::Invalid("\"created\" must be an RFC 3339 time".into());
    let s: &str = serde_json::from_str(raw).map_err(|_| bad())?;
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.timestamp())
        .map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_snapshot_event() {
        let body = br#"{"id":"evt_1","object":"event","api_version":"2024-06-20","created":5,"data":{"object":{"id":"pi_1"}},"livemode":false,"type":"payment_intent.succeeded"}"#;
        let e = parse(body).map_err(|e| e.to_string());
        let e = e
            .as_ref()
            .map(|e| (e.id.as_ref(), e.event_type.as_ref(), e.created, e.livemode));
        let t = crate::EventType::PaymentIntentSucceeded.as_str();
        assert_eq!(e, Ok(("evt_1", t, 5, false)));
    }

    #[test]
    fn reads_a_thin_event() {
        let thin = br#"{"id":"evt_1","object":"v2.core.event","type":"v2.core.event_destination.ping","created":"2024-01-01T00:00:10.250Z","livemode":true,"context":"acct_9","related_object":{"id":"ed_1","type":"v2.core.event_destination","url":"/v2/core/event_destinations/ed_1"}}"#;
        let e = parse(thin).map_err(|e| e.to_string());
        let e = e.as_ref().map(|e| {
            (
                e.id.as_ref(),
                e.created,
                e.livemode,
                e.account.as_deref(),
                e.thin,
            )
        });
        assert_eq!(e, Ok(("evt_1", 1_704_067_210, true, Some("acct_9"), true)));
        let no_context = br#"{"id":"evt_1","object":"v2.core.event","type":"x","created":"2024-01-01T00:00:00Z","livemode":false,"context":null}"#;
        assert!(parse(no_context).is_ok_and(|e| e.account.is_none() && !e.livemode));
    }

    #[test]
    fn refuses_non_events() {
        for bad in [
            &br#"{"hello":"world"}"#[..],
            br#"[1,2]"#,
            br#"{"id":"ch_1","object":"event","type":"x","created":1,"livemode":false,"data":{"object":{}}}"#,
            br#"{"id":"evt_1","object":"event","type":"x","created":1,"livemode":false,"data":{}}"#,
            br#"{"id":"evt_1","object":"event","type":"x","created":1,"livemode":false,"data":{"object":3}}"#,
            br#"{"id":"evt_1","object":"v2.core.event","type":"x","created":5,"livemode":false}"#,
            br#"{"id":"evt_1","object":"v2.core.event","type":"x","created":"yesterday","livemode":false}"#,
            br#"{"id":"evt_1","object":"v2.core.event","type":"x","created":"2024-01-01T00:00:00Z"}"#,
            b"not json",
        ] {
            assert_eq!(parse(bad).err().map(|e| e.code()), Some("payload_invalid"));
        }
    }
}
