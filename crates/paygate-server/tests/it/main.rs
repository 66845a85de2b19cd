//! Integration tests of the whole app over real HTTP, on SQLite and PostgreSQL.
#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

mod admin_api;
mod backoffice_auth;
mod backoffice_console;
mod backoffice_data;
mod backoffice_matrix;
mod backoffice_settings;
mod binary;
mod browser;
mod checkout;
mod intake;
mod merchant;
mod modes;
mod observability;
mod openapi;
mod reconcile;
mod replicas;
mod router;
mod router_payments;
mod tenant;
mod upgrade;
