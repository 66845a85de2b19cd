//! Integration tests of the whole app over real HTTP, on SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod binary;
mod edge;
mod faults;
mod log_secrets;
mod observability;
mod replicas;
mod sealing;
mod sign_in;
