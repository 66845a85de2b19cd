//! Integration tests of the operators' and merchants' HTTP API, through the real app over HTTP on port 0 (the test kit), on
//! SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod admin_api;
mod auto_connect;
mod checkout_options;
mod client_addr;
mod connect_platforms;
mod disputes;
mod idempotency;
mod merchant;
mod openapi;
mod refunds;
mod sign_in;
mod subscription_actions;
mod subscriptions_read;
mod unknown_companies;
