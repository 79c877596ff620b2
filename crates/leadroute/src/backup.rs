//! `leadroute backup` and `leadroute restore`. An SQLite workspace is copied consistently while
//! it serves (`VACUUM INTO`) and restored into an empty data directory, its schema brought up
//! to date (or refused when a newer release wrote it). A PostgreSQL workspace is backed up with
//! `pg_dump` and restored with `pg_restore`: the commands say how.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;

use crate::config::{Settings, StoreArgs};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write (it must not exist yet).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file `leadroute backup` wrote.
    file: PathBuf,
    #[command(flatten)]
    store: StoreArgs,
}

pub async fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_store_args(&args.store)?;
    if args.out.exists() {
        anyhow::bail!("{} exists already; name a new file", args.out.display());
    }
    if let Some(url) = &settings.database_url {
        return pg_dump(url, &args.out);
    }
    let store = settings.open_store().await?;
    store.backup_to(&args.out).await?;
    store.close().await;
    let bytes = std::fs::metadata(&args.out)
        .map(|meta| meta.len())
        .unwrap_or(0);
    println!(
        "Backed up the workspace in {} to {} ({bytes} bytes): everything committed when it began.",
        settings.data_dir.display(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn pg_dump(url: &str, out: &Path) -> anyhow::Result<ExitCode> {
    let found = std::process::Command::new("pg_dump")
        .arg("--version")
        .output()
        .is_ok_and(|output| output.status.success());
    if !found {
        anyhow::bail!(
            "pg_dump is not on PATH. Install PostgreSQL's client tools (Debian: apt-get install \
             postgresql-client) and run: pg_dump --format=custom --file {} \"$LEADROUTE_DATABASE_URL\"",
            out.display()
        );
    }
    let status = std::process::Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(out)
        .arg(url)
        .status()
        .context("running pg_dump")?;
    if !status.success() {
        anyhow::bail!("pg_dump failed ({status})");
    }
    println!(
        "Backed up the PostgreSQL workspace to {} (pg_dump, custom format).",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let settings = Settings::from_store_args(&args.store)?;
    if settings.database_url.is_some() {
        anyhow::bail!(
            "restore a PostgreSQL backup with pg_restore into an empty database: pg_restore \
             --no-owner --dbname \"$LEADROUTE_DATABASE_URL\" {}; then run leadroute migrate",
            args.file.display()
        );
    }
    if !args.file.is_file() {
        anyhow::bail!("{} is not a file", args.file.display());
    }
    let target = settings.data_dir.join("leadroute.db");
    if target.exists() {
        let store = settings.open_store().await?;
        let busy = store.has_leads().await?;
        store.close().await;
        if busy {
            anyhow::bail!(
                "the workspace in {} has leads: restore into an empty data directory",
                settings.data_dir.display()
            );
        }
    }
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("creating {}", settings.data_dir.display()))?;
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", target.display()));
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    // Copied beside, then renamed: a crash never leaves half a database in place.
    let partial = settings.data_dir.join("leadroute.db.restoring");
    std::fs::copy(&args.file, &partial)
        .with_context(|| format!("copying {}", args.file.display()))?;
    std::fs::rename(&partial, &target).context("putting the restored database in place")?;
    match settings.open_store().await {
        Ok(store) => {
            let has_leads = store.has_leads().await?;
            store.close().await;
            println!(
                "Restored {} into {}{}; its schema is up to date.",
                args.file.display(),
                settings.data_dir.display(),
                if has_leads {
                    ""
                } else {
                    " (it holds no leads)"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&target);
            Err(error.context(format!("{} cannot be restored", args.file.display())))
        }
    }
}
