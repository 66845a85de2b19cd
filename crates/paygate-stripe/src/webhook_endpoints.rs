//! Webhook endpoints (`/v1/webhook_endpoints`): Paygate registers, checks and repairs the
//! endpoint of an automatically connected profile (issue 17). The signing `secret` is in the
//! answer to the creation only; it is held as a [`SecretString`] so it is never printed.

use std::collections::BTreeMap;

use reqwest::Method;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::Value;

use crate::client::StripeClient;
use crate::error::StripeError;
use crate::form::{FormBuilder, encode_path_segment};
use crate::types::List;

/// A webhook endpoint as Stripe returns it (only the fields Paygate reads).
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookEndpoint {
    /// `we_…`.
    pub id: String,
    #[serde(default)]
    pub url: String,
    /// The event types it sends (`["*"]` for every type).
    #[serde(default)]
    pub enabled_events: Vec<String>,
    /// `enabled` or `disabled` (Stripe disables an endpoint after days of failed deliveries).
    #[serde(default)]
    pub status: Option<String>,
    /// The API version of the events it sends; `None`: the account's default.
    #[serde(default)]
    pub api_version: Option<String>,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The signing secret: in the answer to the creation only.
    #[serde(default, deserialize_with = "secret_opt")]
    pub secret: Option<SecretString>,
}

fn secret_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SecretString>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(SecretString::from))
}

/// Parameters of `POST /v1/webhook_endpoints` (create).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateWebhookEndpoint {
    pub url: String,
    pub enabled_events: Vec<String>,
    /// Pinned: the events' shape is the one Paygate's parsers are written for.
    pub api_version: Option<String>,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
}

/// Parameters of `POST /v1/webhook_endpoints/{id}` (update); what is `None` stays.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpdateWebhookEndpoint {
    pub url: Option<String>,
    pub enabled_events: Option<Vec<String>>,
    /// `Some(false)` re-enables an endpoint Stripe disabled.
    pub disabled: Option<bool>,
}

impl CreateWebhookEndpoint {
    /// Encodes the parameters in Stripe's bracket notation.
    #[must_use]
    pub fn to_form(&self) -> FormBuilder {
        let mut form = FormBuilder::new();
        form.push("url", &self.url)
            .push_list("enabled_events", &self.enabled_events)
            .push_opt("api_version", self.api_version.as_ref())
            .push_opt("description", self.description.as_ref())
            .push_map("metadata", &self.metadata);
        form
    }
}

impl UpdateWebhookEndpoint {
    /// Encodes the parameters in Stripe's bracket notation.
    #[must_use]
    pub fn to_form(&self) -> FormBuilder {
        let mut form = FormBuilder::new();
        form.push_opt("url", self.url.as_ref());
        if let Some(events) = &self.enabled_events {
            form.push_list("enabled_events", events);
        }
        form.push_opt("disabled", self.disabled);
        form
    }
}

impl StripeClient {
    /// Creates a webhook endpoint (`POST /v1/webhook_endpoints`); the answer carries its
    /// signing `secret`.
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]; a restricted key without *Webhook Endpoints: write* is a 403.
    pub async fn create_webhook_endpoint(
        &self,
        key: &SecretString,
        params: &CreateWebhookEndpoint,
        idempotency_key: &str,
    ) -> Result<WebhookEndpoint, StripeError> {
        self.send(
            key,
            Method::POST,
            "/v1/webhook_endpoints",
            None,
            Some(&params.to_form()),
            Some(idempotency_key),
        )
        .await
    }

    /// Updates a webhook endpoint (`POST /v1/webhook_endpoints/{id}`).
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]; an endpoint that is gone is a 404 `resource_missing`.
    pub async fn update_webhook_endpoint(
        &self,
        key: &SecretString,
        id: &str,
        params: &UpdateWebhookEndpoint,
        idempotency_key: &str,
    ) -> Result<WebhookEndpoint, StripeError> {
        self.send(
            key,
            Method::POST,
            &format!("/v1/webhook_endpoints/{}", encode_path_segment(id)),
            None,
            Some(&params.to_form()),
            Some(idempotency_key),
        )
        .await
    }

    /// Deletes a webhook endpoint (`DELETE /v1/webhook_endpoints/{id}`).
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]; an endpoint that is gone already is a 404 `resource_missing`.
    pub async fn delete_webhook_endpoint(
        &self,
        key: &SecretString,
        id: &str,
        idempotency_key: &str,
    ) -> Result<(), StripeError> {
        let _: Value = self
            .send(
                key,
                Method::DELETE,
                &format!("/v1/webhook_endpoints/{}", encode_path_segment(id)),
                None,
                None,
                Some(idempotency_key),
            )
            .await?;
        Ok(())
    }

    /// Every webhook endpoint of the key's account (`GET /v1/webhook_endpoints`, all pages).
    ///
    /// # Errors
    ///
    /// Any [`StripeError`].
    pub async fn list_webhook_endpoints(
        &self,
        key: &SecretString,
    ) -> Result<Vec<WebhookEndpoint>, StripeError> {
        let mut out: Vec<WebhookEndpoint> = Vec::new();
        let mut starting_after: Option<String> = None;
        loop {
            let mut query = FormBuilder::new();
            query
                .push("limit", 100)
                .push_opt("starting_after", starting_after.as_ref());
            let page: List<WebhookEndpoint> = self
                .send(
                    key,
                    Method::GET,
                    "/v1/webhook_endpoints",
                    Some(&query),
                    None,
                    None,
                )
                .await?;
            let last = page.data.last().map(|e| e.id.clone());
            let more = page.has_more;
            out.extend(page.data);
            match (more, last) {
                (true, Some(l)) if starting_after.as_deref() != Some(l.as_str()) => {
                    starting_after = Some(l);
                }
                _ => break,
            }
        }
        Ok(out)
    }
}
