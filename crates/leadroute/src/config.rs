//! Settings from flags, environment and an optional TOML file, in that order of precedence.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use serde::Deserialize;
use store::Store;

/// Where the workspace lives; every subcommand takes these.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite database.
    #[arg(long, env = "LEADROUTE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// `postgres://…` to use PostgreSQL instead of the embedded database.
    #[arg(long, env = "LEADROUTE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// A TOML file with `data_dir`, `database_url` and `listen`.
    #[arg(long, env = "LEADROUTE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "LEADROUTE_LISTEN")]
    pub listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    listen: Option<String>,
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub listen: String,
}

impl Settings {
    pub fn resolve(args: &ServeArgs) -> anyhow::Result<Settings> {
        let file = read_file(args.store.config.as_ref())?;
        Ok(Settings {
            data_dir: args
                .store
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("leadroute-data")),
            database_url: args.store.database_url.clone().or(file.database_url),
            listen: args
                .listen
                .clone()
                .or(file.listen)
                .unwrap_or_else(|| "127.0.0.1:8080".to_owned()),
        })
    }

    pub fn from_store_args(args: &StoreArgs) -> anyhow::Result<Settings> {
        Settings::resolve(&ServeArgs {
            store: args.clone(),
            listen: None,
        })
    }

    /// Opens and migrates the store.
    pub async fn open_store(&self) -> anyhow::Result<Store> {
        let store = self.connect_store().await?;
        store.migrate().await.context("migrating the database")?;
        Ok(store)
    }

    /// The store without migrating it (to see what a migration would do).
    pub async fn connect_store(&self) -> anyhow::Result<Store> {
        match &self.database_url {
            Some(url) => Store::connect(url).await,
            None => Store::open_data_dir(&self.data_dir).await,
        }
    }
}

fn read_file(path: Option<&PathBuf>) -> anyhow::Result<FileSettings> {
    let Some(path) = path else {
        return Ok(FileSettings::default());
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("reading {}", path.display()))
}
