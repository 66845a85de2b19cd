//! Operator authentication: passwords (Argon2id) exchanged for short-lived JWTs, and an
//! operator's own password change.
//!
//! Policy: tokens are HS256 only (the algorithm is pinned, so `alg: none` or a swapped algorithm
//! is refused), carry `iss = "paygate"`, `aud = "paygate-admin"`, `sub`, `iat`, `exp` and
//! `epoch`, and are checked with 5 s of leeway. The operator is read on every request: they must
//! still exist, not be disabled, and be in the token's epoch (disabling them or changing their
//! password moves it on, so every token of before is refused at once; a token without the claim
//! is of epoch 0). Sign-in attempts go through [`paygate_tenant::signin`]: the e-mail is checked
//! first (422), then the lockout per account and client address (429), then room in the bounded
//! hashing pool (503 `busy` at once); the client address is
//! [`paygate_web::client_addr::client_ip`] (the forwarded one behind a trusted proxy).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::{FromRequest, HttpRequest, HttpResponse, dev::Payload, web};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use paygate_db::entities::operator;
use paygate_tenant::{operators, signin};
use paygate_web::ApiError;
use paygate_web::client_addr::client_ip;

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

    /// A token for `op` in their current epoch, valid `ttl`.
    pub fn issue(&self, op: &operator::Model, ttl: Duration) -> Result<String, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: op.id.clone(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            iat: now,
            exp: now + i64::try_from(ttl.as_secs()).unwrap_or(3600),
            epoch: op.token_epoch,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)
    }

    /// The operator id and epoch of a valid token.
    pub fn verify(&self, token: &str) -> Option<(String, i64)> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|d| (d.claims.sub, d.claims.epoch))
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iss: String,
    aud: String,
    iat: i64,
    exp: i64,
    /// The operator's `token_epoch` at issue.
    #[serde(default)]
    epoch: i64,
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
            let (id, epoch) = state
                .jwt
                .verify(&token)
                .ok_or_else(|| ApiError::unauthorized("the token is invalid or has expired"))?;
            match operators::find_active(&state.db, &id)
                .await?
                .filter(|op| op.token_epoch == epoch)
            {
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
/// The e-mail must be well-formed (422, nothing counted). Failed sign-ins are counted per
/// account and client address: five within 15 minutes lock the account out from that address
/// for 15 minutes after the last (429 with `Retry-After`); after ten from anywhere, the addresses
/// that failed share three attempts a minute, while an address that has not failed is never held
/// back. When too many sign-ins are being checked at once, the answer is 503 `busy` with
/// `Retry-After`, at once.
#[utoipa::path(
    post,
    path = "/admin/v1/auth/token",
    tag = "auth",
    security(()),
    request_body = TokenIn,
    responses(
        (status = 200, description = "A bearer token", body = TokenOut),
        (status = 401, description = "The e-mail or password is wrong (`unauthorized`)", body = ErrorBody),
        (status = 422, description = "The e-mail is not an e-mail address (`invalid_email`)", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins (`too_many_attempts`); `Retry-After` says when to try again", body = ErrorBody),
        (status = 503, description = "Too many sign-ins are being checked at once (`busy`); `Retry-After` says when to try again", body = ErrorBody),
    ),
)]
pub(crate) async fn token(
    req: HttpRequest,
    state: web::Data<AdminState>,
    body: web::Json<TokenIn>,
) -> Result<HttpResponse, ApiError> {
    let TokenIn { email, password } = body.into_inner();
    let client = client_ip(&req);
    let mut attempt = signin::begin(&state.db, &email, client).await?;
    let op = operators::find_by_email(&state.db, attempt.account()).await?;
    let ok = attempt
        .verify(op.as_ref().map(|o| o.password_hash.as_str()), &password)
        .await;
    let op = match op.filter(|op| ok && !op.disabled) {
        Some(op) => op,
        None => {
            attempt.failed(&state.db).await?;
            tracing::info!(client = ?client, "operator sign-in failed");
            return Err(ApiError::unauthorized("the email or password is wrong"));
        }
    };
    attempt.succeeded(&state.db).await?;
    let access_token = state.jwt.issue(&op, state.token_ttl)?;
    Ok(HttpResponse::Ok().json(TokenOut {
        access_token,
        token_type: "Bearer",
        expires_in: state.token_ttl.as_secs(),
    }))
}

/// `POST /admin/v1/auth/password` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeIn {
    #[schema(value_type = String, format = Password)]
    current_password: SecretString,
    /// At least 12 characters.
    #[schema(value_type = String, format = Password)]
    new_password: SecretString,
}

impl std::fmt::Debug for PasswordChangeIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChangeIn").finish_non_exhaustive()
    }
}

/// Changes the signed-in operator's own password.
///
/// The current password is checked as a sign-in is (a wrong one counts toward the lockout).
/// Every token and back-office session the operator held ends at once; the answer carries a
/// fresh token.
#[utoipa::path(
    post,
    path = "/admin/v1/auth/password",
    tag = "auth",
    request_body = PasswordChangeIn,
    responses(
        (status = 200, description = "The password is changed; a fresh token (every older one is refused)", body = TokenOut),
        (status = 422, description = "The current password is wrong (`wrong_password`) or the new one too short (`weak_password`)", body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins (`too_many_attempts`); `Retry-After` says when to try again", body = ErrorBody),
        (status = 503, description = "Too many sign-ins are being checked at once (`busy`); `Retry-After` says when to try again", body = ErrorBody),
    ),
)]
pub(crate) async fn change_password(
    req: HttpRequest,
    state: web::Data<AdminState>,
    me: OperatorPrincipal,
    body: web::Json<PasswordChangeIn>,
) -> Result<HttpResponse, ApiError> {
    let PasswordChangeIn {
        current_password,
        new_password,
    } = body.into_inner();
    operators::check_password(&new_password)
        .map_err(|e| ApiError::from(e).with_field("new_password"))?;
    let client = client_ip(&req);
    let mut attempt = signin::begin(&state.db, &me.email, client).await?;
    let op = operators::find_active(&state.db, &me.id).await?;
    let ok = attempt
        .verify(
            op.as_ref().map(|o| o.password_hash.as_str()),
            &current_password,
        )
        .await;
    if !ok {
        attempt.failed(&state.db).await?;
        return Err(ApiError::unprocessable(
            "wrong_password",
            "current_password: the password is wrong",
        )
        .with_field("current_password"));
    }
    attempt.succeeded(&state.db).await?;
    let op = operators::change_password(&state.db, &me.actor(), &me.id, new_password)
        .await
        .map_err(|e| match e {
            operators::OperatorError::WeakPassword => ApiError::from(e).with_field("new_password"),
            other => other.into(),
        })?;
    let access_token = state.jwt.issue(&op, state.token_ttl)?;
    Ok(HttpResponse::Ok().json(TokenOut {
        access_token,
        token_type: "Bearer",
        expires_in: state.token_ttl.as_secs(),
    }))
}
