//! Integration tests of the web UI (back office, operator console) and its walk in a real browser, through the real app over HTTP on port 0 (the test kit), on
//! SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod auto_connect;
mod backoffice_auth;
mod backoffice_console;
mod backoffice_data;
mod backoffice_matrix;
mod backoffice_operators;
mod backoffice_settings;
mod browser;
mod dispute_browser;
mod dispute_workbench;
mod forms_browser;
mod forms_trust;
mod overview;
mod pages_browser;
mod refund_action;
mod refund_browser;
mod shopper;
mod subscription_actions;
mod subscriptions;
