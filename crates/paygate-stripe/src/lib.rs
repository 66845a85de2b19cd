#![doc = include_str!("../README.md")]

mod client;
pub mod demo;
mod error;
mod form;
mod params;
mod types;

pub use client::{ClientConfig, StripeClient};
pub use error::StripeError;
pub use form::FormBuilder;
pub use params::{
    CreateCharge, CreateCheckoutSession, LineItemParam, ListEvents, PriceData, ProductData,
};
pub use types::{
    Account, AccountRequirements, Charge, CheckoutSession, CustomerDetails, LineItem, List,
};

/// Re-exported so callers can name the key type without depending on `secrecy`.
pub use secrecy::SecretString;
