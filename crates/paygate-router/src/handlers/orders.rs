//! Orders move forward only: see `lifecycle::order_rank` and `lifecycle::advance_order_status`.

pub use crate::lifecycle::advance_order_status as advance;
