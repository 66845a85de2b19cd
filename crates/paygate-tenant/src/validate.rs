//! Validation of tenant input. Every error names its field; values are trimmed first, since
//! keys are pasted from the Stripe Dashboard and copy-paste brings whitespace along.

use crate::{Mode, TenantError};

/// Whether `s`, exactly as given (not trimmed), is shaped like a company id:
/// `[A-Za-z0-9_-]{1,64}`. Lookups by an id from a URL check this first, so an id no company
/// can have costs no query and no cache entry.
pub fn is_company_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A company id: `[A-Za-z0-9_-]{1,64}`.
pub fn company_id(raw: &str) -> Result<String, TenantError> {
    let s = raw.trim();
    if !is_company_id(s) {
        return Err(TenantError::invalid(
            "company_id",
            "invalid_company_id",
            "must be 1 to 64 characters from A-Z, a-z, 0-9, '_' and '-'",
        ));
    }
    Ok(s.to_owned())
}

/// A display name: 1 to 200 characters once trimmed.
pub fn name(field: &'static str, raw: &str) -> Result<String, TenantError> {
    let s = raw.trim();
    if s.is_empty() || s.chars().count() > 200 || s.chars().any(char::is_control) {
        return Err(TenantError::invalid(
            field,
            "invalid_name",
            "must be 1 to 200 printable characters",
        ));
    }
    Ok(s.to_owned())
}

/// A mode: `test` or `live`.
pub fn mode(field: &'static str, raw: &str) -> Result<Mode, TenantError> {
    Mode::parse(raw.trim())
        .ok_or_else(|| TenantError::invalid(field, "invalid_mode", "must be \"test\" or \"live\""))
}

fn token(field: &'static str, raw: &str) -> Result<String, TenantError> {
    let s = raw.trim();
    if s.is_empty() {
        return Err(TenantError::invalid(field, "missing_field", "is required"));
    }
    if s.len() > 512 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(TenantError::invalid(
            field,
            "invalid_key_format",
            "must be a single token of printable ASCII characters (no spaces inside)",
        ));
    }
    Ok(s.to_owned())
}

/// A Stripe account id `acct_…`.
pub fn account_id(raw: &str) -> Result<String, TenantError> {
    let s = token("account_id", raw)?;
    if !s.starts_with("acct_") || s.len() < 8 {
        return Err(TenantError::invalid(
            "account_id",
            "invalid_account_id",
            "must be a Stripe account id starting with acct_",
        ));
    }
    Ok(s)
}

/// A publishable key of the given mode.
pub fn publishable_key(mode: Mode, raw: &str) -> Result<String, TenantError> {
    let s = token("publishable_key", raw)?;
    let (want, other) = match mode {
        Mode::Test => ("pk_test_", "pk_live_"),
        Mode::Live => ("pk_live_", "pk_test_"),
    };
    if s.starts_with(want) {
        return Ok(s);
    }
    let msg = if s.starts_with(other) {
        format!(
            "a {} profile needs a {} publishable key ({want}…), not a {} key",
            mode.as_str(),
            mode.as_str(),
            other_mode(mode)
        )
    } else if s.starts_with("sk_") || s.starts_with("rk_") {
        format!("this is a secret key; paste the publishable key ({want}…) here")
    } else {
        format!("must be a publishable key starting with {want}")
    };
    Err(TenantError::invalid(
        "publishable_key",
        "key_mode_mismatch",
        msg,
    ))
}

/// A secret key (`sk_`) or restricted key (`rk_`) of the given mode.
pub fn secret_key(mode: Mode, raw: &str) -> Result<String, TenantError> {
    let s = token("secret_key", raw)?;
    let m = mode.as_str();
    if s.starts_with(&format!("sk_{m}_")) || s.starts_with(&format!("rk_{m}_")) {
        return Ok(s);
    }
    let o = other_mode(mode);
    let msg = if s.starts_with(&format!("sk_{o}_")) || s.starts_with(&format!("rk_{o}_")) {
        format!("a {m} profile needs a {m} secret key (sk_{m}_… or rk_{m}_…), not a {o} key")
    } else if s.starts_with("pk_") {
        format!("this is a publishable key; paste the secret key (sk_{m}_… or rk_{m}_…) here")
    } else {
        format!(
            "must be a secret key starting with sk_{m}_ or a restricted key starting with rk_{m}_"
        )
    };
    Err(TenantError::invalid("secret_key", "key_mode_mismatch", msg))
}

/// The id of the demo company (`paygate demo`): the only company whose profile may hold a demo
/// key.
pub const DEMO_COMPANY_ID: &str = "demo";

/// A demo key (`sk_test_paygate_demo_…`, answered by the in-process stand-in of
/// `paygate_stripe::demo` instead of Stripe) belongs to the demo company only, so no other
/// company's calls can ever be answered by the stand-in.
pub fn demo_key_allowed(company_id: &str, secret_key: &str) -> Result<(), TenantError> {
    if paygate_stripe::demo::is_demo_key(secret_key) && company_id != DEMO_COMPANY_ID {
        return Err(TenantError::invalid(
            "secret_key",
            "demo_key_not_allowed",
            format!(
                "keys starting with {} belong to the demo company of `paygate demo`; paste the key from the Stripe Dashboard",
                paygate_stripe::demo::DEMO_KEY_PREFIX
            ),
        ));
    }
    Ok(())
}

/// A webhook signing secret `whsec_…`.
pub fn webhook_secret(raw: &str) -> Result<String, TenantError> {
    let s = token("webhook_secret", raw)?;
    if !s.starts_with("whsec_") || s.len() < 14 {
        return Err(TenantError::invalid(
            "webhook_secret",
            "invalid_webhook_secret",
            "must be the endpoint's signing secret, starting with whsec_ (Stripe Dashboard → Developers → Webhooks → your endpoint → Signing secret)",
        ));
    }
    Ok(s)
}

fn other_mode(mode: Mode) -> &'static str {
    match mode {
        Mode::Test => "live",
        Mode::Live => "test",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(r: Result<String, TenantError>) -> Option<&'static str> {
        match r {
            Err(TenantError::Invalid { field, .. }) => Some(field),
            _ => None,
        }
    }

    #[test]
    fn live_profile_refuses_test_secret_key_naming_the_field() {
        assert_eq!(
            field_of(secret_key(Mode::Live, "sk_test_abc")),
            Some("secret_key")
        );
        assert_eq!(
            field_of(publishable_key(Mode::Live, "pk_test_abc")),
            Some("publishable_key")
        );
        assert!(secret_key(Mode::Live, "  rk_live_abc\n").is_ok_and(|s| s == "rk_live_abc"));
    }

    #[test]
    fn company_ids_follow_the_pattern() {
        assert!(company_id("acme_shop-01").is_ok());
        assert!(company_id("").is_err());
        assert!(company_id("a b").is_err());
        assert!(company_id(&"x".repeat(65)).is_err());
        assert!(company_id("ünï").is_err());
    }

    #[test]
    fn demo_keys_belong_to_the_demo_company_only() {
        assert!(demo_key_allowed("demo", "sk_test_paygate_demo_x").is_ok());
        assert_eq!(
            demo_key_allowed("acme", "sk_test_paygate_demo_x")
                .err()
                .and_then(|e| match e {
                    TenantError::Invalid { field, .. } => Some(field),
                    _ => None,
                }),
            Some("secret_key")
        );
        assert!(demo_key_allowed("acme", "sk_test_51abc").is_ok());
    }

    #[test]
    fn webhook_secret_and_account_prefixes() {
        assert!(webhook_secret("whsec_1234567890ab").is_ok());
        assert_eq!(
            field_of(webhook_secret("sk_test_123456789")),
            Some("webhook_secret")
        );
        assert_eq!(field_of(account_id("acc_123")), Some("account_id"));
        assert_eq!(
            field_of(secret_key(Mode::Test, "sk_test_a b")),
            Some("secret_key")
        );
    }
}
