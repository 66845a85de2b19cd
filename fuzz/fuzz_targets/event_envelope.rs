//! The event envelope parser never panics, and what it accepts has the fields the intake needs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_wire::envelope::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(env) = parse(data) {
        assert!(env.id.starts_with("evt_"));
        assert!(!env.event_type.is_empty());
    }
});
