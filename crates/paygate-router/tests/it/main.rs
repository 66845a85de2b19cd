//! Integration tests of the intake and the event router, through the real app over HTTP on port 0 (the test kit), on
//! SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod intake;
mod modes;
mod reconcile;
mod router;
mod router_payments;
