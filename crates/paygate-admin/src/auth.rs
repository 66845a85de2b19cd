//! Operator authentication: passwords (Argon2id) exchanged for short-lived JWTs.
//!
//! Policy: tokens are HS256 only (the algorithm is pinned, so `alg: none` or a swapped algorithm
//! is refused), carry `iss = "paygate"`, `aud = "paygate-admin"`, `sub`, `iat`, `exp`, and are
//! checked with 5 s of leeway. The operator must still exist and not be disabled. Passwords are
//! checked by [`paygate_tenant::operators`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use paygate_tenant::operators;
use paygate_web::ApiError;

use crate::AdminState;
use crate::error_body::ErrorBody;

const ISSUER: &str = "paygate";
const AUDIENCE: &str = "paygate-admin";

/// Keys that sign and check operator tokens.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JwtKeys(..)")
    }
}

impl JwtKeys {
    /// Keys from a 32-byte secret (derived from the master key).
    pub fn new(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// A token for `operator_id`, valid `ttl`.
    pub fn issue(&self, operator_id: &str, ttl: Duration) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: operator_id.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(3600),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The operator id of a valid token.
    pub fn verify(&self, token: &str) -> Option<String> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| d.claims.sub)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
}

/// The authenticated operator of a request.
#[derive(Clone, Debug)]
pub struct OperatorPrincipal {
    pub id: String,
    pub email: String,
}

impl OperatorPrincipal {
    /// How the audit log names this operator.
    pub fn actor(&self) -> String {
        format!("operator:{}", self.email)
    }
}

impl FromRequest for OperatorPrincipal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AdminState>>().cloned();
        let token = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(|t| t.trim().to_owned());
        Box::pin(async move {
            let state = state
                .ok_or_else(|| ApiError::internal(std::io::Error::other("admin state missing")))?;
            let token = token.ok_or_else(|| {
                ApiError::unauthorized("a bearer token is required: POST /admin/v1/auth/token")
            })?;
            let id = state
                .jwt
                .verify(&token)
                .ok_or_else(|| ApiError::unauthorized("the token is invalid or has expired"))?;
            match operators::find_active(&state.db, &id).await? {
                Some(op) => Ok(OperatorPrincipal {
                    id: op.id,
                    email: op.email,
                }),
                None => Err(ApiError::unauthorized(
                    "the token is invalid or has expired",
                )),
            }
        })
    }
}

/// `POST /admin/v1/auth/token` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: SecretString,
}

impl std::fmt::Debug for TokenIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIn")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A bearer token for the admin API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenOut {
    access_token: String,
    /// `Bearer`.
    token_type: &'static str,
    /// Seconds the token is valid.
    expires_in: u64,
}

/// Exchanges an operator's e-mail and password for a bearer token.
///
/// Failed sign-ins are throttled per e-mail and address.
#[utoipa::path(
    post,
    path = "/admin/v1/auth/token",
    tag = "auth",
    security(()),
    request_body = TokenIn,
    responses(
        (status = 200, description = "A bearer token", body = TokenOut),
        (status = 401, description = "The e-mail or password is wrong (`unauthorized`)", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins (`too_many_attempts`)", body = ErrorBody),
    ),
)]
pub(crate) async fn token(
    req: HttpRequest,
    state: web::Data<AdminState>,
    body: web::Json<TokenIn>,
) -> Result<HttpResponse, ApiError> {
    let TokenIn { email, password } = body.into_inner();
    let ip = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let who = email.trim().to_lowercase();
    // Per e-mail and address: guessing is slowed down without letting a stranger lock an
    // operator out from everywhere.
    let keys = [format!("{who}|{ip}")];
    if let Some(wait) = keys.iter().find_map(|k| state.signin_throttle.locked(k)) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "too many failed sign-ins; try again in {} s",
                wait.as_secs() + 1
            ),
        ));
    }
    let op = match operators::authenticate(&state.db, &email, &password).await? {
        Some(op) => op,
        None => {
            for k in &keys {
                state.signin_throttle.fail(k);
            }
            tracing::info!(ip = %ip, "operator sign-in failed");
            return Err(ApiError::unauthorized("the email or password is wrong"));
        }
    };
    state.signin_throttle.clear(&keys[0]);
    let access_token = state.jwt.issue(&op.id, state.token_ttl)?;
    Ok(HttpResponse::Ok().json(TokenOut {
        access_token,
        token_type: "Bearer",
        expires_in: state.token_ttl.as_secs(),
    }))
}
