//! `leadroute doctor`: what an operator checks before trusting an install — the database
//! (reachable, schema up to date, its clock), the secret key, the public URL, a first admin,
//! a published rule set, and each notification channel's last delivery. Each line is ✓ (fine),
//! ! (works, but look) or ✗ (broken); any ✗ exits 1.

use std::process::ExitCode;

use crate::config::{Settings, StoreArgs};

#[derive(Default)]
struct Findings {
    lines: Vec<(char, String)>,
}

impl Findings {
    fn ok(&mut self, text: impl Into<String>) {
        self.lines.push(('✓', text.into()));
    }
    fn warn(&mut self, text: impl Into<String>) {
        self.lines.push(('!', text.into()));
    }
    fn fail(&mut self, text: impl Into<String>) {
        self.lines.push(('✗', text.into()));
    }
    fn failed(&self) -> bool {
        self.lines.iter().any(|(mark, _)| *mark == '✗')
    }
}

pub async fn run(args: StoreArgs) -> anyhow::Result<ExitCode> {
    let mut found = Findings::default();
    let settings = Settings::from_store_args(&args)?;
    match &settings.database_url {
        Some(_) => found.ok("configuration: PostgreSQL (LEADROUTE_DATABASE_URL)"),
        None => found.ok(format!(
            "configuration: embedded SQLite in {}",
            settings.data_dir.display()
        )),
    }
    match settings.connect_store().await {
        Ok(store) => {
            check_database(&store, &mut found).await;
            store.close().await;
        }
        Err(error) => found.fail(format!("database: unreachable ({error:#})")),
    }
    if server::secrets::Sealer::from_env().is_keyed() {
        found.ok("secret key: LEADROUTE_SECRET_KEY is set; channel secrets are sealed");
    } else {
        found.warn(
            "secret key: LEADROUTE_SECRET_KEY is not set; channel and intake-source secrets are stored unencrypted",
        );
    }
    match std::env::var("LEADROUTE_PUBLIC_URL") {
        Ok(url) if url.starts_with("https://") => found.ok(format!("public URL: {url}")),
        Ok(url) if url.starts_with("http://") => found.warn(format!(
            "public URL: {url} is not HTTPS; put the service behind TLS for links in notifications"
        )),
        Ok(url) => found.fail(format!(
            "public URL: {url:?} is not an http(s) address (LEADROUTE_PUBLIC_URL)"
        )),
        Err(_) => found.warn(
            "public URL: LEADROUTE_PUBLIC_URL is not set; links in notifications point at http://127.0.0.1:8080",
        ),
    }
    for (mark, line) in &found.lines {
        println!("{mark} {line}");
    }
    Ok(if found.failed() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn check_database(store: &store::Store, found: &mut Findings) {
    match store.pending_migrations().await {
        Ok(pending) if pending.is_empty() => {
            found.ok(format!("database: {} schema up to date", store.backend()))
        }
        Ok(pending) => {
            found.fail(format!(
                "database: {} migrations pending; run leadroute migrate",
                pending.len()
            ));
            return;
        }
        Err(error) => {
            found.fail(format!("database: cannot read its schema ({error:#})"));
            return;
        }
    }
    if let Err(error) = store.migrate_check().await {
        found.fail(format!("database: {error:#}"));
        return;
    }
    match store.database_now().await {
        Ok(Some(at)) => {
            let skew = (chrono::Utc::now().timestamp_micros() - at).abs() / 1000;
            if skew > 2000 {
                found.warn(format!(
                    "clock: this host is {skew} ms off the database's; SLA clocks on several instances disagree by as much (run NTP)"
                ));
            } else {
                found.ok(format!("clock: within {skew} ms of the database's"));
            }
        }
        Ok(None) => {}
        Err(error) => found.warn(format!("clock: cannot read the database's ({error})")),
    }
    match store.list_users().await {
        Ok(users) if users.iter().any(|user| user.active && user.role == "admin") => {
            found.ok("users: an active admin can sign in")
        }
        Ok(_) => found.fail(
            "users: no active admin; create one with leadroute users create --username admin --role admin",
        ),
        Err(error) => found.fail(format!("users: cannot read them ({error})")),
    }
    match store.active_rule_set().await {
        Ok(Some(row)) => found.ok(format!("rules: version {} is published", row.version)),
        Ok(None) => found.warn("rules: none published yet; every lead waits in the hold queue"),
        Err(error) => found.fail(format!("rules: cannot read them ({error})")),
    }
    check_channels(store, found).await;
}

async fn check_channels(store: &store::Store, found: &mut Findings) {
    let channels = match store.list_settings(store::Setting::Channels).await {
        Ok(channels) => channels,
        Err(error) => {
            found.fail(format!("channels: cannot read them ({error})"));
            return;
        }
    };
    if channels.is_empty() {
        found.warn("channels: none; reps hear of new leads only in the console");
    }
    for channel in channels {
        let recent = |status: &str| store::DeliveryFilter {
            status: Some(status.to_owned()),
            channel_id: Some(channel.id.clone()),
            limit: 100,
            ..store::DeliveryFilter::default()
        };
        let sent = store.list_deliveries(&recent("sent")).await;
        let dead = store.list_deliveries(&recent("dead")).await;
        match (sent, dead) {
            (Ok(sent), Ok(dead)) => {
                let last = sent
                    .iter()
                    .filter_map(|row| row.sent_at)
                    .max()
                    .map_or("never".to_owned(), server::leads::time);
                let line = format!(
                    "channel {}: last delivered {last}, {} dead letters among the latest",
                    channel.id,
                    dead.len()
                );
                if dead.is_empty() && !sent.is_empty() {
                    found.ok(line);
                } else {
                    found.warn(line);
                }
            }
            (Err(error), _) | (_, Err(error)) => found.fail(format!(
                "channel {}: cannot read its deliveries ({error})",
                channel.id
            )),
        }
    }
}
