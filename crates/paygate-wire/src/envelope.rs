//! The event envelope: only the fields the intake needs, borrowed from the body.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// Why a payload is not a Stripe event envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error(
        "the payload is a thin event (v2.core.event); this endpoint accepts snapshot events only: create an endpoint with snapshot payloads in Stripe"
    )]
    ThinEvent,
    #[error("the payload is not a Stripe event: {0}")]
    Invalid(String),
}

impl EnvelopeError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            EnvelopeError::ThinEvent => "thin_event_unsupported",
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
    pub account: Option<Cow<'a, str>>,
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
    match raw.object.as_deref() {
        Some("event") => {}
        Some("v2.core.event") => return Err(EnvelopeError::ThinEvent),
        Some(other) => {
            return Err(EnvelopeError::Invalid(format!(
                "\"object\" is {other:?}, expected \"event\""
            )));
        }
        None => return Err(EnvelopeError::Invalid("\"object\" is missing".into())),
    }
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
        .get()
        .parse::<i64>()
        .map_err(|_| EnvelopeError::Invalid("\"created\" must be a Unix timestamp".into()))?;
    let livemode = raw
        .livemode
        .ok_or_else(|| EnvelopeError::Invalid("\"livemode\" is missing".into()))?;
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
    })
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
    fn refuses_thin_and_non_events() {
        let thin = br#"{"id":"evt_1","object":"v2.core.event","type":"v1.billing.meter.error_report_triggered","created":"2024-01-01T00:00:00Z"}"#;
        assert_eq!(
            parse(thin).err().map(|e| e.code()),
            Some("thin_event_unsupported")
        );
        for bad in [
            &br#"{"hello":"world"}"#[..],
            br#"[1,2]"#,
            br#"{"id":"ch_1","object":"event","type":"x","created":1,"livemode":false,"data":{"object":{}}}"#,
            br#"{"id":"evt_1","object":"event","type":"x","created":1,"livemode":false,"data":{}}"#,
            br#"{"id":"evt_1","object":"event","type":"x","created":1,"livemode":false,"data":{"object":3}}"#,
            b"not json",
        ] {
            assert_eq!(parse(bad).err().map(|e| e.code()), Some("payload_invalid"));
        }
    }
}
