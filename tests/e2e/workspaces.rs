//! Workspaces through the CLI: listing, creating (platform admins only),
//! settings, and export → template → restore round trips.

use serde_json::json;
use vigilo_tests::json::strings;
use vigilo_tests::{expect, on_both_databases, Cli, TestDb, TestServer};

use crate::join;

fn export_template_restore_round_trip(db: TestDb) {
    let server = TestServer::start(db);
    let admin = Cli::with(&server.url, &server.admin_token, None);
    admin
        .run(&[
            "workspace",
            "create",
            "--name",
            "Acme",
            "--slug",
            "acme",
            "--region",
            "eu",
        ])
        .ok();
    let acme = Cli::with(&server.url, &server.admin_token, Some("acme"));
    acme.run(&[
        "workspace",
        "settings",
        "set",
        "holidays",
        "2026-12-25,2026-12-26",
    ])
    .ok();
    acme.run(&["workspace", "settings", "set", "timezone", "Europe/Paris"])
        .ok();
    acme.run(&[
        "role",
        "create",
        "--name",
        "release-manager",
        "--base",
        "engineer",
        "--add",
        "audit.read",
    ])
    .ok();
    let settings = acme.run(&["--json", "workspace", "settings", "list"]);
    assert_eq!(
        settings.ok().json()["holidays"],
        json!(["2026-12-25", "2026-12-26"]),
        "{}",
        settings.stdout
    );

    let export = acme.run(&["workspace", "export", "--slug", "acme"]);
    let exported = export.ok().json();
    assert_eq!(exported["schema_version"], 1);
    assert_eq!(exported["settings"]["timezone"], "Europe/Paris");
    assert_eq!(exported["custom_roles"][0]["name"], "release-manager");
    assert_eq!(exported["custom_fields"], json!([]));
    assert_eq!(exported["playbooks"], json!([]));

    let file = acme.home.path().join("acme.json");
    std::fs::write(&file, &export.stdout).unwrap();
    admin
        .run(&[
            "template",
            "create",
            "--name",
            "eu-standard",
            "--from",
            file.to_str().unwrap(),
            "--description",
            "EU teams",
        ])
        .ok();
    let listed = admin.run(&["template", "list"]);
    assert!(
        listed.ok().stdout.contains("eu-standard"),
        "{}",
        listed.stdout
    );
    admin
        .run(&[
            "workspace",
            "create",
            "--name",
            "Acme EU 2",
            "--slug",
            "acme-eu2",
            "--region",
            "eu",
            "--template",
            "eu-standard",
        ])
        .ok();
    let restored = admin
        .run(&["workspace", "export", "--slug", "acme-eu2"])
        .ok()
        .json();
    assert_eq!(
        restored, exported,
        "export → template → restore must round-trip"
    );
}

fn workspace_visibility_and_admin_only_creation(db: TestDb) {
    let server = TestServer::start(db);
    let admin = Cli::with(&server.url, &server.admin_token, None);
    for slug in ["acme", "globex", "platform"] {
        admin
            .run(&[
                "workspace",
                "create",
                "--name",
                slug,
                "--slug",
                slug,
                "--region",
                "us",
            ])
            .ok();
    }
    let owner = join(&server, "acme", "owner@acme.com", "owner", false);
    join(&server, "globex", "owner@globex.com", "owner", false);

    // A platform admin sees every workspace, including member-less ones.
    let all = admin.run(&["--json", "workspace", "list"]).ok().json();
    let slugs = strings(&all, "slug");
    assert_eq!(slugs, ["acme", "globex", "platform"]);
    let table = admin.run(&["workspace", "list"]);
    assert!(table.ok().stdout.contains("SLUG"), "{}", table.stdout);

    // An owner sees only their own, and cannot create workspaces.
    let cli = Cli::with(&server.url, &owner, Some("acme"));
    let mine = cli.run(&["--json", "workspace", "list"]).ok().json();
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!(mine[0]["slug"], "acme");
    assert_eq!(mine[0]["role"], "owner");
    cli.run(&[
        "workspace",
        "create",
        "--name",
        "Mine",
        "--slug",
        "mine",
        "--region",
        "us",
    ])
    .fails_with(4, "not a platform admin");

    // An owner exports their own workspace, and gets 403 for a peer's.
    cli.run(&["workspace", "export"]).ok();
    let peer = cli.run(&["workspace", "export", "--slug", "globex"]);
    assert_eq!(peer.code, 4, "{}", peer.stderr);
    assert!(peer.stdout.is_empty());

    // Duplicate and malformed slugs are refused with exit 6 and nothing is created.
    admin
        .run(&[
            "workspace",
            "create",
            "--name",
            "Again",
            "--slug",
            "acme",
            "--region",
            "us",
        ])
        .fails_with(6, "already taken");
    let bad = admin.run(&[
        "workspace",
        "create",
        "--name",
        "Bad",
        "--slug",
        "Bad Slug!",
        "--region",
        "us",
    ]);
    assert_eq!(bad.code, 6, "{}", bad.stderr);
    let after = expect(&server.admin().get("/api/v1/workspaces"), 200)["workspaces"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(after, 3);
}

on_both_databases!(
    export_template_restore_round_trip,
    workspace_visibility_and_admin_only_creation
);
