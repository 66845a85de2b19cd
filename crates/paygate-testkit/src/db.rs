//! Fresh databases per test: a SQLite file in a temporary directory, or a PostgreSQL database
//! created from the server in `PAYGATE_TEST_POSTGRES_URL` and dropped when the test ends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use sea_orm::{ConnectionTrait, Database, DatabaseBackend, Statement};
use tokio::sync::OnceCell;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

fn admin_url() -> String {
    std::env::var("PAYGATE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

static AVAILABLE: OnceCell<bool> = OnceCell::const_new();
static SAID: AtomicBool = AtomicBool::new(false);

/// Whether PostgreSQL tests can run. Without a server they are skipped (said once, loudly),
/// unless `PAYGATE_TEST_REQUIRE_POSTGRES=1`, where this panics.
pub async fn postgres_available() -> bool {
    let ok = *AVAILABLE
        .get_or_init(|| async {
            let url = admin_url();
            let probe = tokio::time::timeout(std::time::Duration::from_secs(5), async {
                let db = Database::connect(url.as_str()).await.ok()?;
                db.execute_unprepared("SELECT 1").await.ok()?;
                let _ = db.close().await;
                Some(())
            })
            .await;
            matches!(probe, Ok(Some(())))
        })
        .await;
    if !ok {
        if std::env::var("PAYGATE_TEST_REQUIRE_POSTGRES").as_deref() == Ok("1") {
            panic!(
                "PostgreSQL is required (PAYGATE_TEST_REQUIRE_POSTGRES=1) but {} does not answer",
                admin_url()
            );
        }
        if !SAID.swap(true, Ordering::Relaxed) {
            eprintln!(
                "\n======== SKIPPING POSTGRESQL TESTS: {} does not answer; set PAYGATE_TEST_POSTGRES_URL or start PostgreSQL ========\n",
                admin_url()
            );
        }
    }
    ok
}

/// A database that lives as long as the test.
#[derive(Debug)]
pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    pub data_dir: PathBuf,
    pg_name: Option<String>,
}

impl TestDatabase {
    /// Creates a fresh, empty database.
    pub async fn create(backend: Backend) -> Self {
        let data_dir = std::env::temp_dir().join(crate::unique("paygate-test-"));
        std::fs::create_dir_all(&data_dir).expect("creating the test data dir");
        match backend {
            Backend::Sqlite => {
                let url = format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join("paygate.db").display()
                );
                Self {
                    backend,
                    url,
                    data_dir,
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let name = format!("paygate_t_{}", crate::unique("").replace('-', "_"));
                let admin = Database::connect(admin_url().as_str())
                    .await
                    .expect("connecting to PostgreSQL");
                admin
                    .execute_raw(Statement::from_string(
                        DatabaseBackend::Postgres,
                        format!("CREATE DATABASE {name}"),
                    ))
                    .await
                    .expect("creating the test database");
                let _ = admin.close().await;
                let base = admin_url();
                let url = match base.rfind('/') {
                    Some(i)
                        if base[..i].contains("://") && i > base.find("://").unwrap_or(0) + 2 =>
                    {
                        format!("{}/{name}", &base[..i])
                    }
                    _ => format!("{base}/{name}"),
                };
                Self {
                    backend,
                    url,
                    data_dir,
                    pg_name: Some(name),
                }
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
        if let Some(name) = self.pg_name.take() {
            // Drop on a thread of its own: the test's runtime may be shutting down.
            let handle = std::thread::spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    return;
                };
                rt.block_on(async {
                    if let Ok(admin) = Database::connect(admin_url().as_str()).await {
                        let _ = admin
                            .execute_raw(Statement::from_string(
                                DatabaseBackend::Postgres,
                                format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                            ))
                            .await;
                        let _ = admin.close().await;
                    }
                });
            });
            let _ = handle.join();
        }
    }
}
