//! Integrations and playbooks end to end: the first-party `slack_notifier`
//! and `webhook` plugins deliver to a real HTTP server on 127.0.0.1,
//! secrets never come back out, failures are recorded instead of crashing,
//! a playbook's dry run does nothing while its real run notifies through
//! both adapters and creates a task, and the `cert_expiry_digest` task sends
//! a digest of expiring certificates.

use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use vigilo_tests::capture::{CaptureServer, Captured};
use vigilo_tests::json::{find, strings};
use vigilo_tests::process::free_port;
use vigilo_tests::{expect, on_both_databases, Cli, CliOutput, TestDb, TestServer};

use crate::certificates::certificate;
use crate::{create_workspace, join};

mod destinations;

mod digest;

const SLACK_PATH: &str = "/services/T0001/B0002/slack-secret-path";
const HOOK_SECRET: &str = "whsec-0123456789abcdef";

fn hmac_sha256(key: &[u8], message: &[u8]) -> String {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    hex(&Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks the webhook plugin's signature header on a captured request.
fn assert_signed(request: &Captured, secret: &str) {
    let timestamp = request
        .header("x-vigilo-timestamp")
        .expect("timestamp header");
    let mut message = format!("{timestamp}.").into_bytes();
    message.extend_from_slice(&request.body);
    assert_eq!(
        request.header("x-vigilo-signature"),
        Some(format!("sha256={}", hmac_sha256(secret.as_bytes(), &message)).as_str()),
        "the webhook signature does not verify"
    );
}

fn write(dir: &TempDir, name: &str, value: &Value) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path.display().to_string()
}

/// `vigilo integration add NAME --adapter ADAPTER SETTINGS...`.
fn add_integration(cli: &Cli, name: &str, adapter: &str, settings: &[&str]) -> CliOutput {
    let mut args = vec!["integration", "add", name, "--adapter", adapter];
    args.extend_from_slice(settings);
    cli.run(&args)
}

/// Adds webhook integration `name`, delivering to `url` and signing with
/// [`HOOK_SECRET`].
fn add_webhook(cli: &Cli, name: &str, url: &str) {
    let (url, secret) = (format!("url={url}"), format!("secret={HOOK_SECRET}"));
    add_integration(cli, name, "webhook", &["--set", &url, "--set", &secret]).ok();
}

/// `vigilo playbook create --file FILE`, `definition` written to `dir/FILE`.
fn create_playbook(cli: &Cli, dir: &TempDir, file: &str, definition: &Value) -> CliOutput {
    cli.run(&[
        "playbook",
        "create",
        "--file",
        &write(dir, file, definition),
    ])
}

/// The error reported for step `n` of a playbook run.
fn step_error(run: &Value, n: usize) -> &str {
    run["steps"][n]["error"].as_str().unwrap()
}

/// A dry run of `db-failover` for the service `db`.
const DRY_RUN_FAILOVER: [&str; 7] = [
    "playbook",
    "run",
    "db-failover",
    "--dry-run",
    "--var",
    "service=db",
    "--json",
];

fn adapters_and_secrets(db: TestDb) {
    // The far ends are on loopback, which adapters may reach only when the
    // operator allows it.
    let server = TestServer::with_plugins_and(db, &["slack_notifier", "webhook"], |config| {
        config.webhook_allowed_hosts = vec!["127.0.0.1".into()];
    });
    let far = CaptureServer::start();
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let owner = join(&server, "ops", "owner@ops.com", "owner", false);
    let engineer = join(&server, "ops", "eng@ops.com", "engineer", false);
    let cli = Cli::with(&server.url, &owner, Some("ops"))
        .env("SLACK_URL", &format!("{}{SLACK_PATH}", far.url));

    // The adapters the plugins provide, with their secret settings.
    let adapters = cli.run(&["integration", "adapters", "--json"]).ok().json();
    let slack = find(&adapters, "name", "slack_notifier").expect("slack_notifier is listed");
    assert_eq!(slack["secret_fields"], json!(["webhook_url"]));

    // A bad configuration is refused with the adapter's reason, storing nothing.
    add_integration(
        &cli,
        "ops-slack",
        "slack_notifier",
        &["--set", "webhook_url=ftp://nope"],
    )
    .fails_with(6, "webhook_url");
    add_integration(&cli, "x", "pager_duty", &[]).fails_with(6, "pager_duty");
    // The adapter's published schema is enforced by the server.
    add_integration(
        &cli,
        "ops-slack",
        "slack_notifier",
        &["--set", "channel=#ops"],
    )
    .fails_with(6, "missing required setting `webhook_url`");
    // Only holders of integration.manage configure integrations.
    let denied = add_integration(
        &Cli::with(&server.url, &engineer, Some("ops")),
        "eng-slack",
        "slack_notifier",
        &["--set", "webhook_url=http://x"],
    );
    assert_eq!(denied.code, 4, "{}", denied.stderr);

    add_integration(
        &cli,
        "ops-slack",
        "slack_notifier",
        &[
            "--secret-env",
            "webhook_url=SLACK_URL",
            "--set",
            "channel=#ops",
        ],
    )
    .ok();
    add_webhook(&cli, "ops-hook", &format!("{}/hook", far.url));

    // Secrets never come back: not from the API, the CLI, the audit log or
    // the database.
    let shown = expect(
        &server
            .api(&engineer)
            .get("/api/v1/workspaces/ops/integrations/ops-slack"),
        200,
    )
    .clone();
    assert_eq!(shown["secrets_set"], json!(["webhook_url"]));
    let hook = expect(
        &server
            .api(&engineer)
            .get("/api/v1/workspaces/ops/integrations/ops-hook"),
        200,
    )
    .clone();
    assert_eq!(hook["secrets_set"], json!(["secret", "url"]));
    assert_eq!(hook["config"], json!({}));
    assert_eq!(shown["config"]["channel"], "#ops");
    let listing = cli
        .run(&["integration", "list", "--json"])
        .ok()
        .stdout
        .clone();
    let audit = expect(
        &admin.get("/api/v1/workspaces/ops/audit?after=0&limit=1000"),
        200,
    )
    .to_string();
    let stored = server.db.dump_text();
    for (what, text) in [
        ("GET", shown.to_string()),
        ("CLI list", listing),
        ("audit", audit),
        ("database", stored),
    ] {
        assert!(
            !text.contains(SLACK_PATH),
            "{what} reveals the Slack webhook URL"
        );
        assert!(
            !text.contains(HOOK_SECRET),
            "{what} reveals the webhook secret"
        );
    }

    // A test message reaches the far end, in Slack's shape.
    let tested = cli
        .run(&[
            "integration",
            "test",
            "ops-slack",
            "--text",
            "hello from the test",
        ])
        .ok()
        .stdout
        .clone();
    assert!(tested.contains("Delivered"), "{tested}");
    let slack_posts = far.to(SLACK_PATH);
    assert_eq!(slack_posts.len(), 1);
    let body = slack_posts[0].json();
    assert_eq!(body["channel"], "#ops");
    assert!(
        body["text"]
            .as_str()
            .unwrap()
            .contains("hello from the test"),
        "{body}"
    );

    // Changing a setting keeps the stored secret.
    cli.run(&[
        "integration",
        "update",
        "ops-slack",
        "--set",
        "channel=#alerts",
    ])
    .ok();
    cli.run(&["integration", "test", "ops-slack"]).ok();
    let slack_posts = far.to(SLACK_PATH);
    assert_eq!(slack_posts.len(), 2, "the secret URL survived the update");
    assert_eq!(slack_posts[1].json()["channel"], "#alerts");

    // The webhook is signed with its secret.
    cli.run(&["integration", "test", "ops-hook"]).ok();
    let hooks = far.to("/hook");
    assert_eq!(hooks.len(), 1);
    assert_signed(&hooks[0], HOOK_SECRET);
    assert_eq!(hooks[0].json()["type"], "integration.test");
    assert_eq!(hooks[0].header("x-vigilo-event"), Some("integration.test"));

    // A failing endpoint is a recorded delivery failure, not a crash.
    add_webhook(&cli, "broken", &format!("{}/fail", far.url));
    let failed = cli.run(&["integration", "test", "broken"]);
    assert_eq!(failed.code, 11, "{}", failed.stdout);
    assert!(failed.stdout.contains("500"), "{}", failed.stdout);
    let log = cli
        .run(&["integration", "deliveries", "broken", "--json"])
        .ok()
        .json();
    assert_eq!(log.as_array().unwrap().len(), 1);
    assert_eq!(log[0]["ok"], false);
    assert!(log[0]["error"].as_str().unwrap().contains("500"), "{log}");
    // Nor is an endpoint that does not listen.
    let closed = format!("url=http://127.0.0.1:{}/gone", free_port());
    let moved = ["integration", "update", "broken", "--set", &closed];
    // A new destination needs every secret again: the stored signing
    // secret is not handed to a URL it was not set up for.
    cli.run(&moved).fails_with(6, "`secret`");
    let secret = format!("secret={HOOK_SECRET}");
    cli.run(&[&moved[..], &["--set", &secret]].concat()).ok();
    assert_eq!(cli.run(&["integration", "test", "broken"]).code, 11);
    expect(&server.anonymous().get("/healthz"), 200);

    // Disabled integrations do not deliver.
    cli.run(&["integration", "update", "ops-hook", "--disable"])
        .ok();
    assert_eq!(cli.run(&["integration", "test", "ops-hook"]).code, 11);
    assert_eq!(far.to("/hook").len(), 1);

    cli.run(&["integration", "remove", "broken"]).ok();
    assert_eq!(cli.run(&["integration", "show", "broken"]).code, 5);
}

fn playbook_runs_and_dry_runs(db: TestDb) {
    // The capture server is on loopback, which webhook steps may call only
    // when the operator allows it.
    let server = TestServer::with_plugins_and(db, &["slack_notifier", "webhook"], |config| {
        config.webhook_allowed_hosts = vec!["127.0.0.1".into()];
    });
    let far = CaptureServer::start();
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let owner = join(&server, "ops", "owner@ops.com", "owner", false);
    let engineer = join(&server, "ops", "eng@ops.com", "engineer", false);
    let viewer = join(&server, "ops", "view@ops.com", "viewer", false);
    let owner_cli = Cli::with(&server.url, &owner, Some("ops"));
    let cli = Cli::with(&server.url, &engineer, Some("ops"));
    add_integration(
        &owner_cli,
        "ops-slack",
        "slack_notifier",
        &["--set", &format!("webhook_url={}/slack", far.url)],
    )
    .ok();
    add_webhook(&owner_cli, "ops-hook", &format!("{}/hook", far.url));
    let dir = TempDir::new().unwrap();
    let definition = json!({
        "name": "db-failover",
        "description": "Fail the database over and tell everyone",
        "steps": [
            {"type": "notify", "integration": "ops-slack", "title": "Failover of {{input.service}}",
             "message": "Started by {{run.started_by}} in {{workspace.slug}}"},
            {"type": "notify", "integration": "ops-hook", "message": "failover {{input.service}}"},
            {"type": "create_task", "name": "ticket", "title": "Follow up on {{input.service}} failover",
             "description": "Run {{run.id}}"},
            {"type": "set_status", "item": "{{steps.ticket.id}}", "status": "doing"}
        ]
    });
    create_playbook(&cli, &dir, "pb.json", &definition).ok();
    // Viewers may not create or run, but may dry-run.
    let viewer_cli = Cli::with(&server.url, &viewer, Some("ops"));
    let v = json!({"name": "v", "steps": [{"type": "create_task", "title": "x"}]});
    assert_eq!(create_playbook(&viewer_cli, &dir, "v.json", &v).code, 4);
    assert_eq!(
        viewer_cli
            .run(&["playbook", "run", "db-failover", "--var", "service=db"])
            .code,
        4
    );

    // The dry run resolves every step and has no side effect.
    let list_tasks = || {
        let listed = server
            .api(&engineer)
            .get("/api/v1/workspaces/ops/items?kind=task");
        expect(&listed, 200).clone()
    };
    let dry = cli.run(&DRY_RUN_FAILOVER).ok().json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(dry["status"], "ok", "{dry}");
    let statuses = strings(&dry["steps"], "status");
    assert_eq!(
        statuses,
        ["would_run", "would_run", "would_run", "cannot_simulate"],
        "{dry}"
    );
    assert_eq!(dry["steps"][0]["output"]["title"], "Failover of db");
    assert_eq!(
        dry["steps"][0]["output"]["text"],
        "Started by eng@ops.com in ops"
    );
    assert_eq!(
        dry["steps"][2]["output"]["title"],
        "Follow up on db failover"
    );
    assert!(far.requests().is_empty(), "a dry run delivered something");
    let tasks = list_tasks();
    assert_eq!(
        tasks["items"].as_array().unwrap().len(),
        0,
        "a dry run created a task"
    );
    // A viewer's dry run reports the permission the run would lack.
    let viewer_dry = viewer_cli.run(&DRY_RUN_FAILOVER);
    assert_eq!(viewer_dry.code, 11);
    let viewer_dry = viewer_dry.json();
    assert_eq!(viewer_dry["steps"][2]["status"], "would_fail");
    assert!(
        step_error(&viewer_dry, 2).contains("item.write"),
        "{viewer_dry}"
    );
    // A missing input variable is caught by the dry run.
    let no_input = cli.run(&["playbook", "run", "db-failover", "--dry-run", "--json"]);
    assert_eq!(no_input.code, 11);
    assert!(step_error(&no_input.json(), 0).contains("input.service"));

    // The real run delivers both payloads and creates the task.
    let run = cli
        .run(&["playbook", "run", "db-failover", "--var", "service=db"])
        .ok()
        .stdout
        .clone();
    assert!(run.contains("succeeded"), "{run}");
    let slack = far.to("/slack");
    assert_eq!(slack.len(), 1);
    assert!(slack[0].json()["text"]
        .as_str()
        .unwrap()
        .contains("Failover of db"));
    let hooks = far.to("/hook");
    assert_eq!(hooks.len(), 1);
    assert_signed(&hooks[0], HOOK_SECRET);
    assert_eq!(hooks[0].json()["text"], "failover db");
    assert_eq!(hooks[0].json()["type"], "playbook.notify");
    let tasks = list_tasks();
    let tasks = tasks["items"].as_array().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["title"], "Follow up on db failover");
    assert_eq!(tasks[0]["status"], "doing");

    // The run record shows each step, and can be listed and shown later.
    let runs = cli.run(&["playbook", "runs", "--json"]).ok().json();
    let runs = runs.as_array().unwrap();
    assert_eq!(
        runs.len(),
        4,
        "two dry runs by the engineer, one by the viewer, one run"
    );
    assert_eq!(runs[0]["dry_run"], false);
    let shown = cli
        .run(&["playbook", "show-run", &runs[0]["id"].to_string(), "--json"])
        .ok()
        .json();
    let steps = shown["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4);
    assert!(steps.iter().all(|s| s["status"] == "succeeded"), "{shown}");
    assert_eq!(steps[2]["output"]["id"], tasks[0]["id"]);
    assert!(steps[0]["output"]["delivery_id"].is_i64());
    // Runs are audited, with their outcome.
    let audit = admin.workspace_audit("ops", "after=0&limit=1000");
    let actions = audit.actions();
    for action in [
        "playbook.create",
        "playbook.dry_run",
        "playbook.run",
        "task.create",
        "task.transition",
    ] {
        assert!(actions.contains(&action), "no {action} in {actions:?}");
    }

    // A failed step stops the run; `continue_on_error` goes on.
    add_webhook(&owner_cli, "down", &format!("{}/fail", far.url));
    let stopping = json!({"name": "stops", "steps": [
        {"type": "notify", "integration": "down", "message": "x"},
        {"type": "create_task", "title": "never"}
    ]});
    create_playbook(&cli, &dir, "stops.json", &stopping).ok();
    let stopped = cli.run(&["playbook", "run", "stops", "--json"]);
    assert_eq!(stopped.code, 11);
    let stopped = stopped.json();
    assert_eq!(stopped["status"], "failed");
    assert_eq!(stopped["steps"][0]["status"], "failed");
    assert!(step_error(&stopped, 0).contains("500"), "{stopped}");
    assert_eq!(stopped["steps"][1]["status"], "skipped");
    let going_on = json!({"name": "stops", "steps": [
        {"type": "notify", "integration": "down", "message": "x", "continue_on_error": true},
        {"type": "create_task", "title": "anyway"}
    ]});
    cli.run(&[
        "playbook",
        "update",
        "stops",
        "--file",
        &write(&dir, "go.json", &going_on),
    ])
    .ok();
    let went_on = cli.run(&["playbook", "run", "stops", "--json"]).json();
    assert_eq!(went_on["steps"][0]["status"], "failed");
    assert_eq!(went_on["steps"][1]["status"], "succeeded");
    // A webhook step calls the URL with the run's context.
    let webhook_step = json!({"name": "call", "steps": [
        {"type": "webhook", "url": format!("{}/called", far.url), "body": {"service": "{{input.service}}"}}
    ]});
    create_playbook(&cli, &dir, "call.json", &webhook_step).ok();
    let dry_call = cli
        .run(&[
            "playbook",
            "run",
            "call",
            "--dry-run",
            "--var",
            "service=api",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(dry_call["steps"][0]["status"], "cannot_simulate");
    assert!(far.to("/called").is_empty());
    cli.run(&["playbook", "run", "call", "--var", "service=api"])
        .ok();
    assert_eq!(far.to("/called")[0].json(), json!({"service": "api"}));

    // Bad definitions are refused, naming the step.
    let bad = create_playbook(
        &cli,
        &dir,
        "bad.json",
        &json!({"name": "bad", "steps": [{"type": "notify", "integration": "ops-slack"}]}),
    );
    assert_eq!(bad.code, 6);
    assert!(
        bad.stderr.contains("steps[1]") && bad.stderr.contains("message"),
        "{}",
        bad.stderr
    );

    // Playbooks are part of the export and come back from templates.
    let exported = expect(&admin.get("/api/v1/workspaces/ops/export"), 200).clone();
    let names = strings(&exported["playbooks"], "name");
    assert_eq!(names, ["call", "db-failover", "stops"]);
    admin.copy_through_template(exported, "with-playbooks", ("Copy", "copy", "us"));
    let copied = expect(
        &admin.get("/api/v1/workspaces/copy/playbooks/db-failover"),
        200,
    )
    .clone();
    assert_eq!(
        copied["steps"],
        expect(
            &admin.get("/api/v1/workspaces/ops/playbooks/db-failover"),
            200
        )["steps"]
    );
    // Nothing of one workspace reaches another.
    assert_eq!(
        expect(&admin.get("/api/v1/workspaces/copy/playbook-runs"), 200)["runs"],
        json!([])
    );
    assert_eq!(
        expect(&admin.get("/api/v1/workspaces/copy/integrations"), 200)["integrations"],
        json!([])
    );
}

on_both_databases!(adapters_and_secrets, playbook_runs_and_dry_runs);
