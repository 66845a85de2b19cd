#![doc = include_str!("../README.md")]

pub mod envelope;
pub mod failures;
pub mod inbox;
pub mod intake;
pub mod reconcile;
pub mod signature;

pub use failures::FailureRecorder;
pub use inbox::{InboxWriter, NewInboxEvent};
pub use intake::IntakeState;
