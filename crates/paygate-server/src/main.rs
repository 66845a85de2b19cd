//! `paygate`: the one binary.

use std::io::Read;

use anyhow::Context;
use clap::{Parser, Subcommand};
use secrecy::SecretString;
use tracing_subscriber::EnvFilter;

use paygate_server::{Paygate, Settings};

/// Paygate: a multi-tenant Stripe gateway.
#[derive(Debug, Parser)]
#[command(name = "paygate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP (intake, admin API) and run the background workers.
    Serve {
        /// Serve HTTP only; run no workers.
        #[arg(long, conflicts_with = "no_http")]
        no_workers: bool,
        /// Run the workers only; serve no HTTP.
        #[arg(long)]
        no_http: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print a new random master key (base64) for PAYGATE_MASTER_KEY.
    Keygen,
    /// Recover events Stripe could not deliver (Stripe keeps them 30 days).
    Reconcile {
        /// The company's id.
        #[arg(long)]
        company: String,
        /// How far back to look, e.g. `24h`, `7d`, `90m` (default: from the newest known event).
        #[arg(long)]
        since: Option<String>,
    },
    /// Re-seal every stored secret under the current master key (after starting with a new
    /// PAYGATE_MASTER_KEY and the old one in PAYGATE_MASTER_KEYS_RETIRED); then the retired key
    /// can be dropped.
    Rekey,
    /// Manage operators.
    Operator {
        #[command(subcommand)]
        command: OperatorCommand,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Add an operator. The password is read from standard input (first line), or from
    /// PAYGATE_OPERATOR_PASSWORD.
    Add {
        #[arg(long)]
        email: String,
    },
}

fn init_logs(settings: &Settings) {
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if settings.log_format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Keygen = cli.command {
        use secrecy::ExposeSecret;
        println!(
            "{}",
            paygate_tenant::MasterKey::generate()
                .to_base64()
                .expose_secret()
        );
        return Ok(());
    }
    let settings = Settings::load()?;
    init_logs(&settings);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(run(cli.command, settings))
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Keygen => Ok(()),
        Command::Rekey => {
            let ring = paygate_server::keys::load_keyring(&settings)?;
            let db = paygate_server::app::open_database(&settings).await?;
            let r = paygate_server::keys::reseal_all(&db, &ring).await?;
            println!(
                "re-sealed under key {}: {} profile secret key(s), {} signing secret(s), {} notification secret(s)",
                ring.current().id(),
                r.profiles,
                r.signing_secrets,
                r.notification_secrets
            );
            Ok(())
        }
        Command::Migrate => {
            paygate_server::app::open_database(&settings).await?;
            tracing::info!("database migrated");
            Ok(())
        }
        Command::Operator {
            command: OperatorCommand::Add { email },
        } => {
            let password = match std::env::var("PAYGATE_OPERATOR_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let mut s = String::new();
                    std::io::stdin()
                        .read_to_string(&mut s)
                        .context("reading the password from standard input")?;
                    s.lines().next().unwrap_or_default().to_owned()
                }
            };
            let db = paygate_server::app::open_database(&settings).await?;
            let op = paygate_tenant::operators::create(&db, &email, SecretString::from(password))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("operator {} added ({})", op.email, op.id);
            Ok(())
        }
        Command::Reconcile { company, since } => {
            let since = since.as_deref().map(parse_duration).transpose()?;
            let app = Paygate::build(settings, None).await?;
            let company = app
                .tenants
                .company(&company)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let started = std::time::Instant::now();
            let summary = paygate_router::reconcile::reconcile_company(
                &app.tenants,
                &app.stripe,
                &app.intake.writer,
                &company,
                since,
                |s| {
                    eprint!(
                        "\r{} page {:>4} | fetched {:>6} | recovered {:>6} | already present {:>6} | {:>5.1}s",
                        spinner(s.pages),
                        s.pages,
                        s.fetched,
                        s.recovered,
                        s.already_present,
                        started.elapsed().as_secs_f64()
                    );
                },
            )
            .await?;
            eprintln!();
            println!(
                "reconciled {}: {} profile(s), {} events listed by Stripe, {} recovered into the inbox, {} already present, {} of unsubscribed types skipped",
                company.company_id,
                summary.profiles,
                summary.fetched,
                summary.recovered,
                summary.already_present,
                summary.skipped
            );
            Ok(())
        }
        Command::Serve {
            no_workers,
            no_http,
        } => {
            let cancel = tokio_util::sync::CancellationToken::new();
            if no_http {
                let app = Paygate::build(settings, None).await?;
                let workers = app.spawn_workers(&cancel);
                tracing::info!("paygate workers running (no HTTP)");
                shutdown_signal().await;
                cancel.cancel();
                for w in workers {
                    let _ = w.await;
                }
                tracing::info!("paygate stopped");
                return Ok(());
            }
            let listener = std::net::TcpListener::bind(settings.bind_addr()?)
                .with_context(|| format!("binding {}", settings.bind))?;
            let addr = listener.local_addr()?;
            let app = Paygate::build(settings, Some(addr)).await?;
            let workers = if no_workers {
                Vec::new()
            } else {
                app.spawn_workers(&cancel)
            };
            let running = app.serve_http(listener)?;
            tracing::info!(addr = %running.addr, public_base_url = %app.tenants.public_base_url(), workers = !no_workers, "paygate serving");
            // actix stops accepting on SIGTERM/SIGINT, finishes in-flight requests, then returns.
            running.server.await?;
            cancel.cancel();
            for w in workers {
                let _ = w.await;
            }
            tracing::info!("paygate stopped");
            Ok(())
        }
    }
}

fn spinner(n: usize) -> char {
    ['|', '/', '-', '\\'][n % 4]
}

/// Parses `90s`, `30m`, `24h`, `7d` (a bare number is seconds).
fn parse_duration(s: &str) -> anyhow::Result<std::time::Duration> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .with_context(|| format!("{s:?} is not a duration like 24h or 7d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => anyhow::bail!("{s:?}: the unit must be s, m, h or d"),
    };
    Ok(std::time::Duration::from_secs(secs))
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
