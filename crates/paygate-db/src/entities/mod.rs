//! The sea-orm entities of every table. Wire types never use these directly: each HTTP surface
//! has its own `XxxIn` / `XxxOut` types.

pub mod api_key;
pub mod audit_log;
pub mod company;
pub mod delivery_failure;
pub mod inbox_event;
pub mod operator;
pub mod signing_secret;
pub mod stripe_profile;
