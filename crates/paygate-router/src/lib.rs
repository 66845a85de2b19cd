#![doc = include_str!("../README.md")]

pub mod billing_read;
pub mod dispute_deadlines;
pub mod failures;
pub mod fulfillment;
pub mod handlers;
pub mod inbox;
mod inbox_job;
mod inbox_sqlite;
mod intake_payments;
pub mod lifecycle;
pub mod read_models;
pub mod reconcile;
pub mod refunds;
mod reply;
pub mod stripe_connection;
pub mod worker;

pub use paygate_wire::{envelope, signature};

pub use failures::FailureRecorder;
pub use inbox::{InboxWriter, NewInboxEvent};
