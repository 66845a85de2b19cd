//! Integration tests of the whole app over real HTTP, on SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod auto_connect_logs;
mod binary;
mod demo;
mod edge;
mod faults;
mod first_run_browser;
mod log_secrets;
mod observability;
mod replicas;
mod sealing;
mod setup;
mod sign_in;
