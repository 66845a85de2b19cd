//! Secrets at rest: AES-256-GCM under the master key.
//!
//! A sealed value reads `pg1.<key id>.<base64url(nonce ‖ ciphertext)>`. The key id is derived
//! from the key, so the keyring can hold retired keys (to open old values) while sealing only
//! under the current one. The associated data binds each value to its purpose (a secret key
//! cannot be swapped into a signing-secret column).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::TenantError;

/// A 256-bit master key.
#[derive(Clone)]
pub struct MasterKey {
    id: String,
    cipher: Aes256Gcm,
    bytes: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MasterKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a master key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error(
        "the master key must be 32 bytes, base64-encoded (44 characters); generate one with `paygate keygen`"
    )]
    Format,
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(bytes)
    }

    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        let digest = Sha256::new()
            .chain_update(b"paygate-master-key-id\0")
            .chain_update(bytes)
            .finalize();
        let id = hex::encode(&digest[..4]);
        let cipher = Aes256Gcm::new(&bytes.into());
        Self { id, cipher, bytes }
    }

    /// Reads a base64 (standard or URL-safe) key, surrounding whitespace ignored.
    pub fn from_base64(s: &str) -> Result<Self, MasterKeyError> {
        let s = s.trim();
        let bytes = STANDARD
            .decode(s)
            .or_else(|_| URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')))
            .map_err(|_| MasterKeyError::Format)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| MasterKeyError::Format)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The key as standard base64, for writing the key file.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(STANDARD.encode(self.bytes))
    }

    /// The key's id (8 hex characters), safe to show.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A sub-key for another purpose (e.g. signing operator tokens), derived with HMAC-SHA256.
    pub fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }
}

/// The current master key and any retired ones still needed to open old values.
#[derive(Clone, Debug)]
pub struct Keyring {
    current: MasterKey,
    retired: Vec<MasterKey>,
}

const PREFIX: &str = "pg1";

impl Keyring {
    /// A keyring sealing under `current`, opening with it and `retired`.
    pub fn new(current: MasterKey, retired: Vec<MasterKey>) -> Self {
        Self { current, retired }
    }

    /// The key new values are sealed under.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Seals `plaintext` for `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .current
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: purpose.as_bytes(),
                },
            )
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption of a short value cannot fail"));
        let mut blob = Vec::with_capacity(12 + ct.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        format!(
            "{PREFIX}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(blob)
        )
    }

    /// Opens a value sealed by [`Keyring::seal`] for the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<SecretString, TenantError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(PREFIX), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(TenantError::Crypto);
        };
        let key = std::iter::once(&self.current)
            .chain(self.retired.iter())
            .find(|k| k.id == kid)
            .ok_or(TenantError::Crypto)?;
        let blob = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| TenantError::Crypto)?;
        if blob.len() < 12 {
            return Err(TenantError::Crypto);
        }
        let (nonce, ct) = blob.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| TenantError::Crypto)?;
        let pt = key
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: purpose.as_bytes(),
                },
            )
            .map_err(|_| TenantError::Crypto)?;
        String::from_utf8(pt)
            .map(SecretString::from)
            .map_err(|_| TenantError::Crypto)
    }

    /// Re-seals a value under the current key (master-key rotation).
    pub fn reseal(&self, purpose: &str, sealed: &str) -> Result<String, TenantError> {
        let plain = self.open(purpose, sealed)?;
        Ok(self.seal(purpose, plain.expose_secret()))
    }
}

/// Purposes (associated data) of sealed values.
pub mod purpose {
    pub const SECRET_KEY: &str = "stripe_profiles.secret_key";
    pub const SIGNING_SECRET: &str = "signing_secrets.secret";
}

/// Masks a secret for display: its type prefix, an ellipsis, the last four characters
/// (`sk_live_…abcd`, `whsec_…wxyz`). Short values show no tail at all.
pub fn mask(secret: &str) -> String {
    const PREFIXES: &[&str] = &[
        "sk_test_", "sk_live_", "rk_test_", "rk_live_", "whsec_", "pgk_",
    ];
    let prefix = PREFIXES
        .iter()
        .find(|p| secret.starts_with(**p))
        .copied()
        .unwrap_or("");
    let rest = &secret[prefix.len()..];
    let chars: Vec<char> = rest.chars().collect();
    if chars.len() >= 12 {
        let tail: String = chars[chars.len() - 4..].iter().collect();
        format!("{prefix}…{tail}")
    } else {
        format!("{prefix}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_value_opens_only_for_its_purpose_and_key() {
        let ring = Keyring::new(MasterKey::generate(), vec![]);
        let sealed = ring.seal(purpose::SECRET_KEY, "sk_test_abcdefghijklmnop");
        assert!(!sealed.contains("abcdefghijklmnop"));
        assert_eq!(
            ring.open(purpose::SECRET_KEY, &sealed)
                .map(|s| s.expose_secret().to_owned())
                .ok(),
            Some("sk_test_abcdefghijklmnop".to_owned())
        );
        assert!(ring.open(purpose::SIGNING_SECRET, &sealed).is_err());
        let other = Keyring::new(MasterKey::generate(), vec![]);
        assert!(other.open(purpose::SECRET_KEY, &sealed).is_err());
    }

    #[test]
    fn retired_key_still_opens_and_reseal_moves_to_current() {
        let old = MasterKey::generate();
        let sealed = Keyring::new(old.clone(), vec![]).seal("p", "whsec_x");
        let ring = Keyring::new(MasterKey::generate(), vec![old]);
        let resealed = ring.reseal("p", &sealed).ok();
        let resealed = resealed.as_deref().unwrap_or_default();
        assert!(resealed.starts_with(&format!("pg1.{}.", ring.current().id())));
        assert_eq!(
            ring.open("p", resealed)
                .map(|s| s.expose_secret().to_owned())
                .ok()
                .as_deref(),
            Some("whsec_x")
        );
    }

    #[test]
    fn masks_keep_prefix_and_last_four() {
        assert_eq!(
            mask("sk_live_51Habcdefghijklmnopqrstuvwxyz1234"),
            "sk_live_…1234"
        );
        assert_eq!(mask("whsec_0123456789abcdefghijWXYZ"), "whsec_…WXYZ");
        assert_eq!(mask("sk_test_short"), "sk_test_…");
        assert_eq!(mask("abc"), "…");
    }

    #[test]
    fn master_key_round_trips_base64() {
        let k = MasterKey::generate();
        let again = MasterKey::from_base64(k.to_base64().expose_secret()).ok();
        assert_eq!(again.map(|a| a.id().to_owned()), Some(k.id().to_owned()));
        assert!(MasterKey::from_base64("too-short").is_err());
    }
}
