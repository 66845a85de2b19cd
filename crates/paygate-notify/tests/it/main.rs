//! Integration tests of notifications over real HTTP (the app, fake Stripe, the merchant's
//! receivers), on SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod fair;
mod notifications;
mod smtp_down;
