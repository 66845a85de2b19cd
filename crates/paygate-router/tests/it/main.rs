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
