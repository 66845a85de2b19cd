//! Integration tests of the intake and the event router (Checkout fulfillment and test / live
//! isolation included), through the real app over HTTP on port 0 (the test kit), on SQLite and
//! PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod apply_at_intake;
mod checkout;
mod intake;
mod modes;
mod reconcile;
mod refunds;
mod router;
mod router_payments;
mod subscriptions;
mod thin_events;

use paygate_testkit::TestApp;
use reqwest::StatusCode;
use serde_json::Value;

/// Delivers all of `events` at once (so that the intake takes several in one batch); every
/// answer is a 200.
async fn deliver_together(app: &TestApp, company: &str, secret: &str, events: &[Value]) {
    let answers =
        futures_util::future::join_all(events.iter().map(|e| app.deliver(company, secret, e)))
            .await;
    for (s, b) in answers {
        assert_eq!(s, StatusCode::OK, "{b}");
    }
}
