//! Thin events (API v2): retrieve the event (`GET /v2/core/events/{id}`) and the object it is
//! about (its `related_object.url`). The v2 API answers JSON and needs a `Stripe-Version`
//! header ([`V2_API_VERSION`]); only reads here, so no idempotency key is needed.

use reqwest::Method;
use secrecy::SecretString;
use serde_json::Value;

use crate::client::StripeClient;
use crate::error::StripeError;
use crate::form::encode_path_segment;

/// The `Stripe-Version` of the v2 calls. v2 endpoints need a version header; the preview
/// release serves every thin event type.
pub const V2_API_VERSION: &str = "2025-09-30.preview";

impl StripeClient {
    /// This client sending `Stripe-Version: version` on every request.
    fn versioned(&self, version: &'static str) -> Self {
        let mut c = self.clone();
        c.stripe_version = Some(version);
        c
    }

    /// Retrieves a thin event (`GET /v2/core/events/{id}`, with the v2 `Stripe-Version`):
    /// the event with its `data` and `related_object`.
    ///
    /// # Errors
    ///
    /// Any [`StripeError`].
    pub async fn retrieve_v2_event(
        &self,
        key: &SecretString,
        event_id: &str,
    ) -> Result<Value, StripeError> {
        let id = encode_path_segment(event_id);
        self.versioned(V2_API_VERSION)
            .send(
                key,
                Method::GET,
                &format!("/v2/core/events/{id}"),
                None,
                None,
                None,
            )
            .await
    }

    /// Retrieves the object a thin event is about at its `related_object.url`, a path of the
    /// API such as `/v1/payment_intents/pi_…` (a `/v2/` path is sent with the v2
    /// `Stripe-Version`). Anything but a plain path of the API is refused, never requested.
    ///
    /// # Errors
    ///
    /// [`StripeError::Decode`] when `url` is not a path of the API; else any [`StripeError`].
    pub async fn retrieve_related_object(
        &self,
        key: &SecretString,
        url: &str,
    ) -> Result<Value, StripeError> {
        let versioned = url.starts_with("/v2/");
        let plain = versioned || url.starts_with("/v1/");
        let safe = url
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/_-.".contains(&b))
            && !url.contains("..");
        if !plain || !safe {
            return Err(StripeError::Decode(
                <serde_json::Error as serde::de::Error>::custom(
                    "related_object.url is not a path of the Stripe API",
                ),
            ));
        }
        let client = if versioned {
            self.versioned(V2_API_VERSION)
        } else {
            self.clone()
        };
        client.send(key, Method::GET, url, None, None, None).await
    }
}
