//! `POST /callbacks/v1.0/stripe/{companyID}`: where Stripe delivers a company's events.
//!
//! Order of checks (each failure answers a 4xx with a stable code and stores nothing):
//! company id shaped as company creation allows (else 404 with no lookup and no cache entry),
//! company known (404) and active (403), body within 1 MiB (413), signature over the raw bytes
//! against every currently valid signing secret of the company (400), timestamp within the
//! tolerance (400), an event envelope, snapshot or thin (400), `livemode` equal to the mode of
//! the profile whose secret matched (400). Then the event is committed to the inbox and only
//! then is 200 answered; a repeated delivery answers 200 and stores nothing new.
//!
//! Thin events (`v2.core.event`, event destinations) are verified and stored the same way; the
//! worker fetches them. On a Connect platform (and only there: the routing table comes with the
//! cached company, so no other company's delivery costs a query more), an event naming a
//! connected account (`account`, or `context` of a thin event) is stored for the linked company
//! whose active profile of the event's mode has that account id, or, when none has, for the
//! platform with status `unroutable` (200, listed for the operator, never processed). A live
//! platform endpoint also receives its connected accounts' test events: those verify with the
//! live secret and go to the linked company's test profile.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde::Serialize;

use paygate_tenant::{IntakeCompany, TenantService};
use paygate_web::ApiError;

use paygate_router::inbox::{InboxWriter, InsertOutcome, NewInboxEvent, ObjectFields, status};
use paygate_router::{FailureRecorder, envelope, signature};

/// Largest body accepted (Stripe's events are far smaller).
pub const MAX_BODY: usize = 1024 * 1024;

/// What the intake needs, shared by every worker thread of the HTTP server.
#[derive(Clone, Debug)]
pub struct IntakeState {
    pub tenants: TenantService,
    pub writer: InboxWriter,
    pub failures: FailureRecorder,
    pub tolerance_secs: i64,
    pub metrics: std::sync::Arc<paygate_web::metrics::Metrics>,
    /// Rejected deliveries per address; an address over the limit gets 429 before any work.
    pub reject_throttle: Option<std::sync::Arc<paygate_web::throttle::Throttle>>,
}

#[derive(Serialize)]
struct Received {
    received: bool,
    duplicate: bool,
}

/// Counts a rejection toward the address's limit; returns the address.
fn count_rejection(state: &IntakeState, req: &HttpRequest) -> Option<String> {
    let ip = paygate_web::client_addr::client_ip(req).map(|a| a.to_string());
    if let (Some(t), Some(ip)) = (&state.reject_throttle, &ip) {
        t.fail(ip);
    }
    ip
}

fn reject(
    state: &IntakeState,
    company: &IntakeCompany,
    req: &HttpRequest,
    err: ApiError,
) -> ApiError {
    let ip = count_rejection(state, req);
    state.failures.record(company.pk, err.code(), ip);
    tracing::debug!(company_id = %company.company_id, code = err.code(), "delivery rejected");
    err
}

/// Where the callbacks are: `{PREFIX}/{company_id}`.
pub(crate) const PREFIX: &str = "/callbacks/v1.0/stripe";

/// The company id of a path under [`PREFIX`] (`rest`, what follows it): one segment, not
/// empty. Matched here rather than by a `{company_id}` pattern, which actix-router matches
/// with a regular expression: 10 % of the HTTP workers' time at 5 000 events/s
/// (docs/benchmarks.md, fifteenth pass).
fn company_segment(rest: &str) -> Option<&str> {
    rest.strip_prefix('/')
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// Every request under [`PREFIX`]: `POST {PREFIX}/{company_id}` is a delivery; another
/// method on such a path answers 405 (`Allow: POST`), any other path 404.
pub(crate) async fn receive(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<IntakeState>,
) -> Result<HttpResponse, ApiError> {
    let Some(company_id) = company_segment(req.match_info().unprocessed()) else {
        return Err(ApiError::not_found("not_found", "no such route"));
    };
    if req.method() != actix_web::http::Method::POST {
        return Ok(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "Stripe's deliveries are POSTed",
        )
        .response_with_header(actix_web::http::header::ALLOW, "POST"));
    }
    let company_id = company_id.to_owned();
    let started = std::time::Instant::now();
    let result = receive_inner(&req, company_id, payload, &state).await;
    let outcome = match &result {
        Ok(InsertOutcome::Inserted) => "accepted",
        Ok(InsertOutcome::Duplicate) => "duplicate",
        Err(e) if e.status().is_server_error() => "error",
        Err(e) => e.code(),
    };
    state.metrics.intake(outcome, started.elapsed());
    let outcome = result?;
    Ok(HttpResponse::Ok().json(Received {
        received: true,
        duplicate: outcome == InsertOutcome::Duplicate,
    }))
}

async fn receive_inner(
    req: &HttpRequest,
    company_id: String,
    payload: web::Payload,
    state: &IntakeState,
) -> Result<InsertOutcome, ApiError> {
    if let Some(t) = &state.reject_throttle
        && t.any_locked()
        && let Some(ip) = paygate_web::client_addr::client_ip(req)
        && t.locked(&ip.to_string()).is_some()
    {
        // A flood of bad deliveries from this address: refuse before any lookup or HMAC.
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many rejected deliveries from this address; retry later",
        ));
    }
    // An id that cannot be a company's (the rules of company creation) is not looked up nor
    // cached; unknown and malformed ids both count toward the address's rejection limit, so
    // one address cannot probe ids (or grow the negative cache) without end.
    let found = if paygate_tenant::validate::is_company_id(&company_id) {
        state
            .tenants
            .intake_company(&company_id)
            .await
            .map_err(ApiError::unavailable)?
    } else {
        None
    };
    let Some(company) = found else {
        count_rejection(state, req);
        tracing::debug!(
            company_id_len = company_id.len(),
            "delivery for an unknown company rejected"
        );
        return Err(ApiError::not_found(
            "company_not_found",
            "no company with this id",
        ));
    };
    if !company.active {
        return Err(reject(
            state,
            &company,
            req,
            ApiError::forbidden(
                "company_suspended",
                "the company is suspended; deliveries are refused until it is reactivated",
            ),
        ));
    }
    let body = match read_body(req, payload).await {
        Ok(b) => b,
        Err(e) => return Err(reject(state, &company, req, e)),
    };
    let header = req
        .headers()
        .get("stripe-signature")
        .and_then(|h| h.to_str().ok());
    let now = chrono::Utc::now().timestamp();
    let idx = signature::verify(header, &body, &company.secrets, now, state.tolerance_secs)
        .map_err(|e| {
            reject(
                state,
                &company,
                req,
                ApiError::bad_request(e.code(), e.to_string()),
            )
        })?;
    let secret = &company.secrets[idx];
    // The envelope and, in the same pass, what the inbox writer needs of `data.object` to
    // apply a payment intent's event at once (the body is not read a second time); a writer
    // that applies nothing (PostgreSQL) needs none of it.
    let parsed = match state.writer.reads_objects() {
        true => envelope::parse_with::<ObjectFields>(&body),
        false => envelope::parse(&body).map(|env| (env, None)),
    };
    let (event, object) = {
        let (env, object) = parsed.map_err(|e| {
            reject(
                state,
                &company,
                req,
                ApiError::bad_request(e.code(), e.to_string()),
            )
        })?;
        // A live Connect endpoint also receives its connected accounts' test events: on a
        // platform, a test event naming an account may come signed with the live secret.
        let connect_test_on_live =
            company.connect.is_some() && env.account.is_some() && secret.livemode && !env.livemode;
        if env.livemode != secret.livemode && !connect_test_on_live {
            let (event_mode, profile_mode) = if env.livemode {
                ("live", "test")
            } else {
                ("test", "live")
            };
            return Err(reject(
                state,
                &company,
                req,
                ApiError::bad_request(
                    "livemode_mismatch",
                    format!(
                        "the event is a {event_mode} event but it was signed with the signing secret of a {profile_mode} profile"
                    ),
                ),
            ));
        }
        // Only a Connect platform's entry has a routing table: for every other company this is
        // one branch on a field already in hand, no query.
        let (company_pk, status) = match (&company.connect, env.account.as_deref()) {
            (Some(routes), Some(account)) => match routes.route(account, env.livemode) {
                Some(linked) => (linked, status::PENDING),
                None => (company.pk, status::UNROUTABLE),
            },
            _ => (company.pk, status::PENDING),
        };
        let event = NewInboxEvent {
            company_pk,
            status,
            stripe_event_id: env.id.into_owned(),
            event_type: env.event_type.into_owned(),
            livemode: env.livemode,
            api_version: env.api_version.map(|c| c.into_owned()),
            account_id: env.account.map(|c| c.into_owned()),
            created: env.created,
            payload: String::new(),
            origin: "webhook",
        };
        (event, object)
    };
    let payload = String::from_utf8(body).map_err(|_| {
        reject(
            state,
            &company,
            req,
            ApiError::bad_request("payload_invalid", "the payload is not UTF-8"),
        )
    })?;
    let event_id = tracing::enabled!(tracing::Level::DEBUG).then(|| event.stripe_event_id.clone());
    let outcome = state
        .writer
        .insert_read(NewInboxEvent { payload, ..event }, object)
        .await
        .map_err(ApiError::unavailable)?;
    if let Some(event_id) = event_id {
        tracing::debug!(event_id = %event_id, duplicate = outcome == InsertOutcome::Duplicate, "event stored");
    }
    Ok(outcome)
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the body is larger than 1 MiB",
    )
}

/// Reads the raw body, refusing more than [`MAX_BODY`] bytes without buffering them.
async fn read_body(req: &HttpRequest, mut payload: web::Payload) -> Result<Vec<u8>, ApiError> {
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY) {
        return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(4096).min(MAX_BODY));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk
            .map_err(|_| ApiError::bad_request("payload_invalid", "the body could not be read"))?;
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
