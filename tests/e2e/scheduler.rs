//! The scheduler with two real server processes on one database: a plugin
//! task due every second runs exactly once per tick, its panics are recorded
//! and the next tick runs anyway; tasks and runs are listed through the API
//! and the CLI.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use tempfile::TempDir;
use vigilo_tests::json::strings;
use vigilo_tests::plugins::fixture_plugin;
use vigilo_tests::process::{create_admin, free_port, server_command, ServerProcess};
use vigilo_tests::{expect, on_both_databases, Api, Cli, TestDb};

/// `ok`/`panic` per tick, from the fixture's log.
fn ticks(log: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(word, tick)| (word.to_owned(), tick.to_owned()))
        .collect()
}

fn every_tick_runs_once(db: TestDb) {
    let dir = TempDir::new().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(fixture_plugin("ticker"), plugins.join("libticker.so")).unwrap();
    let log = dir.path().join("ticks.log");
    // The fixture task appends each tick to this file, which a plugin in a
    // worker may not open: it runs in process here.
    // Both processes use the same database: one SQLite file, or one
    // PostgreSQL database.
    let database_url = db.url.clone();
    let config = |n: usize, port: u16| {
        let path = dir.path().join(format!("server{n}.toml"));
        std::fs::write(
            &path,
            format!(
                "bind = \"127.0.0.1:{port}\"\ndata_dir = {:?}\ndatabase_url = {:?}\nplugins_dir = {:?}\n\
                 audit_signing_key = {:?}\nscheduler_tick_ms = 100\nplugin_isolation = \"in_process\"\n",
                dir.path().join(format!("data{n}")).display().to_string(),
                database_url,
                plugins.display().to_string(),
                dir.path().join("audit.key").display().to_string(),
            ),
        )
        .unwrap();
        path
    };
    let ports = [free_port(), free_port()];
    let configs = [config(0, ports[0]), config(1, ports[1])];
    let token = create_admin(&configs[0], "root@example.com");
    let mut servers: Vec<ServerProcess> = (0..2)
        .map(|n| {
            let mut command = server_command(&configs[n]);
            command.env("VIGILO_FIXTURE_TICK_LOG", &log);
            let stderr = dir.path().join(format!("server{n}.log"));
            ServerProcess::spawn(command, ports[n], &stderr)
        })
        .collect();
    for server in &servers {
        server.wait_healthy();
    }
    // Let both run for a while: enough ticks that some panic.
    let deadline = Instant::now() + Duration::from_secs(30);
    while ticks(&log).len() < 9 || !ticks(&log).iter().any(|(w, _)| w == "panic") {
        assert!(
            Instant::now() < deadline,
            "too few ticks: {:?}",
            ticks(&log)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let api = Api::new(servers[1].url(), Some(&token));
    let listed = expect(&api.get("/api/v1/scheduler/tasks"), 200).clone();
    let names = strings(&listed["tasks"], "name");
    assert_eq!(
        names,
        [
            "audit.checkpoint",
            "fixture_tick",
            "invites.expire",
            "records.prune"
        ],
        "{listed:#}"
    );
    let cli = Cli::with(servers[0].url(), &token, None);
    let table = cli.run(&["schedule", "list"]).ok().stdout.clone();
    assert!(
        table.contains("fixture_tick") && table.contains("every 1s"),
        "{table}"
    );
    let runs = cli
        .run(&["schedule", "runs", "fixture_tick", "--limit", "100"])
        .ok()
        .stdout
        .clone();
    assert!(
        runs.contains("panicked") && runs.contains("blew up"),
        "{runs}"
    );
    // Both stop cleanly before their logs and records are read.
    for server in &servers {
        server.terminate();
    }
    for server in &mut servers {
        server.wait();
    }

    // A plugin's panic reaches the server's log as one line through the
    // server (where secrets are scrubbed), not as the raw panic report the
    // plugin's own panic hook would print.
    let logs: String = servers.iter().map(ServerProcess::log).collect();
    assert!(logs.contains("blew up"), "the panic is not logged: {logs}");
    // With its place in the plugin's source.
    assert!(
        logs.contains("blew up (at tests/fixtures/plugin/src/lib.rs:"),
        "the panic's place is not logged: {logs}"
    );
    assert!(
        !logs.contains("panicked at"),
        "a raw panic report reached the log: {logs}"
    );

    // Each tick ran exactly once, across both servers.
    let seen = ticks(&log);
    let unique: BTreeSet<&String> = seen.iter().map(|(_, t)| t).collect();
    assert_eq!(unique.len(), seen.len(), "a tick ran twice: {seen:#?}");
    // The run records agree with what ran, panics included, and the tick
    // after a panic still ran.
    let rows =
        db.rows("SELECT scheduled_for, outcome, runner FROM task_runs WHERE task = 'fixture_tick'");
    let recorded: BTreeMap<String, String> = rows
        .iter()
        .map(|r| (r[0].clone().unwrap(), r[1].clone().unwrap()))
        .collect();
    assert_eq!(recorded.len(), rows.len());
    for (word, tick) in &seen {
        let outcome = recorded
            .get(tick)
            .unwrap_or_else(|| panic!("{tick} ran but has no record"));
        let expected = if word == "panic" { "panicked" } else { "ok" };
        assert_eq!(outcome, expected, "{tick}");
    }
    let unfinished = recorded.values().filter(|o| *o == "running").count();
    assert!(unfinished <= 2, "runs left unrecorded: {recorded:#?}");
    let ticks_in_order: Vec<&(String, String)> = seen.iter().collect();
    let after_panic = ticks_in_order
        .windows(2)
        .any(|w| w[0].0 == "panic" && w[1].0 == "ok");
    assert!(after_panic, "no tick ran after a panic: {seen:?}");
    let runners: BTreeSet<String> = rows.iter().map(|r| r[2].clone().unwrap()).collect();
    eprintln!(
        "ticks run by {} server process(es): {runners:?}",
        runners.len()
    );
}

/// Runs of one task never overlap: while a run is still `running`, its
/// ticks are recorded as `skipped`; a run whose server process died is
/// closed as `abandoned` and the task runs again (at once when the process
/// is known to be gone, on PostgreSQL).
fn overlapping_and_abandoned_runs(db: TestDb) {
    let server = vigilo_tests::TestServer::with_plugins_and(db, &["ticker"], |config| {
        config.scheduler_tick_ms = 100;
        config.task_timeout_secs = 1;
    });
    let outcomes_after = |id: i64| -> Vec<String> {
        server
            .db
            .column(&format!(
                "SELECT outcome FROM task_runs WHERE task = 'fixture_tick' AND id > {id} ORDER BY id"
            ))
            .into_iter()
            .flatten()
            .collect()
    };
    let wait = |what: &str, mut done: Box<dyn FnMut() -> bool + '_>| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait(
        "a first finished run",
        Box::new(|| {
            outcomes_after(0)
                .iter()
                .any(|o| o == "ok" || o == "panicked")
        }),
    );
    // On PostgreSQL, a run left `running` by a server process that has no
    // connection any more is closed at once.
    if server.db.backend == vigilo_tests::Backend::Postgres {
        server.db.execute(
            "INSERT INTO task_runs (task, scheduled_for, runner, started_at, outcome)
             VALUES ('fixture_tick', 'gone', 'gone:1', '2999-01-01T00:00:00.000000Z', 'running')",
        );
        wait(
            "the run of a server that is gone to be abandoned",
            Box::new(|| {
                server
                    .db
                    .column("SELECT outcome FROM task_runs WHERE scheduled_for = 'gone'")[0]
                    .as_deref()
                    == Some("abandoned")
            }),
        );
    }
    // A run that looks like it is still going, on this very server
    // process, which has not finished it.
    let this_process = format!(
        "{}:{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "server".into()),
        std::process::id()
    );
    server.db.execute(&format!(
        "INSERT INTO task_runs (task, scheduled_for, runner, started_at, outcome)
         VALUES ('fixture_tick', 'stuck', '{this_process}', '2999-01-01T00:00:00.000000Z', 'running')"
    ));
    let stuck = server
        .db
        .number("SELECT id FROM task_runs WHERE scheduled_for = 'stuck'");
    wait(
        "two skipped ticks",
        Box::new(|| {
            outcomes_after(stuck)
                .iter()
                .filter(|o| *o == "skipped")
                .count()
                >= 2
        }),
    );
    assert!(
        outcomes_after(stuck).iter().all(|o| o == "skipped"),
        "a run overlapped the running one: {:?}",
        outcomes_after(stuck)
    );
    let error = server.db.column(&format!(
        "SELECT error FROM task_runs WHERE id = {}",
        stuck + 1
    ));
    assert_eq!(
        error[0].as_deref(),
        Some("the previous run was still running")
    );
    // Once it is older than any run may take, it is closed and ticks run.
    server.db.execute(&format!(
        "UPDATE task_runs SET started_at = '2000-01-01T00:00:00.000000Z' WHERE id = {stuck}"
    ));
    wait(
        "the stuck run to be abandoned and the task to run again",
        Box::new(|| {
            let state = server
                .db
                .column(&format!("SELECT outcome FROM task_runs WHERE id = {stuck}"));
            state[0].as_deref() == Some("abandoned")
                && outcomes_after(stuck)
                    .iter()
                    .any(|o| o == "ok" || o == "panicked")
        }),
    );

    // `records.prune` deletes finished runs past the retention period (30
    // days by default) and keeps the rest.
    server.db.execute(
        "INSERT INTO task_runs (task, scheduled_for, runner, started_at, finished_at, outcome)
         VALUES ('fixture_tick', 'ancient', 'gone:1', '2001-01-01T00:00:00.000000Z',
                 '2001-01-01T00:00:01.000000Z', 'ok')",
    );
    // Outbox mail: old and sent goes; old, unsent and past any invite's
    // life goes; recent unsent mail stays.
    server.db.execute(
        "INSERT INTO outbox (kind, recipient, subject, body, created_at, sent_at, attempts) VALUES
         ('invite', 'old-sent@x.com', 's', '', '2001-01-01T00:00:00.000000Z', '2001-01-01T00:00:01.000000Z', 1),
         ('invite', 'old-unsent@x.com', 's', 'v1:00', '2001-01-01T00:00:00.000000Z', NULL, 0),
         ('invite', 'new-unsent@x.com', 's', 'v1:00', '2999-01-01T00:00:00.000000Z', NULL, 0)",
    );
    let recent_before = server.db.number(
        "SELECT COUNT(*) FROM task_runs WHERE scheduled_for <> 'ancient' AND started_at > '2026-01-01'",
    );
    let pruned = expect(
        &server.admin().post(
            "/api/v1/scheduler/tasks/records.prune/run",
            serde_json::json!({}),
        ),
        200,
    )
    .clone();
    assert_eq!(pruned["outcome"], "ok", "{pruned}");
    assert!(
        pruned["output"]["task_runs"].as_u64().unwrap() >= 2,
        "{pruned}"
    );
    assert!(server
        .db
        .column("SELECT id FROM task_runs WHERE scheduled_for IN ('ancient', 'stuck')")
        .is_empty());
    assert!(pruned["output"]["mail"].as_u64().unwrap() >= 2, "{pruned}");
    assert_eq!(
        server
            .db
            .column("SELECT recipient FROM outbox WHERE recipient LIKE '%@x.com'"),
        [Some("new-unsent@x.com".to_owned())]
    );
    let recent_after = server
        .db
        .number("SELECT COUNT(*) FROM task_runs WHERE started_at > '2026-01-01'");
    assert!(recent_after >= recent_before, "recent runs were pruned");
}

/// The `fixture_tick` entry of `GET /api/v1/scheduler/tasks` once it is
/// listed with `schedule` (the scheduler registers a task, or its new
/// schedule, at its first look after the server starts or the plugin loads).
fn fixture_task(api: &Api, schedule: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = expect(&api.get("/api/v1/scheduler/tasks"), 200).clone();
        let task = vigilo_tests::json::find(&listed["tasks"], "name", "fixture_tick");
        if let Some(task) = task.filter(|t| t["schedule"] == schedule) {
            return task.clone();
        }
        assert!(
            Instant::now() < deadline,
            "fixture_tick never listed with {schedule}: {listed:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (with a generous deadline) until `fixture_tick` has a scheduled
/// run (not one on demand) after run `after`.
fn wait_for_a_scheduled_run(db: &TestDb, after: i64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while db.number(&format!(
        "SELECT COUNT(*) FROM task_runs WHERE task = 'fixture_tick' AND id > {after}
         AND runner NOT LIKE '%(on demand)'"
    )) == 0
    {
        assert!(
            Instant::now() < deadline,
            "the task never ran on its new schedule"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn last_run_id(db: &TestDb) -> i64 {
    db.number("SELECT COALESCE(MAX(id), 0) FROM task_runs")
}

/// A schedule changed in `task_settings` takes effect at the next start:
/// the next run is recomputed from the new schedule (not kept from the old
/// one), and the listing says the schedule is set in config.
fn a_schedule_changed_in_config_takes_effect(db: TestDb) {
    let start = |schedule: Option<serde_json::Value>| {
        vigilo_tests::TestServer::with_plugins_and(db.shared(), &["ticker"], move |config| {
            config.scheduler_tick_ms = 100;
            if let Some(schedule) = schedule {
                config.task_settings.insert(
                    "fixture_tick".into(),
                    serde_json::json!({ "schedule": schedule }),
                );
            }
        })
    };
    // On the 29th of February only: years away at most, days away at least.
    let server = start(Some(serde_json::json!({"cron": "0 7 29 2 *"})));
    let task = fixture_task(&server.admin(), "cron 0 7 29 2 *");
    assert_eq!(task["schedule_from"], "config", "{task:#}");
    assert!(
        task["next_run_at"]
            .as_str()
            .unwrap()
            .contains("-02-29T07:00:00"),
        "{task:#}"
    );
    let cli = Cli::with(&server.url, &server.admin_token, None);
    let table = cli.run(&["schedule", "list"]).ok().stdout.clone();
    assert!(table.contains("cron 0 7 29 2 * (set in config)"), "{table}");
    let before = last_run_id(&db);
    drop(server);

    // The operator changes it: it runs on the new schedule, not on the
    // 29th of February.
    let server = start(Some(serde_json::json!({"every_seconds": 2})));
    let task = fixture_task(&server.admin(), "every 2s");
    assert_eq!(task["schedule_from"], "config", "{task:#}");
    assert!(
        !task["next_run_at"]
            .as_str()
            .unwrap()
            .contains("-02-29T07:00:00"),
        "the old next run was kept: {task:#}"
    );
    wait_for_a_scheduled_run(&db, before);
    drop(server);

    // Without the setting, the plugin's own schedule is back.
    let server = start(None);
    let task = fixture_task(&server.admin(), "every 1s");
    assert_eq!(task["schedule_from"], "plugin", "{task:#}");
    let table = Cli::with(&server.url, &server.admin_token, None)
        .run(&["schedule", "list"])
        .ok()
        .stdout
        .clone();
    assert!(
        table.contains("every 1s") && !table.contains("(set in config)"),
        "{table}"
    );
}

/// A new version of a plugin, dropped into the plugins directory of a
/// running server, brings its new schedule into effect at once.
fn a_schedule_changed_by_a_new_plugin_version_takes_effect(db: TestDb) {
    let dir = TempDir::new().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::set_permissions(&plugins, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(fixture_plugin("ticker_old"), plugins.join("libticker.so")).unwrap();
    let watched = plugins.clone();
    let server = vigilo_tests::TestServer::start_with(db.shared(), move |config| {
        config.plugins_dir = Some(watched);
        config.scheduler_tick_ms = 100;
    });
    let admin = server.admin();
    let task = fixture_task(&admin, "cron 0 7 * * *");
    assert_eq!(task["schedule_from"], "plugin", "{task:#}");
    let before = last_run_id(&db);

    // Version 0.1.0 runs every second; moved in atomically.
    let staged = dir.path().join("libticker.so.new");
    std::fs::copy(fixture_plugin("ticker"), &staged).unwrap();
    std::fs::rename(&staged, plugins.join("libticker.so")).unwrap();
    fixture_task(&admin, "every 1s");
    wait_for_a_scheduled_run(&db, before);
}

on_both_databases!(
    every_tick_runs_once,
    overlapping_and_abandoned_runs,
    a_schedule_changed_in_config_takes_effect,
    a_schedule_changed_by_a_new_plugin_version_takes_effect
);
