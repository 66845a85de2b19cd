//! Integration tests of the whole app over real HTTP, on SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod binary;
mod observability;
mod replicas;
