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

/// What a re-seal changed.
#[derive(Debug, Default)]
pub struct Resealed {
    pub profiles: usize,
    pub signing_secrets: usize,
    pub notification_secrets: usize,
}

/// Re-seals every stored secret under the keyring's current key (the last step of a master-key
/// rotation: afterwards the retired keys can be dropped). Values already under the current key
/// are left alone, so the command can be run again after an interruption.
pub async fn reseal_all(
    db: &sea_orm::DatabaseConnection,
    ring: &Keyring,
) -> Result<Resealed, anyhow::Error> {
    use paygate_db::entities::{notification_endpoint_secret, signing_secret, stripe_profile};
    use paygate_tenant::crypto::purpose;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let current = format!("pg1.{}.", ring.current().id());
    let mut out = Resealed::default();
    for p in stripe_profile::Entity::find().all(db).await? {
        if p.secret_key_enc.starts_with(&current) {
            continue;
        }
        let v = ring.reseal(purpose::SECRET_KEY, &p.secret_key_enc)?;
        stripe_profile::Entity::update_many()
            .col_expr(stripe_profile::Column::SecretKeyEnc, Expr::value(v))
            .filter(stripe_profile::Column::Id.eq(p.id.clone()))
            .filter(stripe_profile::Column::SecretKeyEnc.eq(p.secret_key_enc))
            .exec(db)
            .await?;
        out.profiles += 1;
    }
    for s in signing_secret::Entity::find().all(db).await? {
        if s.secret_enc.starts_with(&current) {
            continue;
        }
        let v = ring.reseal(purpose::SIGNING_SECRET, &s.secret_enc)?;
        signing_secret::Entity::update_many()
            .col_expr(signing_secret::Column::SecretEnc, Expr::value(v))
            .filter(signing_secret::Column::Id.eq(s.id.clone()))
            .filter(signing_secret::Column::SecretEnc.eq(s.secret_enc))
            .exec(db)
            .await?;
        out.signing_secrets += 1;
    }
    for s in notification_endpoint_secret::Entity::find().all(db).await? {
        if s.secret_sealed.starts_with(&current) {
            continue;
        }
        let v = ring.reseal(paygate_notify::service::SECRET_PURPOSE, &s.secret_sealed)?;
        notification_endpoint_secret::Entity::update_many()
            .col_expr(
                notification_endpoint_secret::Column::SecretSealed,
                Expr::value(v),
            )
            .filter(notification_endpoint_secret::Column::Id.eq(s.id))
            .filter(notification_endpoint_secret::Column::SecretSealed.eq(s.secret_sealed))
            .exec(db)
            .await?;
        out.notification_secrets += 1;
    }
    Ok(out)
}
