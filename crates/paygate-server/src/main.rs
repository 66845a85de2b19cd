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
    /// Make (or reuse) the demo company `demo`, labelled demo data and in test mode, with a
    /// merchant user, and send it a realistic stream of signed Stripe events through the running
    /// server's intake: paid, failed and delayed checkouts, payment intents, a dispute. Stripe
    /// calls made with its demo key are answered by a built-in stand-in.
    Demo {
        /// Remove the demo company and everything of it instead (no other company is touched).
        #[arg(long)]
        reset: bool,
        /// The running server (default: PAYGATE_PUBLIC_BASE_URL, else http://PAYGATE_BIND).
        #[arg(long)]
        base_url: Option<String>,
        /// Register a notification endpoint of the demo company at this URL.
        #[arg(long, conflicts_with = "reset")]
        notify_url: Option<String>,
    },
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
    /// Disable an operator: they sign in nowhere, and their tokens and sessions stop working at
    /// once (never the last active operator).
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled operator again (they sign in anew).
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Remove an operator; their tokens and sessions end with them (never the last active
    /// operator).
    Remove {
        #[arg(long)]
        email: String,
    },
    /// Set an operator's password; every token and session issued before ends at once. The
    /// password is read from standard input (first line), or from PAYGATE_OPERATOR_PASSWORD.
    Passwd {
        #[arg(long)]
        email: String,
    },
}

/// The password of `operator add` and `operator passwd`: `PAYGATE_OPERATOR_PASSWORD`, or the
/// first line of standard input.
fn read_operator_password() -> anyhow::Result<SecretString> {
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
    Ok(SecretString::from(password))
}

/// `paygate operator …`: what the command line can do to operators (audited as `cli`).
async fn operator_command(command: OperatorCommand, settings: Settings) -> anyhow::Result<()> {
    use paygate_tenant::operators;
    const ACTOR: &str = "cli";
    let db = paygate_server::app::open_database(&settings).await?;
    let find = |email: String| {
        let db = db.clone();
        async move {
            operators::find_by_email(&db, &email)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no operator with the e-mail {email}"))
        }
    };
    match command {
        OperatorCommand::Add { email } => {
            let password = read_operator_password()?;
            let op = operators::create(&db, &email, password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("operator {} added ({})", op.email, op.id);
        }
        OperatorCommand::Disable { email } => {
            let op = find(email).await?;
            let op = operators::disable(&db, ACTOR, &op.id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "operator {} disabled; their tokens and sessions have ended",
                op.email
            );
        }
        OperatorCommand::Enable { email } => {
            let op = find(email).await?;
            let op = operators::enable(&db, ACTOR, &op.id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("operator {} enabled", op.email);
        }
        OperatorCommand::Remove { email } => {
            let op = find(email).await?;
            let op = operators::remove(&db, ACTOR, &op.id)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("operator {} removed", op.email);
        }
        OperatorCommand::Passwd { email } => {
            let op = find(email).await?;
            let password = read_operator_password()?;
            let op = operators::change_password(&db, ACTOR, &op.id, password)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "password of operator {} changed; their tokens and sessions have ended",
                op.email
            );
        }
    }
    Ok(())
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
            if r.bound > 0 {
                println!("{} legacy value(s) bound to their rows", r.bound);
            }
            for x in &r.refused {
                eprintln!("not re-sealed: {x}");
            }
            if !r.refused.is_empty() {
                anyhow::bail!(
                    "{} stored value(s) could not be re-sealed (listed above); keep the retired keys until they are dealt with",
                    r.refused.len()
                );
            }
            Ok(())
        }
        Command::Migrate => {
            paygate_server::app::open_database(&settings).await?;
            tracing::info!("database migrated");
            Ok(())
        }
        Command::Operator { command } => operator_command(command, settings).await,
        Command::Demo {
            reset,
            base_url,
            notify_url,
        } => {
            paygate_server::demo::run(
                &settings,
                paygate_server::demo::DemoOptions {
                    base_url,
                    notify_url,
                    reset,
                },
            )
            .await
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
                spawn_metrics(&app)?;
                let workers = app.spawn_workers(&cancel);
                tracing::info!("paygate workers running (no HTTP)");
                shutdown_signal().await;
                app.stop(None, &cancel, workers).await;
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
            spawn_metrics(&app)?;
            let running = app.serve_http(listener)?;
            let handle = running.server.handle();
            let mut server = tokio::spawn(running.server);
            app.announce_setup_link().await?;
            tracing::info!(addr = %running.addr, public_base_url = %app.tenants.public_base_url(), workers = !no_workers, "paygate serving");
            tokio::select! {
                () = shutdown_signal() => {}
                ended = &mut server => {
                    // The HTTP server does not end by itself; if it does, stop the rest.
                    tracing::error!(?ended, "the HTTP server ended unexpectedly");
                    app.stop(None, &cancel, workers).await;
                    anyhow::bail!("the HTTP server ended unexpectedly");
                }
            }
            app.stop(Some((handle, server)), &cancel, workers).await;
            tracing::info!("paygate stopped");
            Ok(())
        }
    }
}

/// Serves `/metrics` on `PAYGATE_METRICS_BIND` when set; it lives until the process ends.
fn spawn_metrics(app: &Paygate) -> anyhow::Result<()> {
    if let Some(m) = app.serve_metrics()? {
        tracing::info!(addr = %m.addr, "metrics serving");
        tokio::spawn(m.server);
    }
    Ok(())
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
