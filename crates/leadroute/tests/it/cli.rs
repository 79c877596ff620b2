//! The subcommands a user runs from the README.

use std::io::Write as _;

use crate::support::{Client, Place, Server, admin_key, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_check_locates_errors_and_import_is_safe_to_rerun() {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().join("data"));
    let key = admin_key(&place);
    {
        let server = Server::start(&place).await;
        let client = Client::new(&server.base, &key);
        client.setup_round_robin(3, serde_json::json!({})).await;
        // A column named like a declared custom field imports into it.
        let (status, field) = client
            .post(
                "/api/v1/fields",
                &serde_json::json!({"entity": "lead", "name": "备注", "type": "text"}),
            )
            .await
            .expect("declare");
        assert_eq!(status, 201, "{field}");
    }

    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "[[rules]]\nid = \"east\"\ntarget = { team = \"nowhere\" }\nwhen = { field = \"regoin\", op = \"equals\", value = \"华东\" }\n").expect("write");
    let mut args = vec![
        "rules".to_owned(),
        "check".to_owned(),
        rules.display().to_string(),
    ];
    args.extend(place.args());
    let output = run(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("rules[0].when.field (rule east): unknown lead field \"regoin\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("rules[0].target.team (rule east): no team has id \"nowhere\""),
        "{stderr}"
    );
    std::fs::write(
        &rules,
        "[[rules]]\nid = \"all\"\ntarget = { team = \"t\" }\n",
    )
    .expect("write");
    assert!(run(&args).status.success());

    let csv = dir.path().join("leads.csv");
    let mut file = std::fs::File::create(&csv).expect("csv");
    writeln!(file, "姓名,手机,省份,行业,备注").expect("write");
    writeln!(file, "王总,13800000001,江苏省,制造,展会").expect("write");
    writeln!(file, "李经理,13800000002,广东省,金融,").expect("write");
    writeln!(file, "坏号码,12345,浙江省,制造,").expect("write");
    // Not UTF-8: the reader's own error names its line too.
    file.write_all(b"\xff\xfe,13800000003,,,\n").expect("write");
    drop(file);
    let mut args = vec!["import".to_owned(), csv.display().to_string()];
    args.extend(place.args());
    let output = run(&args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(
        stdout.contains("2 created, 0 already imported, 2 rejected"),
        "{stdout}{stderr}"
    );
    assert!(stderr.contains("line 4: phone (invalid_phone)"), "{stderr}");
    assert!(stderr.contains("line 5: "), "{stderr}");
    let output = run(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("0 created, 2 already imported, 2 rejected"),
        "{stdout}"
    );

    let server = Server::start(&place).await;
    let (_, leads) = Client::new(&server.base, &key).get("/api/v1/leads").await;
    let items = leads["items"].as_array().expect("items");
    assert_eq!(items.len(), 2);
    assert!(
        items.iter().all(|lead| lead["owner_id"].is_string()),
        "imported leads are routed"
    );
    assert!(
        items
            .iter()
            .any(|lead| lead["attributes"]["备注"] == serde_json::json!("展会")),
        "{leads}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_and_keys_work_on_a_fresh_data_directory() {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().join("fresh"));
    let with_place = |args: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        args.extend(place.args());
        args
    };
    // The dry run lists every migration on a fresh database and changes nothing.
    let output = run(&with_place(&["migrate", "--dry-run"]));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.starts_with("would apply 1: initial"), "{stdout}");
    let again = run(&with_place(&["migrate", "--dry-run"]));
    assert_eq!(String::from_utf8_lossy(&again.stdout), stdout);
    let output = run(&with_place(&["migrate"]));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let output = run(&with_place(&["migrate", "--dry-run"]));
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("up to date"),
        "{output:?}"
    );
    let key = admin_key(&place);
    assert!(key.starts_with("lr_") && key.len() == 67, "{key}");

    // A database a newer release migrated is refused, with the reason.
    let url = format!(
        "sqlite://{}",
        dir.path().join("fresh/leadroute.db").display()
    );
    let pool = sqlx::SqlitePool::connect(&url).await.expect("database");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (99999, 'from the future', 1, x'00', 0)",
    )
    .execute(&pool)
    .await
    .expect("a future migration");
    pool.close().await;
    let output = run(&with_place(&["migrate"]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("migration 99999") && stderr.contains("newer"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_admin_is_made_on_the_command_line_and_signs_in() {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().to_path_buf());
    // Serving a workspace nobody can sign in to says how to make the first admin.
    let port = crate::support::free_port();
    let mut child = std::process::Command::new(crate::support::BINARY)
        .args([
            "serve",
            "--data-dir",
            &dir.path().display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("LEADROUTE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let lines = lines_of(&mut child);
    let mut hint = String::new();
    while let Ok(line) = lines.recv_timeout(std::time::Duration::from_secs(30)) {
        hint.push_str(&line);
        if line.contains("users create") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        hint.contains(&format!(
            "leadroute users create --username admin --role admin --data-dir {}",
            dir.path().display()
        )),
        "{hint}"
    );
    let mut args: Vec<String> = ["users", "create", "--username", "boss", "--role", "admin"]
        .map(str::to_owned)
        .to_vec();
    args.extend(place.args());
    let output = run(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let password = stdout
        .lines()
        .last()
        .expect("password line")
        .trim()
        .to_owned();
    assert!(password.len() >= 10, "{stdout}");
    // The same name again is refused.
    let again = run(&args);
    assert!(!again.status.success());

    // A forgotten password is reset on the command line; the old one stops working.
    let mut reset: Vec<String> = ["users", "reset-password", "boss"]
        .map(str::to_owned)
        .to_vec();
    reset.extend(place.args());
    let output = run(&reset);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{stdout}");
    let old = password;
    let password = stdout
        .lines()
        .last()
        .expect("password line")
        .trim()
        .to_owned();
    assert_ne!(password, old);
    let mut nobody: Vec<String> = ["users", "reset-password", "nobody"]
        .map(str::to_owned)
        .to_vec();
    nobody.extend(place.args());
    assert!(!run(&nobody).status.success());

    let server = Server::start(&place).await;
    let sign_in = |password: String| {
        let base = server.base.clone();
        async move {
            reqwest::Client::new()
                .post(format!("{base}/api/v1/session"))
                .json(&serde_json::json!({"username": "boss", "password": password}))
                .send()
                .await
                .expect("sign in")
        }
    };
    assert_eq!(sign_in(old).await.status().as_u16(), 401);
    let response = sign_in(password).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response
            .headers()
            .get("set-cookie")
            .and_then(|value| value.to_str().ok())
            .is_some_and(
                |cookie| cookie.starts_with("leadroute_session=") && cookie.contains("HttpOnly")
            )
    );
}

/// Reads the lines a process prints, as they come.
fn lines_of(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    receive
}

/// Runs `leadroute demo` on `data` and waits for it to serve: the server (killed when dropped),
/// the key and the admin password it printed.
async fn start_demo(data: &std::path::Path) -> (crate::support::Server, String, String) {
    let port = crate::support::free_port();
    let mut child = std::process::Command::new(crate::support::BINARY)
        .args([
            "demo",
            "--data-dir",
            &data.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ])
        .env("LEADROUTE_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn demo");
    let lines = lines_of(&mut child);
    // Killed when dropped, however the test ends.
    let server = crate::support::Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let mut printed = Vec::new();
    while !printed
        .last()
        .is_some_and(|line: &String| line.starts_with("lr_"))
    {
        let line = lines
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the demo prints its key");
        printed.push(line);
    }
    let key = printed.last().expect("key").clone();
    let password = printed
        .iter()
        .find_map(|line| line.strip_prefix("Sign in:  admin / "))
        .and_then(|rest| rest.split(' ').next())
        .expect("the admin's password")
        .to_owned();
    let started = std::time::Instant::now();
    while reqwest::get(format!("{}/healthz", server.base))
        .await
        .is_err()
    {
        assert!(started.elapsed() < std::time::Duration::from_secs(30));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    (server, key, password)
}

async fn sign_in_status(base: &str, username: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/api/v1/session"))
        .json(&serde_json::json!({"username": username, "password": password}))
        .send()
        .await
        .expect("sign in")
        .status()
        .as_u16()
}

/// The README's first command: `leadroute demo` makes a workspace to look at and serves it —
/// leads routed, some worked, some in the public pool, a web form, users to sign in as. Run
/// again, it reuses the workspace, prints fresh sign-ins and rotates its key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_serves_a_workspace_worth_looking_at() {
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path().join("data");
    let (server, key, password) = start_demo(&data).await;
    let base = server.base.clone();
    let client = Client::new(&base, &key);
    let (status, leads) = client.get("/api/v1/leads?limit=500").await;
    assert_eq!(status, 200, "{leads}");
    let items = leads["items"].as_array().expect("items");
    assert_eq!(items.len(), 300);
    for status in ["assigned", "contacted", "won", "lost"] {
        assert!(
            items.iter().any(|lead| lead["status"] == status),
            "some leads are {status}"
        );
    }
    let (_, pool) = client.get("/api/v1/pool").await;
    assert!(
        pool["items"]
            .as_array()
            .is_some_and(|items| !items.is_empty()),
        "the public pool has leads to claim: {pool}"
    );
    // The web form line it printed works as printed.
    let form = client
        .http
        .post(format!(
            "{base}/api/v1/intake/site-form?token=demo-form-token"
        ))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("%E5%A7%93%E5%90%8D=%E7%8E%8B%E6%80%BB&%E6%89%8B%E6%9C%BA=13812345678")
        .send()
        .await
        .expect("form post");
    assert_eq!(form.status().as_u16(), 201);
    // Both printed users sign in.
    for username in ["admin", "wang-fang"] {
        assert_eq!(
            sign_in_status(&base, username, &password).await,
            200,
            "{username}"
        );
    }
    drop(server);

    // Again on the same workspace: nothing seeded twice, the sign-ins printed again (new
    // passwords), and the demo key rotated rather than piled up.
    let (server, again, new_password) = start_demo(&data).await;
    let base = server.base.clone();
    assert_ne!(again, key);
    assert_ne!(new_password, password);
    let client = Client::new(&base, &again);
    let (status, leads) = client.get("/api/v1/leads?limit=500").await;
    assert_eq!(status, 200, "{leads}");
    assert_eq!(leads["items"].as_array().map(Vec::len), Some(301));
    let (status, _) = Client::new(&base, &key).get("/api/v1/leads?limit=1").await;
    assert_eq!(status, 401, "the first run's key is revoked");
    let (_, keys) = client.get("/api/v1/keys").await;
    let live = keys["items"]
        .as_array()
        .expect("keys")
        .iter()
        .filter(|key| key["name"] == "demo" && key["revoked_at"].is_null())
        .count();
    assert_eq!(live, 1, "{keys}");
    for username in ["admin", "wang-fang"] {
        assert_eq!(
            sign_in_status(&base, username, &new_password).await,
            200,
            "{username}"
        );
        assert_eq!(
            sign_in_status(&base, username, &password).await,
            401,
            "{username}"
        );
    }
}

/// `leadroute simulate` replays the workspace's leads and a file, prints a summary, writes the
/// report and per-rep CSV, and names what is wrong with a bad request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_replays_history_and_files_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().join("data"));
    let key = admin_key(&place);
    {
        let server = Server::start(&place).await;
        let client = Client::new(&server.base, &key);
        client.setup_round_robin(3, serde_json::json!({})).await;
        for index in 0..9 {
            let (status, body) = client
                .post(
                    "/api/v1/leads",
                    &serde_json::json!({"external_id": format!("s{index}"), "company": "ACME"}),
                )
                .await
                .expect("lead");
            assert_eq!(status, 201, "{body}");
        }
    }
    let draft = dir.path().join("draft.json");
    std::fs::write(
        &draft,
        r#"{"rules": [{"id": "one", "target": {"reps": ["r02"]}}]}"#,
    )
    .expect("write");
    let (out, csv) = (dir.path().join("report.json"), dir.path().join("reps.csv"));
    let mut args: Vec<String> = ["simulate", "--b"]
        .iter()
        .map(|arg| (*arg).to_owned())
        .chain([
            draft.display().to_string(),
            "--days".into(),
            "1".into(),
            "--out".into(),
            out.display().to_string(),
            "--csv".into(),
            csv.display().to_string(),
        ])
        .collect();
    args.extend(place.args());
    let output = run(&args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("Replayed 9 leads"), "{stdout}");
    assert!(
        stdout.contains("6 leads (66.7%) would change owner"),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).expect("report")).expect("json");
    assert_eq!(
        report["fidelity"]["same_owner"], 9,
        "{}",
        report["fidelity"]
    );
    let table = std::fs::read_to_string(&csv).expect("csv");
    assert!(table.starts_with("policy,rep_id,name,leads"), "{table}");
    assert!(table.contains("B,r02,Rep 2,9,"), "{table}");

    // A file with a bad row: reported by line, the rest replayed.
    let history = dir.path().join("history.csv");
    std::fs::write(
        &history,
        "公司,创建时间,结果,负责人\n甲,2026-11-02 09:00,赢单,r00\n乙,昨天,输单,r01\n丙,2026-11-02 10:00,输单,r01\n",
    )
    .expect("write");
    let mut args: Vec<String> = vec![
        "simulate".into(),
        "--b".into(),
        draft.display().to_string(),
        "--file".into(),
        history.display().to_string(),
    ];
    args.extend(place.args());
    let output = run(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("Replayed 2 leads") && stdout.contains("1 rows skipped"),
        "{stdout}"
    );

    // An unknown version is named.
    let mut args: Vec<String> = vec!["simulate".into(), "--b".into(), "99".into()];
    args.extend(place.args());
    let output = run(&args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("no rule set has version 99") && stderr.contains("b.rule_set"),
        "{stderr}"
    );
}

/// `leadroute model`: a CSV evaluated without any workspace, bad columns named; the workspace's
/// closed leads trained into a draft, published, listed, and retraining scheduled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_trains_evaluates_publishes_and_schedules_from_the_command_line() {
    let dir = tempfile::tempdir().expect("dir");
    let csv = dir.path().join("history.csv");
    let mut text = String::from("channel,visits,Converted,id\n");
    for index in 0..300u32 {
        let fair = index.is_multiple_of(2);
        let won = if fair { index % 5 != 0 } else { index % 5 == 0 };
        text.push_str(&format!(
            "{},{},{},{index}\n",
            if fair { "展会" } else { "官网" },
            index % 17,
            u8::from(won)
        ));
    }
    std::fs::write(&csv, text).expect("write");
    let file_args = |outcome: &str| -> Vec<String> {
        ["model", "evaluate", "--csv"]
            .iter()
            .map(|arg| (*arg).to_owned())
            .chain([
                csv.display().to_string(),
                "--outcome".into(),
                outcome.into(),
                "--drop".into(),
                "id".into(),
            ])
            .collect()
    };
    let output = run(&file_args("Converted"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("Logistic regression on 300 closed leads") && stdout.contains("AUC 0."),
        "{stdout}"
    );
    let output = run(&file_args("Won"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("unknown_column"), "{stderr}");

    // A workspace with too little history is refused with what is missing; with enough, trained.
    let place = Place::Dir(dir.path().join("data"));
    let key = admin_key(&place);
    let with_store = |args: &[&str]| -> std::process::Output {
        let mut args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        args.extend(place.args());
        run(&args)
    };
    let output = with_store(&["model", "train"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("not_enough_outcomes") && stderr.contains("200 more closed"),
        "{stderr}"
    );
    {
        let server = Server::start(&place).await;
        let client = Client::new(&server.base, &key);
        client.setup_round_robin(2, serde_json::json!({})).await;
        for chunk in 0..4 {
            let leads: Vec<serde_json::Value> = (0..60)
                .map(|offset| {
                    let index = chunk * 60 + offset;
                    serde_json::json!({"external_id": format!("h{index}"), "company": "ACME",
                        "source": if index % 2 == 0 { "展会" } else { "官网" }})
                })
                .collect();
            let (status, answer) = client
                .post("/api/v1/leads/batch", &serde_json::json!({"leads": leads}))
                .await
                .expect("batch");
            assert_eq!(status, 200, "{answer}");
            for (offset, item) in answer["items"]
                .as_array()
                .expect("items")
                .iter()
                .enumerate()
            {
                let index = chunk * 60 + offset;
                let won = if index % 2 == 0 {
                    index % 5 != 1
                } else {
                    index % 5 == 1
                };
                let body = if won {
                    serde_json::json!({"status": "won", "amount": 100})
                } else {
                    serde_json::json!({"status": "lost", "lost_reason": "price"})
                };
                let id = item["lead"]["id"].as_str().expect("id");
                let (status, closed) = client.patch(&format!("/api/v1/leads/{id}"), &body).await;
                assert_eq!(status, 200, "{closed}");
            }
        }
    }
    let output = with_store(&["model", "train"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("Logistic regression on 240 closed leads")
            && stdout.contains("Model 1 is a draft"),
        "{stdout}"
    );
    let output = with_store(&["model", "publish", "1"]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("Model 1 is active."),
        "{output:?}"
    );
    let output = with_store(&["model", "list"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout
            .lines()
            .any(|line| line.trim_start().starts_with("1  active") && line.contains("240")),
        "{stdout}"
    );
    let output = with_store(&["model", "publish", "7"]);
    assert!(!output.status.success());

    let output = with_store(&[
        "model",
        "schedule",
        "--every",
        "7d",
        "--auto-publish",
        "--minimum-auc",
        "0.8",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success()
            && stdout.contains("Retraining every 7d")
            && stdout.contains("reaches 0.8"),
        "{stdout}"
    );
    let output = with_store(&["model", "schedule", "--every", "5m"]);
    assert!(!output.status.success());
    let output = with_store(&["model", "schedule"]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("Retraining every 7d"),
        "{output:?}"
    );
}

/// `leadroute import --mode optimal`: the plan first; nothing imported without confirmation;
/// with `--yes` the file is placed as one batch, and a second run finds duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_plans_a_file_as_one_batch_before_applying() {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().join("data"));
    let key = admin_key(&place);
    {
        let server = Server::start(&place).await;
        let client = Client::new(&server.base, &key);
        client
            .setup_round_robin(3, serde_json::json!({"max_per_day": 2}))
            .await;
    }
    let csv = dir.path().join("show.csv");
    let mut text = String::from("company,region,score,external_id\n");
    for index in 0..8 {
        text.push_str(&format!(
            "展会客户{index},华东,{},card-{index}\n",
            10 + index * 10
        ));
    }
    std::fs::write(&csv, text).expect("write");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["import", "--mode", "optimal"]
            .iter()
            .map(|arg| (*arg).to_owned())
            .chain([csv.display().to_string()])
            .chain(extra.iter().map(|arg| (*arg).to_owned()))
            .collect();
        args.extend(place.args());
        args
    };
    let output = run(&args(&[]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("Plan: 6 of 8 leads placed by the optimiser")
            && stdout.contains("Nothing imported"),
        "{stdout}"
    );
    let output = run(&args(&["--yes"]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("8 created"), "{stdout}");
    let output = run(&args(&["--yes"]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("0 created, 8 already imported"), "{stdout}");
    let output = run(&args(&["--band", "wide"]));
    assert!(!output.status.success());
}

/// `leadroute import --mode migrate`: a CRM's export comes in with its owners (by id, email
/// or name), statuses and times, unrouted even past the owners' caps; unknown owners are
/// reported by line; a second run finds duplicates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_migrates_a_crm_export_with_its_owners() {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().join("data"));
    let key = admin_key(&place);
    {
        let server = Server::start(&place).await;
        let client = Client::new(&server.base, &key);
        client
            .setup_round_robin(2, serde_json::json!({"max_open": 1}))
            .await;
        let (status, body) = client
            .patch(
                "/api/v1/reps/r01",
                &serde_json::json!({"contact": {"email": "Li.Na@example.com"}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let csv = dir.path().join("crm.csv");
    std::fs::write(
        &csv,
        "线索编号,公司,负责人,状态,创建时间,最后跟进时间\n\
         crm-1,甲公司,r00,跟进中,2026-10-01 09:00,2026-11-20 15:30\n\
         crm-2,乙公司,li.na@example.com,已分配,2026-11-01,\n\
         crm-3,丙公司,Rep 0,赢单,2026-09-01 10:00,2026-10-15 10:00\n\
         crm-4,丁公司,王五,跟进中,2026-11-02,\n\
         crm-5,戊公司,r00,已分配,明天,\n",
    )
    .expect("write");
    let args = || -> Vec<String> {
        let mut args: Vec<String> = [
            "import",
            "--mode",
            "migrate",
            "--map",
            "线索编号=external_id",
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .chain([csv.display().to_string()])
        .collect();
        args.extend(place.args());
        args
    };
    let output = run(&args());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "two rows are refused");
    assert!(
        stdout
            .contains("3 moved in with their owners (not routed), 0 already imported, 2 rejected"),
        "{stdout}"
    );
    assert!(
        stderr.contains("line 5: owner (unknown_owner)") && stderr.contains("line 6: created_at"),
        "{stderr}"
    );
    let server = Server::start(&place).await;
    let client = Client::new(&server.base, &key);
    // The server's clock ticks every second: wait (a while, on a busy machine) for the first
    // tick to have reclaimed the lead nobody followed up.
    let mut leads = serde_json::Value::Null;
    for _ in 0..100 {
        leads = client.get("/api/v1/leads?limit=10").await.1;
        let reclaimed = leads["items"].as_array().is_some_and(|items| {
            items
                .iter()
                .any(|lead| lead["company"] == "乙公司" && lead["pool_id"] == "public")
        });
        if reclaimed {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let items = leads["items"].as_array().expect("items");
    assert_eq!(items.len(), 3, "{leads}");
    let by_company = |company: &str| {
        items
            .iter()
            .find(|lead| lead["company"] == company)
            .cloned()
            .unwrap_or_default()
    };
    let first = by_company("甲公司");
    assert_eq!(first["owner_id"], "r00");
    assert_eq!(first["status"], "contacted");
    assert_eq!(first["created_at"], "2026-10-01T01:00:00.000Z", "{first}");
    assert_eq!(
        first["follow_up"]["last_activity_at"],
        "2026-11-20T07:30:00.000Z"
    );
    // Clocks run from the lead's own times: 乙公司 came in a month ago and was never followed
    // up, so the first tick reclaims it from r01 as the SLA policy says.
    let second = by_company("乙公司");
    assert_eq!(
        second["follow_up"]["previous_owners"],
        serde_json::json!(["r01"]),
        "{second}"
    );
    assert_eq!(second["pool_id"], "public");
    assert_eq!(by_company("丙公司")["status"], "won");
    let id = first["id"].as_str().expect("id");
    let (_, decisions) = client.get(&format!("/api/v1/leads/{id}/decisions")).await;
    let decision = &decisions["items"][0];
    assert_eq!(decision["kind"], "import", "{decisions}");
    assert!(
        decision["explanation"]["zh"]
            .as_str()
            .is_some_and(|text| text.contains("从原系统迁入")),
        "{decision}"
    );
    let (_, events) = client.get("/api/v1/events?event=lead.assigned").await;
    assert_eq!(
        events["items"].as_array().map(Vec::len),
        Some(0),
        "no one is told of old leads"
    );
    drop(server);
    let output = run(&args());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("0 moved in with their owners (not routed), 3 already imported"),
        "{stdout}"
    );
}

/// A backup taken while leads pour in holds every lead acknowledged before it began; restored
/// into an empty directory it serves them all, and a restore into a workspace with leads is
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_acknowledged_lead() {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().join("data"));
    let key = admin_key(&place);
    let server = Server::start(&place).await;
    let client = Client::new(&server.base, &key);
    client.setup_round_robin(3, serde_json::json!({})).await;
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..4 {
        let (client, acknowledged, stop) = (
            Client::new(&server.base, &key),
            acknowledged.clone(),
            stop.clone(),
        );
        writers.push(tokio::spawn(async move {
            let mut index = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let lead = serde_json::json!({"external_id": format!("w{writer}-{index}"), "company": "ACME"});
                if let Ok((201, body)) = client.post("/api/v1/leads", &lead).await
                    && let Some(id) = body["lead"]["id"].as_str()
                {
                    acknowledged.lock().expect("ids").push(id.to_owned());
                }
                index += 1;
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let before: Vec<String> = acknowledged.lock().expect("ids").clone();
    assert!(before.len() > 10, "the writers got going: {}", before.len());
    let out = dir.path().join("backup.db");
    let mut args = vec![
        "backup".to_owned(),
        "--out".to_owned(),
        out.display().to_string(),
    ];
    args.extend(place.args());
    let output = tokio::task::spawn_blocking(move || run(&args))
        .await
        .expect("backup");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.expect("writer");
    }
    drop(server);

    // Into the workspace it came from: refused, it has leads.
    let restore = |place: &Place| {
        let mut args = vec!["restore".to_owned(), out.display().to_string()];
        args.extend(place.args());
        run(&args)
    };
    let refused = restore(&place);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("has leads"),
        "{refused:?}"
    );
    // Into an empty directory: every lead acknowledged before the backup began is there.
    let fresh = Place::Dir(dir.path().join("restored"));
    let output = restore(&fresh);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let server = Server::start(&fresh).await;
    let client = Client::new(&server.base, &key);
    for id in &before {
        let (status, lead) = client.get(&format!("/api/v1/leads/{id}")).await;
        assert_eq!(status, 200, "{id}: {lead}");
    }
}

/// `leadroute doctor` names what is broken (exit 1) and what only needs a look (exit 0).
#[test]
fn doctor_checks_an_install() {
    let dir = tempfile::tempdir().expect("dir");
    let place = Place::Dir(dir.path().join("data"));
    let with_place = |args: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
        args.extend(place.args());
        args
    };
    let doctor = |args: Vec<String>, public_url: Option<&str>| {
        let mut command = std::process::Command::new(crate::support::BINARY);
        command.args(args).env_remove("LEADROUTE_PUBLIC_URL");
        if let Some(url) = public_url {
            command.env("LEADROUTE_PUBLIC_URL", url);
        }
        let output = command.output().expect("doctor");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        )
    };
    // A data directory nobody migrated.
    let (healthy, report) = doctor(with_place(&["doctor"]), None);
    assert!(!healthy, "{report}");
    assert!(
        report.contains("migrations pending; run leadroute migrate"),
        "{report}"
    );
    // Migrated, but nobody can sign in.
    assert!(run(&with_place(&["migrate"])).status.success());
    let (healthy, report) = doctor(with_place(&["doctor"]), None);
    assert!(!healthy, "{report}");
    assert!(report.contains("✗ users: no active admin"), "{report}");
    // With an admin: works, with things to look at.
    assert!(
        run(&with_place(&[
            "users",
            "create",
            "--username",
            "admin",
            "--role",
            "admin"
        ]))
        .status
        .success()
    );
    let (healthy, report) = doctor(with_place(&["doctor"]), Some("https://leads.example.com"));
    assert!(healthy, "{report}");
    for line in [
        "✓ database: sqlite schema up to date",
        "✓ users: an active admin can sign in",
        "! rules: none published yet",
        "✓ public URL: https://leads.example.com",
    ] {
        assert!(report.contains(line), "{line}: {report}");
    }
    let (healthy, report) = doctor(with_place(&["doctor"]), Some("leads.example.com"));
    assert!(!healthy && report.contains("✗ public URL"), "{report}");
    // A database that is not there.
    let (healthy, report) = doctor(
        vec![
            "doctor".into(),
            "--database-url".into(),
            "postgres://nobody@127.0.0.1:1/none".into(),
        ],
        None,
    );
    assert!(
        !healthy && report.contains("✗ database: unreachable"),
        "{report}"
    );
}
