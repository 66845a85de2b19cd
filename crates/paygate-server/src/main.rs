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
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print a new random master key (base64) for PAYGATE_MASTER_KEY.
    Keygen,
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
            let op = paygate_admin::operators::create(&db, &email, SecretString::from(password))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("operator {} added ({})", op.email, op.id);
            Ok(())
        }
        Command::Serve => {
            let listener = std::net::TcpListener::bind(settings.bind_addr()?)
                .with_context(|| format!("binding {}", settings.bind))?;
            let addr = listener.local_addr()?;
            let app = Paygate::build(settings, Some(addr)).await?;
            let running = app.serve_http(listener)?;
            tracing::info!(addr = %running.addr, public_base_url = %app.tenants.public_base_url(), "paygate serving");
            running.server.await?;
            tracing::info!("paygate stopped");
            Ok(())
        }
    }
}
