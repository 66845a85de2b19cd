//! A deadline for reading a request's body.
//!
//! actix's `client_request_timeout` bounds only the request head: a client that sends its headers
//! and then trickles (or withholds) the body would hold its connection — and, during a graceful
//! stop, the drain — for as long as it likes. This middleware gives the whole body
//! [`BodyDeadline::limit`] from the moment the request reaches the app (the
//! `PAYGATE_BODY_READ_TIMEOUT_SECS` setting, 10 s by default): a body not complete by then ends in
//! an error for whoever reads it, and the answer becomes `408 request_timeout` with the
//! connection closed. Time spent *after* the body has arrived (database, Stripe) is not counted.
//!
//! Requests without a body (no `Content-Length`, or 0, and no `Transfer-Encoding`) are passed
//! through untouched.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use actix_web::{Error, HttpMessage, ResponseError};
use futures_core::Stream;

use crate::ApiError;

/// The deadline (app data, `web::Data<BodyDeadline>`); without it the middleware does nothing.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    /// How long the whole body may take to arrive.
    pub limit: Duration,
}

/// The payload, cut off with an error once the deadline passes.
struct Deadlined {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: Arc<AtomicBool>,
    done: bool,
}

impl Stream for Deadlined {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        // The deadline first: a client feeding a byte at a time never leaves the inner stream
        // pending for long.
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.done = true;
            this.expired.store(true, Ordering::Release);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            )))));
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(None) => {
                this.done = true;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}

fn has_body(req: &ServiceRequest) -> bool {
    let h = req.headers();
    h.contains_key(TRANSFER_ENCODING)
        || h.get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// The middleware (`App::wrap(from_fn(body_deadline::middleware))`).
pub async fn middleware(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, Error> {
    let Some(limit) = req.app_data::<Data<BodyDeadline>>().map(|d| d.limit) else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    if !has_body(&req) {
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let expired = Arc::new(AtomicBool::new(false));
    let stream = Deadlined {
        inner: req.take_payload(),
        sleep: Box::pin(tokio::time::sleep(limit)),
        expired: expired.clone(),
        done: false,
    };
    req.set_payload(Payload::from(
        Box::pin(stream) as Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>>
    ));
    let res = next.call(req).await;
    if !expired.load(Ordering::Acquire) {
        return Ok(res?.map_into_left_body());
    }
    let res = res?;
    tracing::info!(
        limit_secs = limit.as_secs_f64(),
        "the request body did not arrive in time: 408, connection closed"
    );
    let mut answer = ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request_timeout",
        format!(
            "the request body did not arrive within {} s",
            limit.as_secs()
        ),
    )
    .error_response();
    answer.head_mut().set_connection_type(ConnectionType::Close);
    let (req, _) = res.into_parts();
    Ok(ServiceResponse::new(req, answer).map_into_right_body())
}
