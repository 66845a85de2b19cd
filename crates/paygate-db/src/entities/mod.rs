//! The sea-orm entities of every table. Wire types never use these directly: each HTTP surface
//! has its own `XxxIn` / `XxxOut` types.

pub mod api_key;
pub mod audit_log;
pub mod charge;
pub mod checkout_session;
pub mod company;
pub mod company_user;
pub mod delivery_failure;
pub mod dispute;
pub mod fulfillment;
pub mod inbox_event;
pub mod inbox_payload;
pub mod issuing_object;
pub mod line_item;
pub mod notification_attempt;
pub mod notification_delivery;
pub mod notification_endpoint;
pub mod notification_endpoint_secret;
pub mod notification_message;
pub mod notification_settings;
pub mod operator;
pub mod order;
pub mod payment_intent;
pub mod payment_method;
pub mod pending_upgrade;
pub mod setup_token;
pub mod sign_in_failure;
pub mod signing_secret;
pub mod source;
pub mod stripe_account;
pub mod stripe_profile;
pub mod user_invitation;
pub mod web_session;
