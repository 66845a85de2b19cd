//! The error type returned by every call.

use serde::Deserialize;

/// An error from a Stripe call.
///
/// No variant ever contains the secret key. This covers both `Display` and `Debug`.
#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// Stripe answered with a non-2xx status. The fields come from the
    /// `{"error": {...}}` body.
    ///
    /// If the body is not a Stripe error object, `error_type` is `"unknown"` and
    /// `message` holds the start of the body.
    /// A key that cannot be sent in an HTTP header is rejected before any request
    /// is made. It is reported the way Stripe reports an invalid key: status 401,
    /// type `invalid_request_error`, code `invalid_api_key`.
    #[error("{}", format_api_error(*.status, .error_type, .code.as_deref(), .message.as_deref(), .param.as_deref()))]
    Api {
        /// The HTTP status code.
        status: u16,
        /// Stripe's `error.type`, for example `card_error` or `invalid_request_error`.
        error_type: String,
        /// Stripe's `error.code`, for example `resource_missing`.
        code: Option<String>,
        /// Stripe's human-readable `error.message`.
        message: Option<String>,
        /// The request parameter the error relates to (`error.param`).
        param: Option<String>,
    },
    /// No usable response was received. This covers connection failures,
    /// timeouts and connections that broke while the body was being read.
    /// It is also used when the request could not be built at all, for example
    /// because the idempotency key is not a valid header value. That case is not
    /// retryable.
    #[error("network error talking to Stripe: {0}")]
    Network(#[source] reqwest::Error),
    /// Stripe answered 2xx, but the body did not match the expected shape.
    #[error("could not decode Stripe response: {0}")]
    Decode(#[source] serde_json::Error),
}

impl StripeError {
    /// Whether trying the same request again (with the same idempotency key) may
    /// succeed. That is the case for network errors, HTTP 429 and HTTP 5xx.
    ///
    /// The retry loop in [`crate::StripeClient`] also honours the
    /// `Stripe-Should-Retry` response header. That header takes precedence over
    /// this method.
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Api { status, .. } => *status == 429 || *status >= 500,
            Self::Network(e) => e.is_connect() || e.is_timeout() || e.is_request() || e.is_body(),
            Self::Decode(_) => false,
        }
    }

    /// The HTTP status for [`StripeError::Api`]. `None` for the other variants.
    #[must_use]
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            Self::Network(_) | Self::Decode(_) => None,
        }
    }

    /// Builds an [`StripeError::Api`] from an error response body.
    /// Any occurrence of `secret` in the message is redacted.
    pub(crate) fn from_response(status: u16, body: &str, secret: &str) -> Self {
        #[derive(Deserialize)]
        struct Envelope {
            error: ErrorBody,
        }
        #[derive(Deserialize)]
        struct ErrorBody {
            #[serde(default, rename = "type")]
            error_type: Option<String>,
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            message: Option<String>,
            #[serde(default)]
            param: Option<String>,
        }

        let redact = |s: String| {
            if secret.is_empty() {
                s
            } else {
                s.replace(secret, "[REDACTED]")
            }
        };

        match serde_json::from_str::<Envelope>(body) {
            Ok(Envelope { error }) => Self::Api {
                status,
                error_type: error.error_type.unwrap_or_else(|| "unknown".to_owned()),
                code: error.code,
                message: error.message.map(redact),
                param: error.param,
            },
            Err(_) => {
                let snippet: String = redact(body.to_owned()).chars().take(200).collect();
                let snippet = snippet.trim();
                Self::Api {
                    status,
                    error_type: "unknown".to_owned(),
                    code: None,
                    message: (!snippet.is_empty()).then(|| snippet.to_owned()),
                    param: None,
                }
            }
        }
    }

    pub(crate) fn invalid_key() -> Self {
        Self::Api {
            status: 401,
            error_type: "invalid_request_error".to_owned(),
            code: Some("invalid_api_key".to_owned()),
            message: Some(
                "the API key contains characters not allowed in an HTTP header".to_owned(),
            ),
            param: None,
        }
    }
}

fn format_api_error(
    status: u16,
    error_type: &str,
    code: Option<&str>,
    message: Option<&str>,
    param: Option<&str>,
) -> String {
    let mut s = format!("Stripe API error (HTTP {status}, {error_type}");
    if let Some(code) = code {
        s.push('/');
        s.push_str(code);
    }
    s.push(')');
    if let Some(message) = message {
        s.push_str(": ");
        s.push_str(message);
    }
    if let Some(param) = param {
        s.push_str(" [param: ");
        s.push_str(param);
        s.push(']');
    }
    s
}
