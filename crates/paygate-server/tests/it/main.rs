//! Integration tests of the whole app over real HTTP, on SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod backoffice_auth;
mod backoffice_console;
mod backoffice_data;
mod backoffice_matrix;
mod backoffice_settings;
mod binary;
mod browser;
mod checkout;
mod observability;
mod replicas;
