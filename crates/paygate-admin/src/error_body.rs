//! The schema of the error body every 4xx/5xx answer carries (`paygate_web::ApiError` writes
//! it): named here, apart from the document, so the handlers' annotations and the document
//! both depend on it and not on each other.

use utoipa::ToSchema;

/// The body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, ToSchema)]
pub struct ErrorDetail {
    /// Stable and machine-readable: `company_not_found`, `invalid_json`, `validation_failed` …
    pub code: String,
    /// A sentence for people (for 5xx a generic one; the cause is logged).
    pub message: String,
    /// The input field the error is about, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}
