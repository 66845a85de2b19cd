//! The event envelope: only the fields the intake needs, borrowed from the body.
//!
//! Two shapes are read: a snapshot event (`"object": "event"`, `created` in Unix seconds, the
//! object in `data.object`) and a thin event of an event destination (`"object":
//! "v2.core.event"`, `created` as an RFC 3339 string, the connected account in `context`, no
//! snapshot: the worker fetches the event and its related object). [`Envelope::thin`] says which.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor, value::MapAccessDeserializer};
use serde::{Deserialize, Deserializer};
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
struct Raw<'a, O> {
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
    data: Option<RawData<O>>,
}

#[derive(Deserialize)]
struct RawData<O> {
    object: Option<MaybeObject<O>>,
}

/// `data.object`: a JSON object read as `O`, or any other value (refused by [`parse_with`]
/// with its own message, after the envelope's other fields).
enum MaybeObject<O> {
    Object(O),
    Other,
}

impl<'de, O: Deserialize<'de>> Deserialize<'de> for MaybeObject<O> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Any<O>(PhantomData<O>);
        impl<'de, O: Deserialize<'de>> Visitor<'de> for Any<O> {
            type Value = MaybeObject<O>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                O::deserialize(MapAccessDeserializer::new(map)).map(MaybeObject::Object)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(MaybeObject::Other)
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(MaybeObject::Other)
            }
        }
        d.deserialize_any(Any(PhantomData))
    }
}

/// Parses and checks the envelope.
pub fn parse(body: &[u8]) -> Result<Envelope<'_>, EnvelopeError> {
    parse_with::<IgnoredAny>(body).map(|(envelope, _)| envelope)
}

/// [`parse`], reading a snapshot event's `data.object` as `O` in the same pass (`None` for a
/// thin event): what the intake needs of the object without reading the body twice. `O` reads
/// the object's fields it names and skips the rest; a field it cannot read makes the whole
/// body unreadable, so its fields should take any JSON value.
pub fn parse_with<'a, O: Deserialize<'a>>(
    body: &'a [u8],
) -> Result<(Envelope<'a>, Option<O>), EnvelopeError> {
    let raw: Raw<'a, O> = serde_json::from_slice(body).map_err(|e| {
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
        let envelope = Envelope {
            id,
            event_type,
            created,
            livemode,
            api_version: None,
            account,
            thin: true,
        };
        return Ok((envelope, None));
    }
    let object = match raw.data.and_then(|d| d.object) {
        Some(MaybeObject::Object(o)) => o,
        Some(MaybeObject::Other) => {
            return Err(EnvelopeError::Invalid(
                "\"data.object\" must be an object".into(),
            ));
        }
        None => return Err(EnvelopeError::Invalid("\"data.object\" is missing".into())),
    };
    let envelope = Envelope {
        id,
        event_type,
        created,
        livemode,
        api_version: raw.api_version,
        account: raw.account,
        thin: false,
    };
    Ok((envelope, Some(object)))
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
    fn reads_the_object_in_the_same_pass() {
        #[derive(Deserialize, PartialEq, Debug)]
        struct Object {
            id: String,
            #[serde(default)]
            amount: Option<i64>,
        }
        let body = br#"{"id":"evt_1","object":"event","created":5,"data":{"object":{"id":"pi_1","nested":{"amount":7},"list":[1,{"a":2}],"amount":3},"previous_attributes":{"amount":1}},"livemode":true,"type":"payment_intent.succeeded"}"#;
        let (e, object) = parse_with::<Object>(body).expect("an event");
        assert_eq!((e.id.as_ref(), e.livemode), ("evt_1", true));
        let want = Object {
            id: "pi_1".into(),
            amount: Some(3),
        };
        assert_eq!(object, Some(want));
        let thin = br#"{"id":"evt_1","object":"v2.core.event","type":"x","created":"2024-01-01T00:00:00Z","livemode":false}"#;
        assert!(parse_with::<Object>(thin).is_ok_and(|(e, o)| e.thin && o.is_none()));
    }

    #[test]
    fn says_what_is_wrong_with_data_object() {
        let message = |object: &str| {
            let body = format!(
                r#"{{"id":"evt_1","object":"event","type":"x","created":1,"livemode":false,"data":{{"object":{object}}}}}"#
            );
            parse(body.as_bytes()).err().map(|e| e.to_string())
        };
        for not_an_object in ["3", "\"pi_1\"", "[1,[2],{}]", "true", "1.5"] {
            let m = message(not_an_object);
            assert!(
                m.as_deref()
                    .is_some_and(|m| m.contains("must be an object")),
                "{not_an_object}: {m:?}"
            );
        }
        let missing = message("null");
        assert!(missing.is_some_and(|m| m.contains("is missing")));
        assert_eq!(message("{}"), None);
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
