//! The `Stripe-Signature` parser and verifier never panic, and never accept a header that was
//! not produced with the secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paygate_wire::signature::{Key, parse_header, verify};

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    let _ = parse_header(header);
    let secrets = [Key::new("whsec_fuzz_secret_value", None)];
    let body = b"{\"id\":\"evt_1\"}";
    assert!(verify(Some(header), body, &secrets, 1_700_000_000, 300).is_err());
});
