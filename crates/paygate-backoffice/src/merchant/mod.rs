//! The merchant pages under `/app`: what a company user sees. Every handler takes a
//! [`MerchantSession`](crate::MerchantSession); every query starts from its company — a
//! [`Tenant`](paygate_db::Tenant) for configuration, a [`Scope`](paygate_db::Scope) in the
//! page's mode for the data mirroring Stripe ([`mode`]).
//!
//! A new page: a module here with its own `configure`, one `.configure(...)` line in
//! [`configure`], and (for a menu entry) a line in [`crate::nav::MERCHANT`].

pub mod api_keys;
pub mod billing;
pub mod connect;
pub mod dashboard;
pub mod dispute_workbench;
pub mod disputes;
pub mod events;
pub mod listing;
pub mod mode;
pub mod notifications;
pub mod orders;
pub mod refunds;
pub mod stripe_settings;
pub mod subscription_actions;
pub mod users;

use actix_web::web;

/// Registers the merchant pages (inside the guarded `/app` scope).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(dashboard::configure)
        .configure(connect::configure)
        .configure(stripe_settings::configure)
        .configure(events::configure)
        .configure(orders::configure)
        .configure(refunds::configure)
        .configure(disputes::configure)
        .configure(dispute_workbench::configure)
        .configure(billing::configure)
        .configure(subscription_actions::configure)
        .configure(notifications::configure)
        .configure(api_keys::configure)
        .configure(users::configure);
}
