#![doc = include_str!("../README.md")]

pub mod email;
pub mod failure;
pub mod outbound;
pub mod outbox;
pub mod service;
pub mod signing;
pub mod worker;

pub use email::Mailer;
pub use service::{NotifyLimits, NotifyService};
pub use worker::{DeliveryConfig, DeliveryPool, parse_schedule};
