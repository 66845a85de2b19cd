//! Errors of tenant configuration, and how they leave over HTTP.

use paygate_web::ApiError;

/// What can go wrong when changing tenant configuration.
#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    /// Input that breaks a rule; names the field.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        code: &'static str,
        message: String,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("a stored secret could not be decrypted with the configured master key")]
    Crypto,
    /// Stripe could not be reached or failed (502): nothing was changed.
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    #[error("database error")]
    Db(#[from] sea_orm::DbErr),
}

impl TenantError {
    pub(crate) fn invalid(
        field: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            field,
            code,
            message: message.into(),
        }
    }
}

impl From<TenantError> for ApiError {
    fn from(err: TenantError) -> Self {
        match err {
            TenantError::Invalid {
                field,
                code,
                message,
            } => ApiError::unprocessable(code, format!("{field}: {message}")).with_field(field),
            TenantError::NotFound(what) => {
                let code = match what {
                    "company" => "company_not_found",
                    "profile" => "profile_not_found",
                    _ => "not_found",
                };
                ApiError::not_found(code, format!("no such {what}"))
            }
            TenantError::Conflict { code, message } => ApiError::conflict(code, message),
            TenantError::Crypto => ApiError::internal(TenantError::Crypto),
            TenantError::Upstream { code, message } => ApiError::bad_gateway(code, message),
            TenantError::Db(e) => ApiError::from(e),
        }
    }
}
