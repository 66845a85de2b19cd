//! Integration tests of the operators' and merchants' HTTP API, through the real app over HTTP on port 0 (the test kit), on
//! SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod admin_api;
mod client_addr;
mod merchant;
mod openapi;
mod sign_in;
mod unknown_companies;
