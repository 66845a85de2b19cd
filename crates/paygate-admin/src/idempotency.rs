//! Idempotent requests of the merchant API: every `POST` under `/api/v1` honours an
//! `Idempotency-Key` header, as Stripe's own API does. The layer wraps the whole `/api/v1` scope
//! (see `routes`), so an endpoint added later is covered without a line of its own.
//!
//! Policy:
//! - Keys belong to the API key's company *and mode*: company A never sees B's answers, and a
//!   test key's answers never answer a live key (`uq_idempotency_keys_company_mode_key`).
//! - A key is 1 to [`MAX_KEY_LEN`] characters of visible ASCII; anything else is 400
//!   `invalid_idempotency_key`, before the handler runs.
//! - The first request with a key claims it (the insert of an `in_flight` row under the unique
//!   index) and runs. Its answer is stored when it is a 2xx, or a 400 / 422 (the request itself
//!   is invalid, and stays so): the same key with the same method, path and body then gets that
//!   answer again, status and body, with `Idempotent-Replayed: true`, and nothing runs. Any other
//!   answer (5xx, and the 4xx that depend on state that may change: 401, 403, 404, 409, 413,
//!   429 …) is not stored: the claim is released and a retry runs anew.
//! - The same key with another method, path or body (their SHA-256) is 409
//!   `idempotency_key_reused`; the same key while its first request still runs is 409
//!   `idempotency_key_in_use`. Neither runs the handler.
//! - Keys are kept [`KEPT`] (24 hours) from their first use: an expired key is deleted when it
//!   is presented again, and each new key purges the expired keys of its company and mode. A
//!   claim whose request has not finished within [`IN_FLIGHT_LEASE`] (its replica died) may be
//!   taken over.
//! - The handler runs in a task of its own, so a client that hangs up does not cut it off: its
//!   answer is stored for the retry to find.
//! - Stored answers are sealed under the master key (`IDEMPOTENT_ANSWER`, bound to the claim's
//!   row): some carry a secret shown once (a new endpoint's `whsec_…`). One that no longer
//!   opens (the master key was replaced and the old one dropped) is deleted, and its request
//!   runs anew.
//! - `POST`s without the header, and other methods, pass through untouched.

use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, BytesMut};
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError};
use futures_util::StreamExt;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, QueryFilter, Set, SqlErr,
    sea_query::Expr,
};
use sha2::{Digest, Sha256};

use paygate_db::entities::idempotency_key;
use paygate_db::{Scope, new_id, now_ms};
use paygate_tenant::Keyring;
use paygate_tenant::crypto::field::IDEMPOTENT_ANSWER;
use paygate_web::ApiError;
use secrecy::ExposeSecret;

use crate::AdminState;
use crate::merchant::authenticate;

/// The request header.
pub const HEADER: &str = "Idempotency-Key";
/// The header of a replayed answer (`true`).
pub const REPLAYED_HEADER: &str = "Idempotent-Replayed";
/// The longest key accepted, in characters.
pub const MAX_KEY_LEN: usize = 255;
/// How long a key and its answer are kept.
pub const KEPT: Duration = Duration::from_secs(24 * 3600);
/// How long a claim may stay in flight before another request with its key may take it over.
pub const IN_FLIGHT_LEASE: Duration = Duration::from_secs(5 * 60);
/// The largest body read (the JSON bodies' limit of the app).
const MAX_BODY: usize = 256 * 1024;

const IN_FLIGHT: &str = "in_flight";
const DONE: &str = "done";

/// Whether an answer of `status` is stored for the key's retries (see the module docs).
pub fn is_stored(status: StatusCode) -> bool {
    status.is_success()
        || status == StatusCode::BAD_REQUEST
        || status == StatusCode::UNPROCESSABLE_ENTITY
}

/// The middleware (`web::scope("/api/v1").wrap(from_fn(idempotency::middleware))`).
pub async fn middleware<B>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<BoxBody>, Error>
where
    B: MessageBody + 'static,
{
    if req.method() != Method::POST || !req.headers().contains_key(HEADER) {
        return Ok(next.call(req).await?.map_into_boxed_body());
    }
    let refuse = |req: ServiceRequest, e: ApiError| Ok(req.into_response(e.error_response()));
    let who = match authenticate(req.request()).await {
        Ok(who) => who,
        Err(e) => return refuse(req, e),
    };
    let key = match valid_key(&req) {
        Ok(k) => k,
        Err(e) => return refuse(req, e),
    };
    let Some(state) = req.app_data::<actix_web::web::Data<AdminState>>().cloned() else {
        let e = ApiError::internal(std::io::Error::other("state missing"));
        return refuse(req, e);
    };
    let body = match read_body(&mut req).await {
        Ok(b) => b,
        Err(e) => return refuse(req, e),
    };
    let hash = request_hash(&req, &body);
    let keyring = state.tenants.keyring().clone();
    let claim = match claim(&state.db, &keyring, who.scope, &key, &hash).await {
        Ok(Claim::Mine(id)) => id,
        Ok(Claim::Replay(status, body)) => return Ok(req.into_response(replay(status, body))),
        Err(e) => return refuse(req, e),
    };
    req.set_payload(body.into());
    // Its own task: the answer is stored even when the client hangs up meanwhile.
    let db = state.db.clone();
    let scope = who.scope;
    let run = actix_web::rt::spawn(async move {
        let res = match next.call(req).await {
            Ok(res) => res,
            Err(e) => {
                release(&db, scope, &claim).await;
                return Err(e);
            }
        };
        let (http_req, res) = res.into_parts();
        let (head, body) = res.into_parts();
        let bytes = match actix_web::body::to_bytes(body).await {
            Ok(b) => b,
            Err(e) => {
                release(&db, scope, &claim).await;
                let e = ApiError::internal(std::io::Error::other(e.into().to_string()));
                return Ok(ServiceResponse::new(http_req, e.error_response()));
            }
        };
        let status = head.status();
        if is_stored(status) {
            store(&db, &keyring, scope, &claim, status, &bytes).await;
        } else {
            release(&db, scope, &claim).await;
        }
        Ok(ServiceResponse::new(
            http_req,
            head.set_body(bytes).map_into_boxed_body(),
        ))
    });
    match run.await {
        Ok(res) => res,
        Err(e) => Err(ApiError::internal(std::io::Error::other(e.to_string())).into()),
    }
}

/// The request's key, checked (400 `invalid_idempotency_key` otherwise).
fn valid_key(req: &ServiceRequest) -> Result<String, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request("invalid_idempotency_key", format!("Idempotency-Key: {why}"))
    };
    let v = req
        .headers()
        .get(HEADER)
        .and_then(|h| h.to_str().ok())
        .ok_or_else(|| bad("must be visible ASCII characters"))?;
    if v.is_empty() || v.trim() != v {
        return Err(bad("must not be empty or start or end with spaces"));
    }
    if v.chars().count() > MAX_KEY_LEN {
        return Err(bad(&format!("must be at most {MAX_KEY_LEN} characters")));
    }
    Ok(v.to_owned())
}

/// The whole body, at most [`MAX_BODY`] bytes (413 beyond).
async fn read_body(req: &mut ServiceRequest) -> Result<Bytes, ApiError> {
    let mut payload = req.take_payload();
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::bad_request("invalid_json", "the request body could not be read")
        })?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is too large",
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// SHA-256 (hex) of the method, the path with its query, and the body.
fn request_hash(req: &ServiceRequest, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(req.method().as_str().as_bytes());
    h.update(b"\n");
    h.update(req.uri().path().as_bytes());
    if let Some(q) = req.uri().query() {
        h.update(b"?");
        h.update(q.as_bytes());
    }
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

/// What the claim of a key found.
enum Claim {
    /// The key is this request's (the row's id): run it.
    Mine(String),
    /// The stored answer: status and body.
    Replay(u16, Option<String>),
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// Claims `key` for a request of `hash`, or finds why not (see the module docs).
async fn claim(
    db: &DatabaseConnection,
    keyring: &Keyring,
    scope: Scope,
    key: &str,
    hash: &str,
) -> Result<Claim, ApiError> {
    // A few rounds: each lost race means the row changed (released, expired) meanwhile.
    for _ in 0..4 {
        let now = now_ms();
        let id = new_id("idk");
        let inserted = idempotency_key::ActiveModel {
            id: Set(id.clone()),
            company_pk: Set(scope.company_pk()),
            livemode: Set(scope.livemode()),
            key: Set(key.to_owned()),
            request_hash: Set(hash.to_owned()),
            state: Set(IN_FLIGHT.into()),
            status: Set(None),
            response_body: Set(None),
            created_at: Set(now),
        }
        .insert(db)
        .await;
        match inserted {
            Ok(_) => {
                purge_expired(db, scope, now).await;
                return Ok(Claim::Mine(id));
            }
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(e.into()),
        }
        let Some(row) = scope
            .find::<idempotency_key::Entity>()
            .filter(idempotency_key::Column::Key.eq(key))
            .one(db)
            .await?
        else {
            continue;
        };
        let expired = row.created_at <= now - millis(KEPT);
        let abandoned = row.state == IN_FLIGHT && row.created_at <= now - millis(IN_FLIGHT_LEASE);
        let answer = match &row.response_body {
            Some(sealed) if row.state == DONE => {
                let owner = IDEMPOTENT_ANSWER.owner(scope.company_pk(), &row.id);
                match keyring.open(owner, sealed) {
                    Ok(a) => Some(a.expose_secret().to_owned()),
                    Err(e) => {
                        tracing::warn!(error = %e, "a stored idempotent answer does not open: its request runs anew");
                        None
                    }
                }
            }
            _ => None,
        };
        let unreadable = row.state == DONE && row.response_body.is_some() && answer.is_none();
        if expired || abandoned || unreadable {
            scope
                .delete::<idempotency_key::Entity>()
                .filter(idempotency_key::Column::Id.eq(row.id))
                .filter(idempotency_key::Column::State.eq(row.state))
                .exec(db)
                .await?;
            continue;
        }
        if row.request_hash != hash {
            return Err(ApiError::conflict(
                "idempotency_key_reused",
                "this Idempotency-Key was used with another request (method, path or body); use a new key for a new request",
            ));
        }
        if row.state != DONE {
            return Err(ApiError::conflict(
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still being processed; retry later",
            ));
        }
        let status = row
            .status
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(200);
        return Ok(Claim::Replay(status, answer));
    }
    Err(ApiError::conflict(
        "idempotency_key_in_use",
        "a request with this Idempotency-Key is still being processed; retry later",
    ))
}

fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Deletes the expired keys of the scope (each new key does it, so the table stays bounded).
async fn purge_expired(db: &DatabaseConnection, scope: Scope, now: i64) {
    let r = scope
        .delete::<idempotency_key::Entity>()
        .filter(idempotency_key::Column::CreatedAt.lte(now - millis(KEPT)))
        .exec(db)
        .await;
    if let Err(e) = r {
        tracing::warn!(error = %paygate_web::error_chain(&e), "expired idempotency keys were not purged");
    }
}

/// Stores the answer of the claim `id`, sealed (a claim taken over meanwhile is left alone).
async fn store(
    db: &DatabaseConnection,
    keyring: &Keyring,
    scope: Scope,
    id: &str,
    status: StatusCode,
    body: &[u8],
) {
    let sealed = keyring.seal(
        IDEMPOTENT_ANSWER.owner(scope.company_pk(), id),
        &String::from_utf8_lossy(body),
    );
    let r = scope
        .update::<idempotency_key::Entity>()
        .col_expr(idempotency_key::Column::State, Expr::value(DONE))
        .col_expr(
            idempotency_key::Column::Status,
            Expr::value(i32::from(status.as_u16())),
        )
        .col_expr(idempotency_key::Column::ResponseBody, Expr::value(sealed))
        .filter(idempotency_key::Column::Id.eq(id))
        .filter(idempotency_key::Column::State.eq(IN_FLIGHT))
        .exec(db)
        .await;
    if let Err(e) = r {
        tracing::error!(error = %paygate_web::error_chain(&e), "an idempotent answer was not stored");
    }
}

/// Releases the claim `id`: its answer is not stored, a retry runs anew.
async fn release(db: &DatabaseConnection, scope: Scope, id: &str) {
    let r = scope
        .delete::<idempotency_key::Entity>()
        .filter(idempotency_key::Column::Id.eq(id))
        .filter(idempotency_key::Column::State.eq(IN_FLIGHT))
        .exec(db)
        .await;
    if let Err(e) = r {
        tracing::error!(error = %paygate_web::error_chain(&e), "an idempotency key was not released");
    }
}

/// A stored answer, again.
fn replay(status: u16, body: Option<String>) -> HttpResponse {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut res = HttpResponse::build(status);
    res.insert_header((REPLAYED_HEADER, "true"));
    match body.filter(|b| !b.is_empty()) {
        Some(b) => res.content_type("application/json").body(b),
        None => res.finish(),
    }
}
