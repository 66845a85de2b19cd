//! Graceful stop of the HTTP edge: count the requests in flight, and once a stop has begun
//! close every connection after its current answer and tell load balancers we are not ready.
//!
//! The stop order (see `docs/architecture.md`): stop accepting, then wait here until no
//! request is in flight, and only then let the HTTP workers (each with its own runtime) go.
//! A request is never cut off half-way through its database work by another worker's runtime
//! ending.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::Data;

/// Requests in flight, and whether a stop has begun. Cheap to clone; one per process.
#[derive(Debug, Clone, Default)]
pub struct Drain(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    draining: AtomicBool,
    in_flight: AtomicUsize,
}

/// Decrements the in-flight count when the request's handling ends (or is dropped).
struct InFlight(Drain);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drain {
    /// A new counter, not draining.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a stop has begun.
    pub fn draining(&self) -> bool {
        self.0.draining.load(Ordering::Acquire)
    }

    /// Requests being handled right now.
    pub fn in_flight(&self) -> usize {
        self.0.in_flight.load(Ordering::Acquire)
    }

    /// Begins the stop: from now on every answer closes its connection and `/readyz` fails.
    pub fn begin(&self) {
        self.0.draining.store(true, Ordering::Release);
    }

    /// Waits until no request has been in flight for `quiet`, or until `limit` has passed.
    /// Returns whether it became idle.
    pub async fn idle(&self, quiet: Duration, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut idle_since: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if self.in_flight() == 0 {
                let since = *idle_since.get_or_insert(now);
                if now.duration_since(since) >= quiet {
                    return true;
                }
            } else {
                idle_since = None;
            }
            if now >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn enter(&self) -> InFlight {
        self.0.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }
}

/// The middleware (`App::app_data(Data::new(drain)).wrap(from_fn(drain::middleware))`).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let Some(drain) = req.app_data::<Data<Drain>>().map(|d| d.get_ref().clone()) else {
        return next.call(req).await;
    };
    let _guard = drain.enter();
    let mut res = next.call(req).await?;
    if drain.draining() {
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_requests_in_flight() {
        let d = Drain::new();
        let g = d.enter();
        assert_eq!(d.in_flight(), 1);
        assert!(
            !d.idle(Duration::from_millis(10), Duration::from_millis(50))
                .await
        );
        let d2 = d.clone();
        let waiter = tokio::spawn(async move {
            d2.idle(Duration::from_millis(10), Duration::from_secs(5))
                .await
        });
        tokio::time::sleep(Duration::from_millis(30)).await;
        drop(g);
        assert!(matches!(waiter.await, Ok(true)));
        assert_eq!(d.in_flight(), 0);
    }
}
