#![doc = include_str!("../README.md")]

pub mod envelope;
pub mod failures;
pub mod fulfillment;
pub mod handlers;
pub mod inbox;
pub mod intake;
pub mod lifecycle;
pub mod outbox;
pub mod reconcile;
pub mod signature;
pub mod worker;

pub use failures::FailureRecorder;
pub use inbox::{InboxWriter, NewInboxEvent};
pub use intake::IntakeState;
