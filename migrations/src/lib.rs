#![expect(
    elided_lifetimes_in_paths,
    reason = "the async_trait signatures of MigrationTrait cannot name the lifetime"
)]

//! The one schema of Paygate, as sea-orm migrations.
//!
//! Policy: every migration is portable across SQLite and PostgreSQL (one definition, built with
//! sea-query, never a per-database copy); an applied migration is never edited; every
//! idempotency rule is a *named* unique index (`uq_<table>_<columns>`) so the web edge can map a
//! violation to a 409/422 instead of a 500. Times are stored as integer milliseconds since the
//! Unix epoch (`*_at` columns) or, for Stripe's own `created`, as integer seconds.

pub use sea_orm_migration::prelude::*;

mod m20261122_000001_create_tenant_tables;
mod m20261122_000002_create_inbox;
mod m20261122_000003_create_payment_domain;
mod m20261122_000004_index_orders_charge;
mod m20261123_000001_backoffice;
mod m20261123_000002_notifications;
mod m20261124_000001_inbox_payloads;
mod m20261124_000002_inbox_pending_index;
mod m20261204_000001_mode_in_keys;
mod m20261205_000001_sign_in_throttle;
mod m20261205_000002_bind_sealed_secrets;
mod m20261205_000010_index_notification_leases;
mod m20261205_000030_setup_token;
mod m20261206_000100_refunds;
mod m20261206_000200_dispute_workbench;
mod m20261206_000300_idempotency_keys;
mod m20261206_000400_subscriptions;
mod m20261206_000401_billing_settings;
mod m20261206_000600_stripe_connection;
mod m20261206_000700_connect_platforms;
mod m20261206_000800_order_cancel_url;
mod m20261207_000100_inbox_status_index;
mod m20261207_000200_inbox_claim_index;

/// The migrator run by `paygate migrate` and at start-up.
#[derive(Debug)]
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261122_000001_create_tenant_tables::Migration),
            Box::new(m20261122_000002_create_inbox::Migration),
            Box::new(m20261122_000003_create_payment_domain::Migration),
            Box::new(m20261122_000004_index_orders_charge::Migration),
            Box::new(m20261123_000001_backoffice::Migration),
            Box::new(m20261123_000002_notifications::Migration),
            Box::new(m20261124_000001_inbox_payloads::Migration),
            Box::new(m20261124_000002_inbox_pending_index::Migration),
            Box::new(m20261204_000001_mode_in_keys::Migration),
            Box::new(m20261205_000001_sign_in_throttle::Migration),
            Box::new(m20261205_000002_bind_sealed_secrets::Migration),
            Box::new(m20261205_000010_index_notification_leases::Migration),
            Box::new(m20261205_000030_setup_token::Migration),
            Box::new(m20261206_000400_subscriptions::Migration),
            Box::new(m20261206_000401_billing_settings::Migration),
            Box::new(m20261206_000700_connect_platforms::Migration),
            Box::new(m20261206_000600_stripe_connection::Migration),
            Box::new(m20261206_000200_dispute_workbench::Migration),
            Box::new(m20261206_000300_idempotency_keys::Migration),
            Box::new(m20261206_000100_refunds::Migration),
            Box::new(m20261206_000800_order_cancel_url::Migration),
            Box::new(m20261207_000100_inbox_status_index::Migration),
            Box::new(m20261207_000200_inbox_claim_index::Migration),
        ]
    }
}

/// A unique index with the given name over `cols` of `table`.
pub(crate) fn unique_index<T, C>(name: &str, table: T, cols: C) -> IndexCreateStatement
where
    T: IntoIden + 'static,
    C: IntoIterator,
    C::Item: IntoIndexColumn,
{
    let mut idx = Index::create();
    idx.name(name).table(table).unique();
    for c in cols {
        idx.col(c);
    }
    idx.to_owned()
}

/// A plain index with the given name over `cols` of `table`.
pub(crate) fn index<T, C>(name: &str, table: T, cols: C) -> IndexCreateStatement
where
    T: IntoIden + 'static,
    C: IntoIterator,
    C::Item: IntoIndexColumn,
{
    let mut idx = Index::create();
    idx.name(name).table(table);
    for c in cols {
        idx.col(c);
    }
    idx.to_owned()
}

/// Drops the index `name` of `table`, if it is there.
pub(crate) fn drop_index<T>(name: &str, table: T) -> IndexDropStatement
where
    T: IntoIden + 'static,
{
    Index::drop().name(name).table(table).if_exists().to_owned()
}
