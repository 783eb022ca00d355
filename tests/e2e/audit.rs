//! The audit log: a tampering suite that edits the database directly, the
//! local witness, append-only guards, `audit tail` following another
//! client's changes, and concurrent writers (on PostgreSQL, two server
//! processes) never forking a chain.

use std::io::{BufRead, BufReader};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;
use vigilo_host::audit::HashInput;
use vigilo_tests::process::replica_of;
use vigilo_tests::{expect, on_both_databases, Api, Backend, Cli, TestDb, TestServer};

use crate::{audit_count, create_workspace, join};

/// A workspace whose chain has exactly `n` events (the create, then settings),
/// with checkpoints after the events listed in `checkpoint_after`.
fn fill(server: &TestServer, slug: &str, n: usize, checkpoint_after: &[usize]) -> i64 {
    let admin = server.admin();
    create_workspace(&admin, slug);
    for i in 2..=n {
        if checkpoint_after.contains(&(i - 1)) {
            admin.create(
                &format!("/api/v1/workspaces/{slug}/audit/checkpoints"),
                json!({}),
            );
        }
        expect(
            &admin.put(
                &format!("/api/v1/workspaces/{slug}/settings/k{i}"),
                json!({"value": i}),
            ),
            200,
        );
    }
    if checkpoint_after.contains(&n) {
        admin.create(
            &format!("/api/v1/workspaces/{slug}/audit/checkpoints"),
            json!({}),
        );
    }
    server
        .db
        .number(&format!("SELECT id FROM workspaces WHERE slug = '{slug}'"))
}

/// An event row: (seq, time, workspace_id, user, token, actor, action, target, details, prev_hash, hash).
fn events(db: &TestDb, chain: i64) -> Vec<Vec<Option<String>>> {
    db.rows(&format!(
        "SELECT seq, time, workspace_id, actor_user_id, actor_token_id, actor, action, target, details, prev_hash, hash
         FROM audit_events WHERE chain_id = {chain} ORDER BY seq"
    ))
}

fn hash_of(chain: i64, row: &[Option<String>], details: &str, prev: &str) -> String {
    let int = |i: usize| row[i].as_deref().map(|v| v.parse::<i64>().unwrap());
    HashInput {
        chain_id: chain,
        time: row[1].as_deref().unwrap(),
        workspace_id: int(2),
        actor_user_id: int(3),
        actor_token_id: int(4),
        actor: row[5].as_deref().unwrap(),
        action: row[6].as_deref().unwrap(),
        target: row[7].as_deref().unwrap(),
        details,
        prev_hash: prev,
    }
    .hash()
}

fn sql_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn breaks(report: &Value) -> Vec<(i64, String)> {
    report["breaks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["seq"].as_i64().unwrap(),
                b["class"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn verify(server: &TestServer, slug: &str, full: bool) -> Value {
    expect(
        &server.admin().get(&format!(
            "/api/v1/workspaces/{slug}/audit/verify?full={full}"
        )),
        200,
    )
    .clone()
}

fn tampering_is_classified(db: TestDb) {
    let server = TestServer::start(db);
    let db = &server.db;
    fill(&server, "clean", 10, &[10]);
    let modified = fill(&server, "modified", 10, &[]);
    let deleted = fill(&server, "deleted", 10, &[]);
    let inserted = fill(&server, "inserted", 10, &[]);
    let swapped = fill(&server, "swapped", 10, &[]);
    let truncated = fill(&server, "truncated", 10, &[10]);
    let rewritten = fill(&server, "rewritten", 10, &[5, 10]);

    // Untampered chains verify clean, fully and incrementally.
    for slug in ["clean", "modified", "rewritten"] {
        for full in [true, false] {
            let r = verify(&server, slug, full);
            assert_eq!(r["intact"], true, "{slug}: {r}");
            assert_eq!(r["head_seq"], 10);
        }
    }
    assert_eq!(verify(&server, "clean", false)["mode"], "incremental");

    // The guards refuse edits until an attacker removes them.
    let refused = std::panic::catch_unwind(|| {
        db.execute(&format!(
            "DELETE FROM audit_events WHERE chain_id = {deleted}"
        ))
    });
    assert!(refused.is_err(), "the audit log must refuse DELETE");
    db.allow_audit_tampering();

    // 1. Change one event's details.
    db.execute(&format!(
        "UPDATE audit_events SET details = '{{\"key\":\"k5\",\"new\":666}}' WHERE chain_id = {modified} AND seq = 5"
    ));
    // 2. Delete an event in the middle.
    db.execute(&format!(
        "DELETE FROM audit_events WHERE chain_id = {deleted} AND seq = 5"
    ));
    // 3. Insert a forged event at 5, with a valid hash linked to 4, renumbering the rest.
    let rows = events(db, inserted);
    db.execute(&format!(
        "UPDATE audit_events SET seq = seq + 100000 WHERE chain_id = {inserted} AND seq >= 5"
    ));
    db.execute(&format!(
        "UPDATE audit_events SET seq = seq - 99999 WHERE chain_id = {inserted} AND seq >= 100000"
    ));
    let mut forged = rows[3].clone();
    forged[6] = Some("member.remove".into());
    forged[7] = Some("ceo@acme.com".into());
    let prev = rows[3][10].clone().unwrap();
    let hash = hash_of(inserted, &forged, "{}", &prev);
    db.execute(&format!(
        "INSERT INTO audit_events (chain_id, seq, time, workspace_id, actor_user_id, actor_token_id, actor, action, target, details, prev_hash, hash)
         VALUES ({inserted}, 5, {}, {inserted}, NULL, NULL, 'system', 'member.remove', 'ceo@acme.com', '{{}}', '{prev}', '{hash}')",
        sql_text(forged[1].as_deref().unwrap())
    ));
    // 4. Swap two events.
    db.execute(&format!(
        "UPDATE audit_events SET seq = -5 WHERE chain_id = {swapped} AND seq = 5"
    ));
    db.execute(&format!(
        "UPDATE audit_events SET seq = 5 WHERE chain_id = {swapped} AND seq = 6"
    ));
    db.execute(&format!(
        "UPDATE audit_events SET seq = 6 WHERE chain_id = {swapped} AND seq = -5"
    ));
    // 5. Delete the last events.
    db.execute(&format!(
        "DELETE FROM audit_events WHERE chain_id = {truncated} AND seq >= 8"
    ));
    // 6. Rewrite the chain from seq 6 with every hash recomputed and relinked.
    let rows = events(db, rewritten);
    let mut prev = rows[4][10].clone().unwrap();
    for row in &rows[5..] {
        let details = if row[0].as_deref() == Some("6") {
            "{\"key\":\"k6\",\"new\":\"forged\",\"old\":null}".to_string()
        } else {
            row[8].clone().unwrap()
        };
        let hash = hash_of(rewritten, row, &details, &prev);
        db.execute(&format!(
            "UPDATE audit_events SET details = {}, prev_hash = '{prev}', hash = '{hash}' WHERE chain_id = {rewritten} AND seq = {}",
            sql_text(&details),
            row[0].as_deref().unwrap()
        ));
        prev = hash;
    }
    db.execute(&format!(
        "UPDATE audit_chains SET head_hash = '{prev}' WHERE chain_id = {rewritten}"
    ));

    let expected: [(&str, (i64, &str)); 6] = [
        ("modified", (5, "modified")),
        ("deleted", (5, "deleted")),
        ("inserted", (5, "inserted")),
        ("swapped", (5, "reordered")),
        ("truncated", (8, "truncated")),
        ("rewritten", (6, "rewritten")),
    ];
    for (slug, (seq, class)) in expected {
        let report = verify(&server, slug, true);
        assert_eq!(report["intact"], false, "{slug}: {report}");
        assert_eq!(
            breaks(&report),
            vec![(seq, class.to_string())],
            "{slug}: {report}"
        );
    }
    // Incremental verification still sees what lies after the last good checkpoint.
    assert_eq!(
        breaks(&verify(&server, "truncated", false)),
        vec![(8, "truncated".to_string())]
    );
    assert_eq!(
        breaks(&verify(&server, "rewritten", false)),
        vec![(6, "rewritten".to_string())]
    );
    assert_eq!(verify(&server, "clean", true)["intact"], true);

    // The CLI, as a cron job would run it.
    let cli = Cli::with(&server.url, &server.admin_token, Some("clean"));
    let ok = cli.run(&["audit", "verify"]);
    assert_eq!(ok.code, 0, "{}{}", ok.stdout, ok.stderr);
    assert!(ok.stdout.contains("intact"));
    let all = cli.run(&["--json", "audit", "verify", "--all", "--full"]);
    assert_eq!(all.code, 9, "{}", all.stderr);
    let report = all.json();
    assert_eq!(report["intact"], false);
    let broken: Vec<&str> = report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["intact"] == false)
        .map(|c| c["workspace"].as_str().unwrap())
        .collect();
    assert_eq!(
        broken,
        [
            "modified",
            "deleted",
            "inserted",
            "swapped",
            "truncated",
            "rewritten"
        ]
    );
}

fn witness_catches_a_consistent_rewrite(db: TestDb) {
    let server = TestServer::start(db);
    let chain = fill(&server, "acme", 6, &[]);
    let cli = Cli::with(&server.url, &server.admin_token, Some("acme"));
    cli.run(&["audit", "verify"]).ok();
    // Rewrite everything from seq 1 consistently: no checkpoint exists to
    // catch it, but this machine remembers the head it verified.
    server.db.allow_audit_tampering();
    let rows = events(&server.db, chain);
    let mut prev = vigilo_host::audit::GENESIS_HASH.to_string();
    for row in &rows {
        let details = row[8]
            .clone()
            .unwrap()
            .replace("\"new\":", "\"new\":0,\"was\":");
        let hash = hash_of(chain, row, &details, &prev);
        server.db.execute(&format!(
            "UPDATE audit_events SET details = {}, prev_hash = '{prev}', hash = '{hash}' WHERE chain_id = {chain} AND seq = {}",
            sql_text(&details),
            row[0].as_deref().unwrap()
        ));
        prev = hash;
    }
    let server_side = verify(&server, "acme", true);
    assert_eq!(
        server_side["intact"], true,
        "consistent rewrite is invisible without a checkpoint"
    );
    let out = cli.run(&["--json", "audit", "verify"]);
    assert_eq!(out.code, 9, "{}", out.stdout);
    let chain = &out.json()["chains"][0];
    assert_eq!(chain["breaks"][0]["class"], "rewritten");
    assert_eq!(chain["breaks"][0]["seq"], 6);
}

fn checkpoints_are_published_and_verifiable(db: TestDb) {
    let server = TestServer::start(db);
    fill(&server, "acme", 3, &[3]);
    let key = expect(&server.anonymous().get("/api/v1/audit/public-key"), 200).clone();
    assert_eq!(key["algorithm"], "ed25519");
    let export = expect(
        &server
            .admin()
            .get("/api/v1/workspaces/acme/audit/checkpoints"),
        200,
    )
    .clone();
    assert_eq!(export["public_key"], key["public_key"]);
    let cp = &export["checkpoints"][0];
    assert_eq!(cp["seq"], 3);
    // An auditor checks the signature with nothing but the export.
    let public = hex_bytes(export["public_key"].as_str().unwrap());
    let public = ed25519_dalek::VerifyingKey::from_bytes(&public.try_into().unwrap()).unwrap();
    let message = format!(
        "vigilo-checkpoint-v1\n{}\n{}\n{}\n{}",
        cp["chain_id"],
        cp["seq"],
        cp["hash"].as_str().unwrap(),
        cp["signed_at"].as_str().unwrap()
    );
    let sig: [u8; 64] = hex_bytes(cp["signature"].as_str().unwrap())
        .try_into()
        .unwrap();
    use ed25519_dalek::Verifier;
    public
        .verify(
            message.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .expect("signature verifies");
    // The event at the checkpoint carries that hash.
    let events = expect(
        &server
            .admin()
            .get("/api/v1/workspaces/acme/audit?after=2&limit=1"),
        200,
    )
    .clone();
    assert_eq!(events["events"][0]["hash"], cp["hash"]);
    // A forged checkpoint row is reported.
    server.db.execute(&format!(
        "INSERT INTO audit_checkpoints (chain_id, seq, hash, signed_at, key_id, signature)
         VALUES ({}, 2, '{}', '2026-01-01T00:00:00.000000Z', 'x', '{}')",
        cp["chain_id"],
        "0".repeat(64),
        "0".repeat(128)
    ));
    let r = verify(&server, "acme", true);
    assert_eq!(breaks(&r), vec![(2, "rewritten".to_string())], "{r}");
}

fn hex_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn tail_follows_another_clients_changes(db: TestDb) {
    let server = TestServer::start(db);
    create_workspace(&server.admin(), "acme");
    let owner = join(&server, "acme", "owner@acme.com", "owner", false);
    let cli = Cli::with(&server.url, &owner, Some("acme"));
    // Earlier events are printed by --no-follow, with a prefix filter.
    let past = cli.run(&[
        "--json",
        "audit",
        "tail",
        "--no-follow",
        "--filter",
        "action=member.*",
    ]);
    let lines: Vec<Value> = past
        .ok()
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let actions: Vec<&str> = lines
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["member.invite", "member.join"]);

    let mut child = cli.spawn(&[
        "--json",
        "audit",
        "tail",
        "--recent",
        "0",
        "--filter",
        "action=member.invite",
    ]);
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    let api = server.api(&owner);
    expect(
        &api.put(
            "/api/v1/workspaces/acme/settings/noise",
            json!({"value": 1}),
        ),
        200,
    );
    api.create(
        "/api/v1/workspaces/acme/invites",
        json!({"email": "watched@acme.com", "role": "viewer"}),
    );
    expect(
        &api.put(
            "/api/v1/workspaces/acme/settings/noise",
            json!({"value": 2}),
        ),
        200,
    );
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("tail printed nothing");
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["action"], "member.invite");
    assert_eq!(event["target"], "watched@acme.com");
    assert_eq!(event["actor"]["label"], "owner@acme.com");
    assert!(
        rx.recv_timeout(Duration::from_millis(1500)).is_err(),
        "tail printed an event the filter excludes"
    );
    child.kill().unwrap();
    let _ = child.wait();

    // --all needs a platform admin.
    cli.run(&["audit", "tail", "--all", "--no-follow"])
        .fails_with(4, "platform admin");
    let admin = Cli::with(&server.url, &server.admin_token, None);
    let all = admin.run(&[
        "--json",
        "audit",
        "tail",
        "--all",
        "--no-follow",
        "--recent",
        "100",
        "--filter",
        "action=token.*",
    ]);
    assert!(
        all.ok().stdout.lines().all(|l| l.contains("\"token.")),
        "{}",
        all.stdout
    );
}

/// 8 writers × 1,000 events through the API; on PostgreSQL split between
/// two server processes sharing the database and the signing key.
fn concurrent_writers_never_fork_a_chain(db: TestDb) {
    let backend = db.backend;
    let server = TestServer::start(db);
    create_workspace(&server.admin(), "busy");
    let start_count = audit_count(&server);

    let mut urls = vec![server.url.clone()];
    let mut second = None;
    let dir = TempDir::new().unwrap();
    if backend == Backend::Postgres {
        let process = replica_of(&server, dir.path());
        urls.push(process.url().to_owned());
        second = Some(process);
    }
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let api = Api::new(&urls[w % urls.len()], Some(&server.admin_token));
            std::thread::spawn(move || {
                for i in 0..1000 {
                    let r = api.put(
                        &format!("/api/v1/workspaces/busy/settings/writer{w}"),
                        json!({"value": i}),
                    );
                    assert_eq!(r.status, 200, "{}", r.text);
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    drop(second);
    assert_eq!(audit_count(&server) - start_count, 8000);
    let report = verify(&server, "busy", true);
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["head_seq"], 8001);
    let all = expect(&server.admin().get("/api/v1/audit/verify?full=true"), 200).clone();
    assert_eq!(all["intact"], true);
}

/// Another process appending to a chain the server has appended to before
/// (here `create-admin` on the same database, to the installation chain)
/// neither fails the server's next append nor forks the chain.
fn appends_after_another_process_wrote_the_chain(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "first");
    vigilo_tests::block_on(vigilo_host::create_admin(
        &server.config,
        "second-admin@example.com",
        None,
    ))
    .unwrap();
    create_workspace(&admin, "second");
    create_workspace(&admin, "third");
    let all = expect(&admin.get("/api/v1/audit/verify?full=true"), 200).clone();
    assert_eq!(all["intact"], true, "{all:#}");
    let actions: Vec<String> = server
        .db
        .column("SELECT action FROM audit_events WHERE chain_id = 0 ORDER BY seq")
        .into_iter()
        .map(Option::unwrap)
        .collect();
    assert_eq!(
        actions,
        [
            "admin.create",
            "workspace.create",
            "admin.create",
            "workspace.create",
            "workspace.create"
        ]
    );
}

on_both_databases!(
    appends_after_another_process_wrote_the_chain,
    tampering_is_classified,
    witness_catches_a_consistent_rewrite,
    checkpoints_are_published_and_verifiable,
    tail_follows_another_clients_changes,
    concurrent_writers_never_fork_a_chain
);
