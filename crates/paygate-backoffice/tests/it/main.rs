//! Integration tests of the web UI (back office, operator console) and its walk in a real browser, through the real app over HTTP on port 0 (the test kit), on
//! SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod backoffice_auth;
mod backoffice_console;
mod backoffice_data;
mod backoffice_matrix;
mod backoffice_operators;
mod backoffice_settings;
mod browser;
mod shopper;
