//! Secrets at rest: AES-256-GCM under the master key, each value bound to the row that owns it.
//!
//! A sealed value reads `pg2.<key id>.<base64url(nonce ‖ ciphertext)>`. The key id is derived
//! from the key, so the keyring can hold retired keys (to open old values) while sealing only
//! under the current one. The associated data names the value's owner: the company's internal
//! id, the table, the owning row's id and the column ([`Owner`]). A value copied into another
//! row — another company's, another profile's, another column — does not open there: the caller
//! gets an error, never another tenant's secret.
//!
//! Policy on the older format: `pg1.` values (sealed by versions before the binding, with the
//! purpose alone as associated data) are never opened by [`Keyring::open`]. They are only
//! *upgraded* ([`Keyring::upgrade_legacy`]: opened with their purpose, sealed again for the row
//! they are found in), which the server does once, at the first start after the migration that
//! asks for it (`paygate_server::keys`), so a legacy value planted later does not become valid.

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

/// The format before values were bound to their rows (purpose-only associated data).
const LEGACY_PREFIX: &str = "pg1";
/// The current format (owner-bound associated data).
const PREFIX: &str = "pg2";
/// The first part of the associated data of the current format.
const AAD_TAG: &[u8] = b"paygate sealed secret v2";

/// A column that holds sealed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The table.
    pub table: &'static str,
    /// The column.
    pub column: &'static str,
    /// The associated data of the legacy format (`pg1`), for the upgrade only.
    legacy_purpose: &'static str,
}

impl Field {
    /// The owner of a value of this column: the company's internal id and the owning row's id.
    pub fn owner(self, company_pk: i64, row_id: &str) -> Owner<'_> {
        Owner {
            company_pk,
            field: self,
            row_id,
        }
    }
}

/// The columns holding sealed values.
pub mod field {
    use super::Field;

    /// `stripe_profiles.secret_key_enc`; the row is the profile (`prf_…`).
    pub const STRIPE_SECRET_KEY: Field = Field {
        table: "stripe_profiles",
        column: "secret_key_enc",
        legacy_purpose: "stripe_profiles.secret_key",
    };
    /// `signing_secrets.secret_enc`; the row is the signing secret (`whs_…`).
    pub const SIGNING_SECRET: Field = Field {
        table: "signing_secrets",
        column: "secret_enc",
        legacy_purpose: "signing_secrets.secret",
    };
    /// `notification_endpoint_secrets.secret_sealed`; the row named is the endpoint (`ne_…`)
    /// the secret belongs to, since the secret's own row is numbered by the database only on
    /// insert. (Moving a secret between two secrets of one endpoint changes nothing anyone
    /// could use.)
    pub const NOTIFICATION_ENDPOINT_SECRET: Field = Field {
        table: "notification_endpoint_secrets",
        column: "secret_sealed",
        legacy_purpose: "notification endpoint secret",
    };

    /// `idempotency_keys.response_body`: a stored answer of the merchant API, which may carry
    /// a secret shown once (a new notification endpoint's `whsec_…`); the row is the key's
    /// claim (`idk_…`). Answers live 24 hours, so this column is not in [`ALL`]: `paygate
    /// rekey` leaves them to expire, and one that no longer opens is dropped and its request
    /// runs anew.
    pub const IDEMPOTENT_ANSWER: Field = Field {
        table: "idempotency_keys",
        column: "response_body",
        legacy_purpose: "idempotency_keys.response_body",
    };
    /// Every sealed column.
    pub const ALL: [Field; 3] = [
        STRIPE_SECRET_KEY,
        SIGNING_SECRET,
        NOTIFICATION_ENDPOINT_SECRET,
    ];
}

/// Where a sealed value belongs: the associated data it is sealed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner<'a> {
    /// The owning company's internal id (`companies.id`).
    pub company_pk: i64,
    /// The table and column.
    pub field: Field,
    /// The owning row's id.
    pub row_id: &'a str,
}

impl Owner<'_> {
    /// Unambiguous bytes: a tag, the company id, then each name with its length before it.
    fn aad(&self) -> Vec<u8> {
        let parts = [
            self.field.table.as_bytes(),
            self.row_id.as_bytes(),
            self.field.column.as_bytes(),
        ];
        let mut out = Vec::with_capacity(
            AAD_TAG.len() + 8 + parts.iter().map(|p| 4 + p.len()).sum::<usize>(),
        );
        out.extend_from_slice(AAD_TAG);
        out.extend_from_slice(&self.company_pk.to_be_bytes());
        for p in parts {
            let len = u32::try_from(p.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(p);
        }
        out
    }
}

/// The format of a stored value, told from its prefix alone (nothing is opened).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `pg2`, under the keyring's current key: nothing to do.
    Current,
    /// `pg2` under a retired (or unknown) key: `paygate rekey` re-seals it.
    OtherKey,
    /// `pg1`, not bound to its row: to be upgraded.
    Legacy,
    /// Not a sealed value at all.
    Unknown,
}

impl Keyring {
    /// A keyring sealing under `current`, opening with it and `retired`.
    pub fn new(current: MasterKey, retired: Vec<MasterKey>) -> Self {
        Self { current, retired }
    }

    /// The key new values are sealed under.
    pub fn current(&self) -> &MasterKey {
        &self.current
    }

    /// Seals `plaintext` for `owner`.
    pub fn seal(&self, owner: Owner<'_>, plaintext: &str) -> String {
        self.seal_with(PREFIX, &owner.aad(), plaintext)
    }

    /// Seals in the legacy format (`pg1`, purpose-only associated data), as versions before the
    /// binding did. Only for tests of the upgrade: nothing in Paygate writes this format.
    #[doc(hidden)]
    pub fn seal_legacy(&self, field: Field, plaintext: &str) -> String {
        self.seal_with(LEGACY_PREFIX, field.legacy_purpose.as_bytes(), plaintext)
    }

    fn seal_with(&self, prefix: &str, aad: &[u8], plaintext: &str) -> String {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .current
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad,
                },
            )
            .unwrap_or_else(|_| unreachable!("AES-GCM encryption of a short value cannot fail"));
        let mut blob = Vec::with_capacity(12 + ct.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        format!(
            "{prefix}.{}.{}",
            self.current.id,
            URL_SAFE_NO_PAD.encode(blob)
        )
    }

    /// Opens a value sealed by [`Keyring::seal`] for the same `owner`. A value of another row,
    /// of another column, under an unknown key, or in the legacy format is an error.
    pub fn open(&self, owner: Owner<'_>, sealed: &str) -> Result<SecretString, TenantError> {
        self.open_with(PREFIX, &owner.aad(), sealed)
    }

    fn open_with(
        &self,
        prefix: &str,
        aad: &[u8],
        sealed: &str,
    ) -> Result<SecretString, TenantError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(p), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(TenantError::Crypto);
        };
        if p != prefix {
            return Err(TenantError::Crypto);
        }
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
            .decrypt(&Nonce::from(nonce), Payload { msg: ct, aad })
            .map_err(|_| TenantError::Crypto)?;
        String::from_utf8(pt)
            .map(SecretString::from)
            .map_err(|_| TenantError::Crypto)
    }

    /// The format of a stored value.
    pub fn format(&self, sealed: &str) -> Format {
        let mut parts = sealed.splitn(3, '.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(PREFIX), Some(kid), Some(_)) if kid == self.current.id => Format::Current,
            (Some(PREFIX), Some(_), Some(_)) => Format::OtherKey,
            (Some(LEGACY_PREFIX), Some(_), Some(_)) => Format::Legacy,
            _ => Format::Unknown,
        }
    }

    /// Whether the keyring holds the key a stored value names (else this replica is missing a
    /// key — a configuration error, not a moved value).
    pub fn has_key_for(&self, sealed: &str) -> bool {
        let kid = sealed.split('.').nth(1).unwrap_or_default();
        std::iter::once(&self.current)
            .chain(self.retired.iter())
            .any(|k| k.id == kid)
    }

    /// Re-seals a value of `owner` under the current key (master-key rotation). It must open
    /// for `owner`: rotation never moves a value.
    pub fn reseal(&self, owner: Owner<'_>, sealed: &str) -> Result<String, TenantError> {
        let plain = self.open(owner, sealed)?;
        Ok(self.seal(owner, plain.expose_secret()))
    }

    /// Opens a legacy (`pg1`) value with its column's purpose and seals it for `owner`, the row
    /// it was found in, under the current key.
    pub fn upgrade_legacy(&self, owner: Owner<'_>, sealed: &str) -> Result<String, TenantError> {
        let plain = self.open_with(LEGACY_PREFIX, owner.field.legacy_purpose.as_bytes(), sealed)?;
        Ok(self.seal(owner, plain.expose_secret()))
    }
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

    const KEY: Field = field::STRIPE_SECRET_KEY;

    fn plain(r: Result<SecretString, TenantError>) -> Option<String> {
        r.ok().map(|s| s.expose_secret().to_owned())
    }

    #[test]
    fn sealed_value_opens_only_for_its_owner_and_key() {
        let ring = Keyring::new(MasterKey::generate(), vec![]);
        let owner = KEY.owner(7, "prf_a");
        let sealed = ring.seal(owner, "sk_test_abcdefghijklmnop");
        assert!(sealed.starts_with("pg2."));
        assert!(!sealed.contains("abcdefghijklmnop"));
        assert_eq!(
            plain(ring.open(owner, &sealed)).as_deref(),
            Some("sk_test_abcdefghijklmnop")
        );
        for other in [
            KEY.owner(8, "prf_a"),
            KEY.owner(7, "prf_b"),
            field::SIGNING_SECRET.owner(7, "prf_a"),
            field::NOTIFICATION_ENDPOINT_SECRET.owner(7, "prf_a"),
        ] {
            assert!(ring.open(other, &sealed).is_err(), "{other:?}");
        }
        let other = Keyring::new(MasterKey::generate(), vec![]);
        assert!(other.open(owner, &sealed).is_err());
    }

    #[test]
    fn owner_encoding_is_unambiguous() {
        // The same bytes split differently between the row id and the column must differ.
        let a = Owner {
            company_pk: 1,
            field: Field {
                table: "t",
                column: "c",
                legacy_purpose: "",
            },
            row_id: "ab",
        };
        let b = Owner {
            company_pk: 1,
            field: Field {
                table: "t",
                column: "bc",
                legacy_purpose: "",
            },
            row_id: "a",
        };
        assert_ne!(a.aad(), b.aad());
    }

    #[test]
    fn legacy_values_only_upgrade_never_open() {
        let ring = Keyring::new(MasterKey::generate(), vec![]);
        let legacy = ring.seal_legacy(KEY, "sk_test_legacy_value");
        assert!(legacy.starts_with("pg1."));
        assert_eq!(ring.format(&legacy), Format::Legacy);
        let owner = KEY.owner(3, "prf_x");
        assert!(
            ring.open(owner, &legacy).is_err(),
            "legacy values never open"
        );
        assert!(
            ring.upgrade_legacy(field::SIGNING_SECRET.owner(3, "prf_x"), &legacy)
                .is_err(),
            "the purpose still binds the column"
        );
        let upgraded = ring.upgrade_legacy(owner, &legacy).ok().unwrap_or_default();
        assert_eq!(ring.format(&upgraded), Format::Current);
        assert_eq!(
            plain(ring.open(owner, &upgraded)).as_deref(),
            Some("sk_test_legacy_value")
        );
        assert!(ring.open(KEY.owner(4, "prf_x"), &upgraded).is_err());
        assert!(
            ring.upgrade_legacy(owner, &upgraded).is_err(),
            "only pg1 upgrades"
        );
    }

    #[test]
    fn retired_key_still_opens_and_reseal_moves_to_current() {
        let old = MasterKey::generate();
        let owner = field::SIGNING_SECRET.owner(1, "whs_1");
        let sealed = Keyring::new(old.clone(), vec![]).seal(owner, "whsec_x");
        let ring = Keyring::new(MasterKey::generate(), vec![old]);
        assert_eq!(ring.format(&sealed), Format::OtherKey);
        assert!(ring.has_key_for(&sealed));
        assert!(!Keyring::new(MasterKey::generate(), vec![]).has_key_for(&sealed));
        assert!(
            ring.reseal(field::SIGNING_SECRET.owner(2, "whs_1"), &sealed)
                .is_err()
        );
        let resealed = ring.reseal(owner, &sealed).ok();
        let resealed = resealed.as_deref().unwrap_or_default();
        assert!(resealed.starts_with(&format!("pg2.{}.", ring.current().id())));
        assert_eq!(ring.format(resealed), Format::Current);
        assert_eq!(
            plain(ring.open(owner, resealed)).as_deref(),
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
