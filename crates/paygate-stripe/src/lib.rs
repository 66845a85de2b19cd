#![doc = include_str!("../README.md")]

mod client;
pub mod demo;
mod disputes;
mod error;
mod form;
mod params;
mod thin_events;
mod types;
mod webhook_endpoints;

pub use client::{ClientConfig, StripeClient};
pub use disputes::{Dispute, EvidenceDetails, File, FileUpload, UpdateDispute};
pub use error::StripeError;
pub use form::FormBuilder;
pub use params::CreateRefund;
pub use params::{
    CancelSubscription, CreateBillingPortalSession, CreateCharge, CreateCheckoutSession,
    LineItemParam, ListEvents, PriceData, ProductData, ResumeSubscription, UpdateSubscription,
};
pub use thin_events::V2_API_VERSION;
pub use types::{
    Account, AccountRequirements, BillingPortalSession, Charge, CheckoutSession, CustomerDetails,
    LineItem, List, Subscription,
};

pub use webhook_endpoints::{CreateWebhookEndpoint, UpdateWebhookEndpoint, WebhookEndpoint};

/// Re-exported so callers can name the key type without depending on `secrecy`.
pub use secrecy::SecretString;
