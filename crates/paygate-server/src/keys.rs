//! Where the master key comes from: the environment, a mounted file, or — on the embedded
//! default — a file generated into the data directory on first start (mode 0600).

use std::io::Write;
use std::path::Path;

use secrecy::ExposeSecret;

use paygate_tenant::{Keyring, MasterKey};

use crate::config::{ConfigError, Settings, read_secret_file};

/// Builds the keyring from the settings, generating the key file when needed.
pub fn load_keyring(settings: &Settings) -> Result<Keyring, ConfigError> {
    let bad = |field: &'static str| ConfigError::Invalid {
        field,
        message: "must be 32 bytes, base64-encoded (generate one with `paygate keygen`)".into(),
    };
    let current = if let Some(k) = &settings.master_key {
        MasterKey::from_base64(k.expose_secret()).map_err(|_| bad("master_key"))?
    } else if let Some(p) = &settings.master_key_file {
        MasterKey::from_base64(read_secret_file(p)?.expose_secret())
            .map_err(|_| bad("master_key_file"))?
    } else {
        load_or_generate(&settings.data_dir.join("master.key"))?
    };
    let mut retired = Vec::new();
    if let Some(list) = &settings.master_keys_retired {
        for k in list
            .expose_secret()
            .split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
        {
            retired.push(MasterKey::from_base64(k).map_err(|_| bad("master_keys_retired"))?);
        }
    }
    Ok(Keyring::new(current, retired))
}

fn load_or_generate(path: &Path) -> Result<MasterKey, ConfigError> {
    let file_err = |source| ConfigError::File {
        path: path.to_owned(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(s) => MasterKey::from_base64(&s).map_err(|_| ConfigError::Invalid {
            field: "master_key_file",
            message: format!("{} does not hold a valid master key", path.display()),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(dir) = path.parent() {
                create_private_dir(dir).map_err(file_err)?;
            }
            let key = MasterKey::generate();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(path).map_err(file_err)?;
            f.write_all(key.to_base64().expose_secret().as_bytes())
                .map_err(file_err)?;
            f.write_all(b"\n").map_err(file_err)?;
            f.sync_all().map_err(file_err)?;
            tracing::warn!(
                path = %path.display(),
                key_id = key.id(),
                "generated a new master key; back this file up: without it the stored Stripe secrets cannot be decrypted"
            );
            Ok(key)
        }
        Err(e) => Err(file_err(e)),
    }
}

/// Creates the data directory (mode 0700 on Unix) if missing.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.as_os_str().is_empty() || dir.exists() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// What a pass over the sealed secrets changed.
#[derive(Debug, Default)]
pub struct Resealed {
    /// Profiles' secret keys written again.
    pub profiles: usize,
    /// Signing secrets written again.
    pub signing_secrets: usize,
    /// Notification endpoint secrets written again.
    pub notification_secrets: usize,
    /// Of those, legacy (`pg1`) values now bound to their rows.
    pub bound: usize,
    /// Values left as they were because they cannot be used where they are.
    pub refused: Vec<Refused>,
}

/// A stored value a pass left alone, and why (never the value itself).
#[derive(Debug, Clone)]
pub struct Refused {
    pub table: &'static str,
    pub row_id: String,
    pub reason: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.table, self.row_id, self.reason)
    }
}

/// Which pass: the one at every start, or `paygate rekey`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    /// Binds legacy values to their rows, while the migration's task is pending; else nothing.
    Start,
    /// Also re-seals every value not under the current key (master-key rotation).
    Rekey,
}

/// At start, right after the migrations: while the task `bind_sealed_secrets` of migration
/// `m20261205_000002` is pending, re-seals every legacy (`pg1`) secret for the row it is in
/// (company, table, row, column), then removes the task. Without the task this costs one query
/// and changes nothing, so a legacy value planted later is never bound to a row (it does not open
/// anywhere). Idempotent: several replicas starting together re-seal each value once (each write
/// is conditional on the value read).
pub async fn bind_sealed_secrets(
    db: &sea_orm::DatabaseConnection,
    ring: &Keyring,
) -> Result<Resealed, anyhow::Error> {
    let r = pass(db, ring, Pass::Start).await?;
    if r.bound > 0 {
        tracing::info!(
            bound = r.bound,
            "sealed secrets bound to their rows (company, table, row, column)"
        );
    }
    for x in &r.refused {
        tracing::error!(table = x.table, row_id = %x.row_id, reason = x.reason, "a sealed secret cannot be used where it is stored");
    }
    Ok(r)
}

/// Re-seals every stored secret under the keyring's current key (the last step of a master-key
/// rotation: afterwards the retired keys can be dropped), each for the row it belongs to; binds
/// legacy values while the migration's task is pending, as [`bind_sealed_secrets`] does. Values
/// already under the current key are left alone, so the command can be run again after an
/// interruption. A value that does not open for its row is left as it was and listed in
/// [`Resealed::refused`].
pub async fn reseal_all(
    db: &sea_orm::DatabaseConnection,
    ring: &Keyring,
) -> Result<Resealed, anyhow::Error> {
    pass(db, ring, Pass::Rekey).await
}

async fn pass(
    db: &sea_orm::DatabaseConnection,
    ring: &Keyring,
    pass: Pass,
) -> Result<Resealed, anyhow::Error> {
    use paygate_db::entities::{
        notification_endpoint, notification_endpoint_secret, pending_upgrade, signing_secret,
        stripe_profile,
    };
    use paygate_tenant::crypto::{Format, Owner, field};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let bind_legacy = pending_upgrade::Entity::find_by_id(pending_upgrade::BIND_SEALED_SECRETS)
        .one(db)
        .await?
        .is_some();
    let mut out = Resealed::default();
    if pass == Pass::Start && !bind_legacy {
        return Ok(out);
    }
    let mut legacy_left = 0usize;
    // The new value for `sealed` of `owner`, or why there is none; `None`: nothing to do.
    let mut decide = |owner: Option<Owner<'_>>,
                      row_id: &str,
                      sealed: &str,
                      out: &mut Resealed|
     -> Option<(String, bool)> {
        let table = owner.map_or("notification_endpoint_secrets", |o| o.field.table);
        let format = ring.format(sealed);
        let refuse = |out: &mut Resealed, reason| {
            out.refused.push(Refused {
                table,
                row_id: row_id.to_owned(),
                reason,
            });
        };
        let Some(owner) = owner else {
            refuse(out, "its endpoint does not exist");
            return None;
        };
        let result = match format {
            Format::Current => return None,
            Format::OtherKey if pass == Pass::Start => return None,
            Format::OtherKey => ring.reseal(owner, sealed).map(|v| (v, false)),
            Format::Legacy if bind_legacy => ring.upgrade_legacy(owner, sealed).map(|v| (v, true)),
            Format::Legacy => {
                refuse(
                    out,
                    "a legacy (pg1) value written after the upgrade: it is never used; enter the secret again",
                );
                return None;
            }
            Format::Unknown => {
                refuse(out, "not a sealed value");
                return None;
            }
        };
        match result {
            Ok(v) => Some(v),
            Err(_) => {
                if format == Format::Legacy {
                    legacy_left += 1;
                }
                refuse(
                    out,
                    "does not open for this row: moved from another row, or sealed under a key not in PAYGATE_MASTER_KEY / PAYGATE_MASTER_KEYS_RETIRED",
                );
                None
            }
        }
    };

    for p in stripe_profile::Entity::find().all(db).await? {
        let owner = field::STRIPE_SECRET_KEY.owner(p.company_pk, &p.id);
        let Some((v, bound)) = decide(Some(owner), &p.id, &p.secret_key_enc, &mut out) else {
            continue;
        };
        let n = stripe_profile::Entity::update_many()
            .col_expr(stripe_profile::Column::SecretKeyEnc, Expr::value(v))
            .filter(stripe_profile::Column::Id.eq(p.id.clone()))
            .filter(stripe_profile::Column::SecretKeyEnc.eq(p.secret_key_enc))
            .exec(db)
            .await?
            .rows_affected;
        out.profiles += n as usize;
        out.bound += usize::from(bound && n > 0);
    }
    for s in signing_secret::Entity::find().all(db).await? {
        let owner = field::SIGNING_SECRET.owner(s.company_pk, &s.id);
        let Some((v, bound)) = decide(Some(owner), &s.id, &s.secret_enc, &mut out) else {
            continue;
        };
        let n = signing_secret::Entity::update_many()
            .col_expr(signing_secret::Column::SecretEnc, Expr::value(v))
            .filter(signing_secret::Column::Id.eq(s.id.clone()))
            .filter(signing_secret::Column::SecretEnc.eq(s.secret_enc))
            .exec(db)
            .await?
            .rows_affected;
        out.signing_secrets += n as usize;
        out.bound += usize::from(bound && n > 0);
    }
    let endpoints: std::collections::HashMap<String, i64> = notification_endpoint::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|e| (e.id, e.company_pk))
        .collect();
    for s in notification_endpoint_secret::Entity::find().all(db).await? {
        let owner = endpoints
            .get(&s.endpoint_id)
            .map(|pk| field::NOTIFICATION_ENDPOINT_SECRET.owner(*pk, &s.endpoint_id));
        let row_id = s.id.to_string();
        let Some((v, bound)) = decide(owner, &row_id, &s.secret_sealed, &mut out) else {
            continue;
        };
        let n = notification_endpoint_secret::Entity::update_many()
            .col_expr(
                notification_endpoint_secret::Column::SecretSealed,
                Expr::value(v),
            )
            .filter(notification_endpoint_secret::Column::Id.eq(s.id))
            .filter(notification_endpoint_secret::Column::SecretSealed.eq(s.secret_sealed))
            .exec(db)
            .await?
            .rows_affected;
        out.notification_secrets += n as usize;
        out.bound += usize::from(bound && n > 0);
    }
    if bind_legacy && legacy_left == 0 {
        pending_upgrade::Entity::delete_by_id(pending_upgrade::BIND_SEALED_SECRETS)
            .exec(db)
            .await?;
    }
    Ok(out)
}
