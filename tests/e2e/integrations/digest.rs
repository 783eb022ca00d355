//! The certificate expiry digest: a periodic task that delivers through an
//! integration.

use super::*;

on_both_databases!(certificate_digest);

fn certificate_digest(db: TestDb) {
    let far = CaptureServer::start();
    let server = TestServer::with_plugins_and(db, &["webhook", "cert_expiry_digest"], |config| {
        // The far end is on loopback, which adapters may reach only when
        // the operator allows it.
        config.webhook_allowed_hosts = vec!["127.0.0.1".into()];
        config.scheduler_tick_ms = 100;
        config.task_settings.insert(
            "cert_expiry_digest".into(),
            json!({"within_days": 30, "schedule": {"every_seconds": 1}}),
        );
    });
    let admin = server.admin();
    create_workspace(&admin, "ops");
    create_workspace(&admin, "quiet");
    for (host, from, until) in [
        ("old.example.com", -90, -2),
        ("soon.example.com", -30, 10),
        ("later.example.com", -30, 60),
    ] {
        let (pem, _) = certificate(host, from, until);
        admin.create("/api/v1/workspaces/ops/certificates", json!({"pem": pem}));
    }
    // `quiet` has a certificate far from expiry and an integration: it gets
    // no digest.
    let (pem, _) = certificate("fine.example.com", -1, 300);
    admin.create("/api/v1/workspaces/quiet/certificates", json!({"pem": pem}));
    for (slug, path) in [("ops", "/digest"), ("quiet", "/quiet")] {
        admin.create(
            &format!("/api/v1/workspaces/{slug}/integrations"),
            json!({"name": "hook", "adapter": "webhook",
                   "config": {"url": format!("{}{path}", far.url), "secret": HOOK_SECRET}}),
        );
    }

    // The task runs on its (overridden) schedule and delivers a digest.
    let digests = far.wait_for("/digest", 1, Duration::from_secs(30));
    assert!(!digests.is_empty(), "no digest arrived");
    let digest = digests[0].json();
    assert_signed(&digests[0], HOOK_SECRET);
    assert_eq!(digest["type"], "certificate.expiry_digest");
    assert_eq!(digest["workspace"], "ops");
    let text = digest["text"].as_str().unwrap();
    assert!(
        text.contains("old.example.com") && text.contains("EXPIRED"),
        "{text}"
    );
    assert!(text.contains("soon.example.com"), "{text}");
    assert!(!text.contains("later.example.com"), "{text}");
    let listed = strings(&digest["data"]["certificates"], "name");
    assert_eq!(listed, ["old.example.com", "soon.example.com"]);
    assert!(
        far.to("/quiet").is_empty(),
        "a workspace with nothing expiring got a digest"
    );

    // The run is recorded, and an operator can run it on demand.
    let cli = Cli::with(&server.url, &server.admin_token, None);
    let runs = cli
        .run(&["schedule", "runs", "cert_expiry_digest", "--json"])
        .ok()
        .json();
    assert!(
        runs.as_array()
            .unwrap()
            .iter()
            .any(|r| r["outcome"] == "ok"),
        "{runs}"
    );
    let before = far.to("/digest").len();
    let now = cli
        .run(&["schedule", "run", "cert_expiry_digest", "--json"])
        .ok()
        .json();
    assert_eq!(now["outcome"], "ok", "{now}");
    assert_eq!(now["output"]["certificates"], 2);
    assert!(far.to("/digest").len() > before);
    // The deliveries are in the integration's log, marked as the task's.
    let log = expect(
        &admin.get("/api/v1/workspaces/ops/integrations/hook/deliveries"),
        200,
    )
    .clone();
    assert!(
        log["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["source"] == "task:cert_expiry_digest" && d["ok"] == true),
        "{log}"
    );
}
