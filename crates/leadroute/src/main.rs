//! The `leadroute` binary: thin glue that parses the command line and calls the library crates.

mod backup;
mod config;
mod demo;
mod doctor;
mod import;
mod model;
mod simulate;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use server::AppState;
use server::auth::{Role, new_key};
use store::Store;

use crate::config::{Settings, StoreArgs};

/// The service allocates many small short-lived values per request from two threads; mimalloc
/// handles that with less contention than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "leadroute",
    version,
    about = "Self-hosted lead routing: route every new lead to the best available rep, and explain why"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP service.
    Serve(config::ServeArgs),
    /// Create a demo workspace (if the data directory is empty), print an admin key, and serve.
    Demo(config::ServeArgs),
    /// Import leads from a CSV file; each row is validated and routed like an API lead.
    Import(import::ImportArgs),
    /// Replay history through a draft rule set (and roster changes) beside the active one.
    Simulate(Box<simulate::SimulateArgs>),
    /// The learned conversion model: train, evaluate (also on a CSV), publish, list.
    Model {
        #[command(subcommand)]
        command: model::ModelCommand,
    },
    /// Rule-set commands.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// API key commands.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// User commands.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
    /// Copy the workspace to a file while it serves (SQLite; PostgreSQL through pg_dump).
    Backup(backup::BackupArgs),
    /// Restore a backup into an empty data directory and bring its schema up to date.
    Restore(backup::RestoreArgs),
    /// Check an install: database, schema, clock, secret key, public URL, first admin, rules and
    /// channels; exit 1 when something is broken.
    Doctor(StoreArgs),
    /// Apply database migrations and exit.
    Migrate {
        /// List the migrations that would run, and change nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Compile a rule-set file (JSON or TOML) against the workspace; exit 1 on errors.
    Check {
        file: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create an API key; the key is the last line of the output, shown only once.
    Create {
        #[arg(long, value_parser = ["admin", "integration", "reporting"])]
        role: String,
        #[arg(long, default_value = "cli")]
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Create a user (the first admin, say). Without --password-stdin a password is generated
    /// and printed as the last line, shown only once.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long, value_parser = ["admin", "manager", "rep"])]
        role: String,
        /// The rep record a rep user is.
        #[arg(long)]
        rep_id: Option<String>,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password for a user (a forgotten admin password, say): their sessions end and
    /// a lock-out is lifted. Without --password-stdin a password is generated and printed as
    /// the last line, shown only once.
    ResetPassword {
        username: String,
        /// Read the password from standard input instead of generating one.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// What to run for the first sign-in on a workspace without users: the exact command for this
/// database (a PostgreSQL URL is not repeated: it may hold a password).
fn first_admin_hint(settings: &Settings) -> String {
    let place = match &settings.database_url {
        Some(_) => "--database-url \"$LEADROUTE_DATABASE_URL\"".to_owned(),
        None => format!("--data-dir {}", settings.data_dir.display()),
    };
    format!(
        "No user can sign in to this workspace yet. Create the first admin (the password is the \
         last line it prints):\n  leadroute users create --username admin --role admin {place}"
    )
}

/// A password from standard input, or a generated one (and whether it was generated).
fn new_password(from_stdin: bool) -> anyhow::Result<(String, bool)> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok((line.trim_end_matches(['\n', '\r']).to_owned(), false))
    } else {
        Ok((server::auth::random_hex(12), true))
    }
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("LEADROUTE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only for a person at a terminal; a file or a log collector gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("LEADROUTE_LOG_FORMAT").is_ok_and(|format| format == "json") {
        logs.json().init();
    } else {
        logs.init();
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => {
            let settings = Settings::resolve(&args)?;
            let store = settings.open_store().await?;
            if store.list_users().await?.is_empty() {
                println!("{}", first_admin_hint(&settings));
            }
            serve(store, &settings).await?;
        }
        Command::Demo(args) => {
            let settings = Settings::resolve(&args)?;
            let store = settings.open_store().await?;
            let state = AppState::new(store.clone());
            let access = demo::prepare(&state).await?;
            let key = access.key;
            println!(
                "Leadroute demo on {} ({})",
                settings.listen,
                store.backend()
            );
            println!("API:      http://{}/api/v1", settings.listen);
            println!("API docs: http://{}/api/docs", settings.listen);
            println!(
                "Try:      curl -H 'Authorization: Bearer {key}' http://{}/api/v1/leads",
                settings.listen
            );
            println!(
                "Web form: curl -d '姓名=王总&手机=13812345678&省份=浙江省' 'http://{}/api/v1/intake/site-form?token=demo-form-token'",
                settings.listen
            );
            if let Some((username, password)) = &access.admin {
                println!(
                    "Sign in:  {username} / {password} (admin), wang-fang / {password} (rep) — shown once"
                );
            }
            println!("Admin API key (shown once):");
            println!("{key}");
            serve_with(state, &settings).await?;
        }
        Command::Import(args) => return import::run(args).await,
        Command::Backup(args) => return backup::backup(args).await,
        Command::Doctor(args) => return doctor::run(args).await,
        Command::Restore(args) => return backup::restore(args).await,
        Command::Simulate(args) => return simulate::run(*args).await,
        Command::Model { command } => return model::run(command).await,
        Command::Rules {
            command: RulesCommand::Check { file, store },
        } => {
            let store = Settings::from_store_args(&store)?.open_store().await?;
            return rules_check(&store, &file).await;
        }
        Command::Keys {
            command: KeysCommand::Create { role, name, store },
        } => {
            let store = Settings::from_store_args(&store)?.open_store().await?;
            let role = Role::parse(&role).context("unknown role")?;
            let (key, row) = new_key(&name, role, chrono::Utc::now().timestamp_micros());
            store.insert_api_key(&row).await?;
            println!(
                "Created {} key {:?} ({}…); it is shown once:",
                role.as_str(),
                name,
                row.prefix
            );
            println!("{key}");
        }
        Command::Users {
            command:
                UsersCommand::Create {
                    username,
                    role,
                    rep_id,
                    password_stdin,
                    store,
                },
        } => {
            let store = Settings::from_store_args(&store)?.open_store().await?;
            let role = Role::parse(&role).context("unknown role")?;
            let (password, generated) = new_password(password_stdin)?;
            let user = server::api::accounts::create_first_user(
                &store,
                username.trim(),
                role,
                rep_id,
                password.clone(),
            )
            .await
            .map_err(|error| anyhow::anyhow!("{}: {}", error.code, error.message))?;
            println!(
                "Created {} user {:?} ({})",
                role.as_str(),
                user.username,
                user.id
            );
            if generated {
                println!("Password (shown once):");
                println!("{password}");
            }
        }
        Command::Users {
            command:
                UsersCommand::ResetPassword {
                    username,
                    password_stdin,
                    store,
                },
        } => {
            let store = Settings::from_store_args(&store)?.open_store().await?;
            let user = store
                .user_by_name(username.trim())
                .await?
                .with_context(|| format!("no user is named {:?}", username.trim()))?;
            let (password, generated) = new_password(password_stdin)?;
            let user = server::api::accounts::set_password(
                &store,
                &model::operator(),
                user,
                password.clone(),
            )
            .await
            .map_err(|error| anyhow::anyhow!("{}: {}", error.code, error.message))?;
            println!(
                "New password for {:?} ({}); their sessions ended.",
                user.username, user.id
            );
            if generated {
                println!("Password (shown once):");
                println!("{password}");
            }
        }
        Command::Migrate {
            dry_run: true,
            store,
        } => {
            let settings = Settings::from_store_args(&store)?;
            let store = settings.connect_store().await?;
            let pending = store.pending_migrations().await?;
            if pending.is_empty() {
                println!("The {} database is up to date.", store.backend());
            }
            for (version, description) in pending {
                println!("would apply {version}: {description}");
            }
        }
        Command::Migrate {
            dry_run: false,
            store,
        } => {
            let settings = Settings::from_store_args(&store)?;
            let store = settings.open_store().await?;
            println!("Migrated the {} database", store.backend());
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn serve(store: Store, settings: &Settings) -> anyhow::Result<()> {
    serve_with(AppState::new(store), settings).await
}

async fn serve_with(state: AppState, settings: &Settings) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    if state.sealer.is_keyed() {
        let sealed = server::secrets::seal_stored(&state.store, &state.sealer).await?;
        if sealed > 0 {
            tracing::info!(
                sealed,
                "sealed secrets stored before LEADROUTE_SECRET_KEY was set"
            );
        }
    } else {
        tracing::warn!(
            "LEADROUTE_SECRET_KEY is not set: channel and intake-source secrets are stored unencrypted"
        );
    }
    tracing::info!(listen = %settings.listen, backend = state.store.backend(), "serving");
    let store = state.store.clone();
    server::serve(state, listener, stop_signal()).await?;
    store.close().await;
    Ok(())
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what service managers and containers send).
async fn stop_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

async fn rules_check(store: &Store, file: &std::path::Path) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let is_toml = file
        .extension()
        .is_some_and(|extension| extension == "toml");
    let spec = if is_toml {
        engine::RuleSetSpec::from_toml(&text)
    } else {
        engine::RuleSetSpec::from_json(&text)
    };
    let spec = match spec {
        Ok(spec) => spec,
        Err(error) => {
            eprintln!("{}: {error}", file.display());
            return Ok(ExitCode::FAILURE);
        }
    };
    let mut rows = server::workspace::ConfigRows::load(store).await?;
    rows.active = None;
    let workspace = server::workspace::build_workspace(&rows);
    let known = engine::Known {
        catalogue: &workspace.catalogue,
        roster: &workspace.roster,
        pools: &workspace.pools,
        sla_policies: &workspace.sla_policy_ids,
    };
    match engine::compile(&spec, known, 0) {
        Ok(rules) => {
            println!(
                "{}: ok, {} rules, {} tagging rules",
                file.display(),
                rules.rules.len(),
                rules.tagging.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for error in &errors {
                eprintln!("{}: {error} [{}]", file.display(), error.code);
            }
            eprintln!("{} error(s)", errors.len());
            Ok(ExitCode::FAILURE)
        }
    }
}
