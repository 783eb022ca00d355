//! Where webhooks and `notify` steps may send: the egress policy, applied by
//! runs and by dry runs alike.

use super::*;

on_both_databases!(webhook_destinations, dry_runs_check_where_notify_steps_send);

/// Webhook steps refuse loopback, private and link-local destinations
/// unless the operator allows them: a playbook editor cannot make the
/// server call internal services.
fn webhook_destinations(db: TestDb) {
    let server = TestServer::start(db);
    let far = CaptureServer::start();
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let engineer = join(&server, "ops", "eng@ops.com", "engineer", false);
    let cli = Cli::with(&server.url, &engineer, Some("ops"));
    let dir = TempDir::new().unwrap();
    let probe = json!({"name": "probe", "steps": [
        {"type": "create_task", "title": "before the call"},
        {"type": "webhook", "url": format!("{}/internal", far.url)},
        {"type": "webhook", "url": "http://169.254.169.254/latest/meta-data/"}
    ]});
    create_playbook(&cli, &dir, "probe.json", &probe).ok();
    let dry = cli
        .run(&["playbook", "run", "probe", "--dry-run", "--json"])
        .json();
    assert_eq!(dry["steps"][0]["status"], "would_run", "{dry}");
    for (n, class) in [(1, "loopback"), (2, "link-local")] {
        let step = &dry["steps"][n];
        assert_eq!(step["status"], "would_fail", "{dry}");
        let error = step_error(&dry, n);
        assert!(
            error.contains(class) && error.contains("webhook_allowed_hosts"),
            "{error}"
        );
    }
    let run = cli.run(&["playbook", "run", "probe", "--json"]);
    assert_eq!(run.code, 11, "{}", run.stderr);
    let run = run.json();
    assert_eq!(run["status"], "failed");
    assert_eq!(run["steps"][0]["status"], "succeeded");
    assert_eq!(run["steps"][1]["status"], "failed");
    assert!(
        step_error(&run, 1).contains("127.0.0.1 is a loopback address"),
        "{run}"
    );
    assert_eq!(run["steps"][2]["status"], "skipped");
    assert!(far.to("/internal").is_empty(), "the refused call went out");
    // A host name that resolves to loopback is refused the same way.
    let named = json!({"name": "named", "steps": [
        {"type": "webhook", "url": far.url.replace("127.0.0.1", "localhost") + "/named"}
    ]});
    create_playbook(&cli, &dir, "named.json", &named).ok();
    let run = cli.run(&["playbook", "run", "named", "--json"]).json();
    let error = step_error(&run, 0);
    assert!(
        error.starts_with("localhost resolves to a loopback address"),
        "{error}"
    );
    assert!(far.to("/named").is_empty(), "the refused call went out");
}

/// A dry run checks where a `notify` step's integration would send, as the
/// run does: an integration whose address the egress policy refuses is
/// `would_fail` (without quoting the secret URL), and the run fails there.
fn dry_runs_check_where_notify_steps_send(db: TestDb) {
    let server = TestServer::with_plugins(db, &["webhook"]);
    let far = CaptureServer::start();
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let owner = join(&server, "ops", "owner@ops.com", "owner", false);
    let cli = Cli::with(&server.url, &owner, Some("ops"));
    let url = format!("{}/hook", far.url);
    add_webhook(&cli, "inside", &url);
    let dir = TempDir::new().unwrap();
    let tell = json!({"name": "tell", "steps": [
        {"type": "notify", "integration": "inside", "message": "hello"}
    ]});
    create_playbook(&cli, &dir, "tell.json", &tell).ok();
    let dry = cli
        .run(&["playbook", "run", "tell", "--dry-run", "--json"])
        .json();
    assert_eq!(dry["status"], "would_fail", "{dry}");
    assert_eq!(dry["steps"][0]["status"], "would_fail", "{dry}");
    let error = step_error(&dry, 0);
    assert!(
        error.contains("integration `inside` would be refused")
            && error.contains("`url`")
            && error.contains("webhook_allowed_hosts"),
        "{error}"
    );
    assert!(!error.contains(&url), "the secret URL was quoted: {error}");
    let run = cli.run(&["playbook", "run", "tell", "--json"]).json();
    assert_eq!(run["steps"][0]["status"], "failed", "{run}");
    assert!(far.to("/hook").is_empty(), "the refused call went out");
}
