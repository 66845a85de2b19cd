//! The HTTP client, its configuration and the retry loop.

use std::time::Duration;

use rand::Rng as _;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret as _, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::StripeError;
use crate::form::{FormBuilder, encode_path_segment};
use crate::params::CreateRefund;
use crate::params::{
    CancelSubscription, CreateBillingPortalSession, CreateCharge, CreateCheckoutSession,
    ListEvents, ResumeSubscription, UpdateSubscription,
};
use crate::types::{
    Account, BillingPortalSession, Charge, CheckoutSession, LineItem, List, Subscription,
};

/// The longest wait between two attempts, before jitter. If
/// [`ClientConfig::initial_backoff`] is longer, that value is the limit instead.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The page size used to fetch the remaining line items of a Checkout Session.
const LINE_ITEMS_PAGE_SIZE: u32 = 100;

/// Configuration for a [`StripeClient`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// The base URL of the API, without a trailing `/v1`. Defaults to
    /// `https://api.stripe.com`. Tests point it at a fake server.
    pub api_base: String,
    /// The base URL of Stripe's file uploads (`POST /v1/files`), without a trailing `/v1`.
    /// Defaults to `https://files.stripe.com`. Tests point it at the same fake server.
    pub files_base: String,
    /// The time limit for establishing a TCP/TLS connection.
    pub connect_timeout: Duration,
    /// The time limit for one attempt, from sending the request to reading the
    /// whole response.
    pub request_timeout: Duration,
    /// How many times a failed request is retried. `0` disables retries.
    pub max_retries: u32,
    /// The wait before the first retry. Each later retry waits twice as long
    /// (capped at 30 s), with a random part added (jitter).
    pub initial_backoff: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            api_base: "https://api.stripe.com".to_owned(),
            files_base: "https://files.stripe.com".to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
        }
    }
}

/// A Stripe API client. Create it once and clone it freely, because clones share
/// the connection pool.
///
/// The client holds no key. Every call takes the company's secret key.
#[derive(Debug, Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    config: ClientConfig,
    /// Whether a 429 is retried (see [`StripeClient::without_429_retries`]).
    retry_on_429: bool,
    /// The `Stripe-Version` header sent, if any (the v2 API needs one: see `thin_events`).
    pub(crate) stripe_version: Option<&'static str>,
}

impl StripeClient {
    /// Creates a client with its own `reqwest::Client`. The timeouts come from
    /// `config`.
    ///
    /// # Errors
    ///
    /// Returns [`StripeError::Network`] if the HTTP client cannot be built, for
    /// example because the TLS backend fails to initialise.
    pub fn new(config: ClientConfig) -> Result<Self, StripeError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("paygate-stripe/", env!("CARGO_PKG_VERSION")))
            // HTTP(S)_PROXY and ALL_PROXY are not read: a proxy would see every secret key.
            .no_proxy()
            .build()
            .map_err(StripeError::Network)?;
        Ok(Self::with_http_client(config, http))
    }

    /// Creates a client on top of an existing `reqwest::Client`. The timeouts in
    /// `config` are not applied here, so `http` must already have them.
    #[must_use]
    pub fn with_http_client(mut config: ClientConfig, http: reqwest::Client) -> Self {
        let trimmed = config.api_base.trim_end_matches('/').len();
        config.api_base.truncate(trimmed);
        let trimmed = config.files_base.trim_end_matches('/').len();
        config.files_base.truncate(trimmed);
        Self {
            http,
            config,
            retry_on_429: true,
            stripe_version: None,
        }
    }

    /// The same client (sharing its connection pool) for calls anyone can trigger, such as
    /// the shopper's landing page: a 429 is returned at once, never retried, whatever
    /// `Stripe-Should-Retry` says. Stripe's rate limits are per account, so retrying a caller
    /// nobody authenticated would multiply a flood against the merchant's whole account.
    /// Other failures are retried as configured.
    #[must_use]
    pub fn without_429_retries(&self) -> Self {
        Self {
            retry_on_429: false,
            ..self.clone()
        }
    }

    /// The configuration this client was built with.
    #[must_use]
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Retrieves a Checkout Session with all of its line items.
    ///
    /// The first request is `GET /v1/checkout/sessions/{id}?expand[]=line_items`.
    /// If the embedded list has more items, the rest are fetched with
    /// `GET /v1/checkout/sessions/{id}/line_items?limit=100&starting_after=<last id>`
    /// until `has_more` is false.
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]. Stripe reports a session that does not exist as
    /// `Api { status: 404, code: Some("resource_missing"), .. }`.
    pub async fn retrieve_checkout_session(
        &self,
        key: &SecretString,
        session_id: &str,
    ) -> Result<CheckoutSession, StripeError> {
        let id = encode_path_segment(session_id);
        let mut query = FormBuilder::new();
        query.push_list("expand", ["line_items"]);
        let raw: Value = self
            .send(
                key,
                Method::GET,
                &format!("/v1/checkout/sessions/{id}"),
                Some(&query),
                None,
                None,
            )
            .await?;
        let (mut session, mut has_more) =
            CheckoutSession::from_value(raw).map_err(StripeError::Decode)?;

        let items_path = format!("/v1/checkout/sessions/{id}/line_items");
        while has_more {
            let Some(last_id) = session
                .line_items
                .last()
                .map(|item| item.id.clone())
                .filter(|id| !id.is_empty())
            else {
                tracing::warn!(
                    session_id,
                    "line_items.has_more is true but there is no last item ID to page from"
                );
                break;
            };
            let mut query = FormBuilder::new();
            query
                .push("limit", LINE_ITEMS_PAGE_SIZE)
                .push("starting_after", &last_id);
            let page: List<LineItem> = self
                .send(key, Method::GET, &items_path, Some(&query), None, None)
                .await?;
            has_more = page.has_more;
            if page.data.is_empty() {
                break;
            }
            session.line_items.extend(page.data);
            if session.line_items.last().map(|item| item.id.as_str()) == Some(last_id.as_str()) {
                tracing::warn!(
                    session_id,
                    "line item pagination made no progress; stopping"
                );
                break;
            }
        }
        Ok(session)
    }

    /// Creates a Checkout Session (`POST /v1/checkout/sessions`).
    ///
    /// Retries send the same `idempotency_key`. Reusing a key with different
    /// parameters makes Stripe answer with an `idempotency_error`.
    ///
    /// # Errors
    ///
    /// Any [`StripeError`].
    pub async fn create_checkout_session(
        &self,
        key: &SecretString,
        params: &CreateCheckoutSession,
        idempotency_key: &str,
    ) -> Result<CheckoutSession, StripeError> {
        self.send(
            key,
            Method::POST,
            "/v1/checkout/sessions",
            None,
            Some(&params.to_form()),
            Some(idempotency_key),
        )
        .await
    }

    /// Creates a charge from a source (`POST /v1/charges`, the legacy Sources flow).
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]. A declined card is `Api { status: 402, error_type:
    /// "card_error", .. }`.
    pub async fn create_charge(
        &self,
        key: &SecretString,
        params: &CreateCharge,
        idempotency_key: &str,
    ) -> Result<Charge, StripeError> {
        self.send(
            key,
            Method::POST,
            "/v1/charges",
            None,
            Some(&params.to_form()),
            Some(idempotency_key),
        )
        .await
    }

    /// Cancels a subscription at once (`DELETE /v1/subscriptions/{id}`). Stripe answers with
    /// the subscription, now `canceled`.
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]. An unknown subscription is `Api { status: 404, code:
    /// Some("resource_missing"), .. }`.
    pub async fn cancel_subscription(
        &self,
        key: &SecretString,
        subscription_id: &str,
        params: &CancelSubscription,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        let form = params.to_form();
        self.send(
            key,
            Method::DELETE,
            &format!("/v1/subscriptions/{}", encode_path_segment(subscription_id)),
            None,
            (!form.is_empty()).then_some(&form),
            Some(idempotency_key),
        )
        .await
    }

    /// Updates a subscription (`POST /v1/subscriptions/{id}`), for example to end it at the
    /// end of its period (`cancel_at_period_end=true`) or to keep it going (`false`).
    ///
    /// # Errors
    ///
    /// Any [`StripeError`].
    pub async fn update_subscription(
        &self,
        key: &SecretString,
        subscription_id: &str,
        params: &UpdateSubscription,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        self.send(
            key,
            Method::POST,
            &format!("/v1/subscriptions/{}", encode_path_segment(subscription_id)),
            None,
            Some(&params.to_form()),
            Some(idempotency_key),
        )
        .await
    }

    /// Resumes a `paused` subscription (`POST /v1/subscriptions/{id}/resume`).
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]. A subscription that is not paused is an `invalid_request_error`.
    pub async fn resume_subscription(
        &self,
        key: &SecretString,
        subscription_id: &str,
        params: &ResumeSubscription,
        idempotency_key: &str,
    ) -> Result<Subscription, StripeError> {
        let form = params.to_form();
        self.send(
            key,
            Method::POST,
            &format!(
                "/v1/subscriptions/{}/resume",
                encode_path_segment(subscription_id)
            ),
            None,
            (!form.is_empty()).then_some(&form),
            Some(idempotency_key),
        )
        .await
    }

    /// Creates a customer portal session (`POST /v1/billing_portal/sessions`): a short-lived
    /// URL where the customer manages their subscriptions and payment methods.
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]. Without a saved portal configuration in the Stripe account
    /// (test mode has its own), Stripe answers with an `invalid_request_error`.
    pub async fn create_billing_portal_session(
        &self,
        key: &SecretString,
        params: &CreateBillingPortalSession,
        idempotency_key: &str,
    ) -> Result<BillingPortalSession, StripeError> {
        self.send(
            key,
            Method::POST,
            "/v1/billing_portal/sessions",
            None,
            Some(&params.to_form()),
            Some(idempotency_key),
        )
        .await
    }

    /// Creates a refund (`POST /v1/refunds`). Returns the refund object as Stripe sent it.
    ///
    /// Retries send the same `idempotency_key`, and so does a caller repeating a request: Stripe
    /// answers the refund it made for the key instead of making another.
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]. A charge refunded already is `Api { status: 400, code:
    /// "charge_already_refunded", .. }`.
    pub async fn create_refund(
        &self,
        key: &SecretString,
        params: &CreateRefund,
        idempotency_key: &str,
    ) -> Result<Value, StripeError> {
        self.send(
            key,
            Method::POST,
            "/v1/refunds",
            None,
            Some(&params.to_form()),
            Some(idempotency_key),
        )
        .await
    }

    /// Lists events (`GET /v1/events`), newest first. Used to recover webhook
    /// events that were missed. To get the next (older) page, pass the last
    /// event's `id` as [`ListEvents::starting_after`].
    ///
    /// # Errors
    ///
    /// Any [`StripeError`].
    pub async fn list_events(
        &self,
        key: &SecretString,
        params: &ListEvents,
    ) -> Result<List<Value>, StripeError> {
        self.send(
            key,
            Method::GET,
            "/v1/events",
            Some(&params.to_form()),
            None,
            None,
        )
        .await
    }

    /// Retrieves the account that owns `key` (`GET /v1/account`). Used to check
    /// that a key works.
    ///
    /// # Errors
    ///
    /// Any [`StripeError`]. Stripe reports an invalid key as
    /// `Api { status: 401, .. }`.
    pub async fn retrieve_account(&self, key: &SecretString) -> Result<Account, StripeError> {
        self.send(key, Method::GET, "/v1/account", None, None, None)
            .await
    }

    /// Sends one logical request, retrying it as configured, and decodes a 2xx body
    /// as `T`.
    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        key: &SecretString,
        method: Method,
        path: &str,
        query: Option<&FormBuilder>,
        form: Option<&FormBuilder>,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let body = form.map(|f| RawBody {
            content_type: "application/x-www-form-urlencoded".to_owned(),
            bytes: f.encode().into_bytes(),
        });
        let base = self.config.api_base.clone();
        self.send_raw(key, method, &base, path, query, body, idempotency_key)
            .await
    }

    /// [`send`](Self::send) to any base URL (the API's or the files host) with a body of any
    /// content type (a form, or a multipart upload).
    #[expect(clippy::too_many_arguments, reason = "one private request primitive")]
    pub(crate) async fn send_raw<T: DeserializeOwned>(
        &self,
        key: &SecretString,
        method: Method,
        base: &str,
        path: &str,
        query: Option<&FormBuilder>,
        body: Option<RawBody>,
        idempotency_key: Option<&str>,
    ) -> Result<T, StripeError> {
        let secret = key.expose_secret();
        // The demo company's key (`sk_test_paygate_demo_…`, never a live key) is answered in
        // process; no other key gets here (see `crate::demo`).
        if crate::demo::is_demo_key(secret) {
            let answer = crate::demo::respond(&method, path)?;
            return serde_json::from_value(answer).map_err(StripeError::Decode);
        }
        let mut auth = HeaderValue::try_from(format!("Bearer {secret}"))
            .map_err(|_| StripeError::invalid_key())?;
        auth.set_sensitive(true);

        let mut url = format!("{base}{path}");
        if let Some(query) = query.filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(&query.encode());
        }

        let mut retry: u32 = 0;
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header(AUTHORIZATION, auth.clone());
            if let Some(idempotency_key) = idempotency_key {
                request = request.header("Idempotency-Key", idempotency_key);
            }
            if let Some(version) = self.stripe_version {
                request = request.header("Stripe-Version", version);
            }
            if let Some(body) = &body {
                request = request
                    .header(CONTENT_TYPE, body.content_type.as_str())
                    .body(body.bytes.clone());
            }

            let (error, should_retry) = match self.attempt(request, secret).await {
                Ok(text) => {
                    tracing::debug!(%method, path, retry, "Stripe request succeeded");
                    return serde_json::from_str(&text).map_err(StripeError::Decode);
                }
                Err(failure) => failure,
            };
            let retryable = if error.status() == Some(429) && !self.retry_on_429 {
                false
            } else {
                should_retry.unwrap_or_else(|| error.is_retryable())
            };
            if !retryable || retry >= self.config.max_retries {
                tracing::debug!(%method, path, retry, error = %error, "Stripe request failed");
                return Err(error);
            }
            let delay = backoff_delay(self.config.initial_backoff, retry);
            retry += 1;
            tracing::warn!(
                %method,
                path,
                retry,
                max_retries = self.config.max_retries,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                error = %error,
                "Stripe request failed; retrying"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Makes one attempt. On success, returns the body of the 2xx response.
    /// On failure, returns the error and the value of the `Stripe-Should-Retry`
    /// header, if Stripe sent one.
    async fn attempt(
        &self,
        request: reqwest::RequestBuilder,
        secret: &str,
    ) -> Result<String, (StripeError, Option<bool>)> {
        let response = request
            .send()
            .await
            .map_err(|e| (StripeError::Network(e), None))?;
        let status = response.status();
        let headers = response.headers();
        let request_id = headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let should_retry = headers
            .get("stripe-should-retry")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| match v.trim() {
                "true" => Some(true),
                "false" => Some(false),
                _ => None,
            });
        let text = response
            .text()
            .await
            .map_err(|e| (StripeError::Network(e), None))?;
        tracing::debug!(
            status = status.as_u16(),
            request_id = request_id.as_deref(),
            "Stripe response"
        );
        if status.is_success() {
            Ok(text)
        } else {
            Err((
                StripeError::from_response(status.as_u16(), &text, secret),
                should_retry,
            ))
        }
    }
}

/// A request body and its content type.
pub(crate) struct RawBody {
    pub(crate) content_type: String,
    pub(crate) bytes: Vec<u8>,
}

/// The wait before retry number `retry + 1`. It is `initial * 2^retry`, capped,
/// then scaled by a random factor between 0.5 and 1.
fn backoff_delay(initial: Duration, retry: u32) -> Duration {
    let exponential = initial.saturating_mul(1u32 << retry.min(20));
    let capped = exponential.min(MAX_BACKOFF.max(initial));
    let half = capped / 2;
    let jitter_factor: f64 = rand::thread_rng().gen_range(0.0..=1.0);
    let jitter = Duration::try_from_secs_f64(half.as_secs_f64() * jitter_factor).unwrap_or(half);
    half.saturating_add(jitter.min(half))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let initial = Duration::from_millis(100);
        for retry in 0..40 {
            let d = backoff_delay(initial, retry);
            let full = initial
                .saturating_mul(1u32 << retry.min(20))
                .min(MAX_BACKOFF);
            assert!(
                d >= full / 2 && d <= full,
                "retry {retry}: {d:?} vs {full:?}"
            );
        }
        assert!(backoff_delay(Duration::MAX, 5) <= Duration::MAX);
        assert_eq!(backoff_delay(Duration::ZERO, 3), Duration::ZERO);
    }
}
