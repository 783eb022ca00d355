//! `Idempotency-Key` on creates and runs: a retried request answers with
//! the first response and nothing is created or run twice — across
//! concurrent retries, per token, after a restart, and after a `kill -9` in
//! the middle of a burst of creates or in the middle of a run.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{json, Value};
use tempfile::TempDir;
use vigilo_tests::process::{config_file, create_admin, server_command, ServerProcess};
use vigilo_tests::{expect, on_both_databases, Api, TestDb, TestServer};

use crate::{create_workspace, join};

const ITEMS: &str = "/api/v1/workspaces/ops/items";

fn retries_answer_with_the_first_response(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let engineer = server.api(&join(&server, "ops", "eng@ops.com", "engineer", false));
    let count = || server.db.number("SELECT COUNT(*) FROM work_items");
    let body = json!({"kind": "task", "title": "Rotate keys"});

    let first = engineer.post_keyed(ITEMS, "k-1", &body);
    let created = expect(&first, 201).clone();
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = engineer.post_keyed(ITEMS, "k-1", &body);
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(
        again.json, created,
        "the retry answers with the first response"
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(count(), 1);

    // The same key for a different request is refused and changes nothing.
    let other = engineer.post_keyed(ITEMS, "k-1", &json!({"kind": "task", "title": "Other"}));
    assert_eq!(other.status, 422, "{}", other.text);
    assert_eq!(other.json["error"]["field"], "Idempotency-Key");
    assert_eq!(count(), 1);

    // Keys belong to the token: another member's same key is a new request.
    let second = server.api(&join(&server, "ops", "eng2@ops.com", "engineer", false));
    let theirs = expect(&second.post_keyed(ITEMS, "k-1", &body), 201).clone();
    assert_ne!(theirs["id"], created["id"]);
    assert_eq!(count(), 2);

    // A refused request leaves no key behind: fixed, it runs.
    let bad = engineer.post_keyed(ITEMS, "k-2", &json!({"kind": "task"}));
    assert_eq!(bad.status, 422, "{}", bad.text);
    assert_eq!(count(), 2);
    let fixed = engineer.post_keyed(ITEMS, "k-2", &json!({"kind": "task", "title": "Fixed"}));
    expect(&fixed, 201);
    assert_eq!(count(), 3);

    // A malformed key is named.
    let spaced = engineer.post_keyed(ITEMS, "has space", &body);
    assert_eq!(spaced.status, 422, "{}", spaced.text);
    assert_eq!(spaced.json["error"]["field"], "Idempotency-Key");

    // A new token's secret is in its create response: a retry hands back the
    // same secret, and the database keeps it sealed, never in the clear.
    let token = admin.post_keyed("/api/v1/tokens", "t-1", &json!({"name": "ci"}));
    let made = expect(&token, 201).clone();
    let retried = admin.post_keyed("/api/v1/tokens", "t-1", &json!({"name": "ci"}));
    assert_eq!(retried.json["token"], made["token"], "{}", retried.text);
    let secret = made["token"].as_str().unwrap();
    let kept = server.db.column("SELECT response FROM idempotency_keys");
    assert!(!kept.is_empty());
    assert!(
        kept.iter().flatten().all(|r| !r.contains(&secret[4..])),
        "a kept response holds a token in the clear"
    );

    // Eight clients sending one keyed create at once make one item.
    let before = count();
    let answers: Vec<Value> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let engineer = engineer.clone();
                s.spawn(move || {
                    let r = engineer.post_keyed(
                        ITEMS,
                        "burst",
                        &json!({"kind": "task", "title": "Once"}),
                    );
                    assert_eq!(r.status, 201, "{}", r.text);
                    r.json
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        count(),
        before + 1,
        "concurrent retries created more than one item"
    );
    assert!(answers.iter().all(|a| a["id"] == answers[0]["id"]));
}

/// A burst of keyed creates, `kill -9` in the middle of it, a restart, and
/// every request sent again with its key: each one exists exactly once, and
/// a retry either gets the first response or is told it was carried out.
fn retried_creates_never_duplicate_across_a_crash(db: TestDb) {
    let dir = TempDir::new().unwrap();
    let (config, port) = config_file(dir.path(), "vigilo", &db.url, "");
    let token = create_admin(&config, "root@example.com");
    let mut server = ServerProcess::spawn(server_command(&config), port, &dir.path().join("1.log"));
    server.wait_healthy();
    let url = server.url().to_owned();
    let admin = Api::new(&url, Some(&token));
    create_workspace(&admin, "ops");

    const N: usize = 200;
    let title = |i: usize| format!("item {i}");
    let send = |api: &Api, i: usize| {
        let body = json!({"kind": "task", "title": title(i)});
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            api.post_keyed(ITEMS, &format!("key-{i}"), &body)
        }));
        result.ok().map(|r| r.status)
    };
    // Four clients each send their share; the server is killed mid-way.
    std::thread::scope(|s| {
        let senders: Vec<_> = (0..4)
            .map(|t| {
                let (url, token, send) = (&url, &token, &send);
                s.spawn(move || {
                    let api = Api::new(url, Some(token));
                    for i in (t * N / 4)..((t + 1) * N / 4) {
                        if send(&api, i).is_none() {
                            break; // the server is gone
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(100));
        let _ = server.child().kill();
        for sender in senders {
            let _ = sender.join();
        }
    });
    let _ = server.wait();
    let at_kill = db.number("SELECT COUNT(*) FROM work_items");
    assert!(
        at_kill > 0 && at_kill < N as i64,
        "the kill was to land in the middle of the burst ({at_kill} of {N} created)"
    );

    let again = ServerProcess::spawn(server_command(&config), port, &dir.path().join("2.log"));
    again.wait_healthy();
    let api = Api::new(again.url(), Some(&token));
    // Every create that committed kept its answer in the same transaction:
    // its retry gets that answer (never "carried out, answer lost").
    for i in 0..N {
        let body = json!({"kind": "task", "title": title(i)});
        let retried = api.post_keyed(ITEMS, &format!("key-{i}"), &body);
        assert_eq!(
            retried.status, 201,
            "retry of request {i}: {}",
            retried.text
        );
        assert_eq!(retried.json["title"], title(i), "{}", retried.text);
    }
    let listed = expect(&api.get(&format!("{ITEMS}?limit=500")), 200).clone();
    let titles: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["title"].as_str().unwrap())
        .collect();
    let distinct: BTreeSet<&str> = titles.iter().copied().collect();
    assert_eq!(
        titles.len(),
        distinct.len(),
        "a retried create was duplicated"
    );
    assert_eq!(distinct.len(), N, "every request exists once");
}

/// Eight clients sending the same keyed playbook run, dry run or task run
/// at once: it runs once, and every client gets its answer.
fn keyed_runs_run_once(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let owner = server.api(&join(&server, "ops", "owner@ops.com", "owner", false));
    expect(
        &owner.post(
            "/api/v1/workspaces/ops/playbooks",
            json!({"name": "ticket", "steps": [{"type": "create_task", "title": "From a run"}]}),
        ),
        201,
    );
    let all_at_once = |api: &Api, path: &str, key: &str| -> Vec<Value> {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(move || {
                        let r = api.post_keyed(path, key, &json!({}));
                        assert_eq!(r.status, 200, "{}", r.text);
                        r.json
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    };
    let same_run = |answers: &[Value]| {
        assert!(
            answers.iter().all(|a| a["id"] == answers[0]["id"]),
            "{answers:?}"
        );
    };

    let runs = all_at_once(
        &owner,
        "/api/v1/workspaces/ops/playbooks/ticket/run",
        "run-1",
    );
    same_run(&runs);
    assert_eq!(runs[0]["status"], "succeeded", "{}", runs[0]);
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM playbook_runs WHERE dry_run = 0"),
        1,
        "eight keyed runs ran more than once"
    );
    assert_eq!(server.db.number("SELECT COUNT(*) FROM work_items"), 1);

    let dry = all_at_once(
        &owner,
        "/api/v1/workspaces/ops/playbooks/ticket/dry-run",
        "dry-1",
    );
    same_run(&dry);
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM playbook_runs WHERE dry_run = 1"),
        1
    );

    let tasks = all_at_once(
        &admin,
        "/api/v1/scheduler/tasks/records.prune/run",
        "task-1",
    );
    same_run(&tasks);
    assert_eq!(tasks[0]["outcome"], "ok", "{}", tasks[0]);
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM task_runs WHERE runner LIKE '%on demand%'"),
        1,
        "eight keyed task runs ran more than once"
    );
    // A new key runs again.
    let again = owner.post_keyed(
        "/api/v1/workspaces/ops/playbooks/ticket/run",
        "run-2",
        &json!({}),
    );
    assert_ne!(expect(&again, 200)["id"], runs[0]["id"]);
    assert_eq!(server.db.number("SELECT COUNT(*) FROM work_items"), 2);
}

/// A keyed run killed (`kill -9`) after its first step committed and while
/// its second waits on a slow webhook: sent again to the restarted server
/// with its key, it is not run again, and the client is told so at once.
fn keyed_run_killed_midway_never_runs_again(db: TestDb) {
    use std::io::Read;

    // A webhook receiver that never answers.
    let hold = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hold_url = format!("http://{}/hold", hold.local_addr().unwrap());
    let (called_tx, called) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in hold.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = stream.read(&mut buf);
            let _ = called_tx.send(());
            held.push(stream);
        }
    });
    let dir = TempDir::new().unwrap();
    let (config, port) = config_file(
        dir.path(),
        "vigilo",
        &db.url,
        "webhook_allowed_hosts = [\"127.0.0.1\"]\n",
    );
    let token = create_admin(&config, "root@example.com");
    let mut server = ServerProcess::spawn(server_command(&config), port, &dir.path().join("1.log"));
    server.wait_healthy();
    let admin = Api::new(server.url(), Some(&token));
    create_workspace(&admin, "ops");
    expect(
        &admin.post(
            "/api/v1/workspaces/ops/playbooks",
            json!({"name": "slow", "steps": [
                {"type": "create_task", "title": "Made once"},
                {"type": "webhook", "url": hold_url}
            ]}),
        ),
        201,
    );
    const RUN: &str = "/api/v1/workspaces/ops/playbooks/slow/run";
    let sender = {
        let admin = admin.clone();
        std::thread::spawn(move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                admin.post_keyed(RUN, "slow-1", &json!({}))
            }))
            .ok()
            .map(|r| r.status)
        })
    };
    called
        .recv_timeout(Duration::from_secs(30))
        .expect("the run reached its webhook step");
    let _ = server.child().kill();
    let _ = server.wait();
    assert_eq!(
        sender.join().unwrap(),
        None,
        "the run answered before the kill"
    );
    assert_eq!(db.number("SELECT COUNT(*) FROM playbook_runs"), 1);
    assert_eq!(db.number("SELECT COUNT(*) FROM work_items"), 1);

    let again = ServerProcess::spawn(server_command(&config), port, &dir.path().join("2.log"));
    again.wait_healthy();
    let admin = Api::new(again.url(), Some(&token));
    let retried = admin.post_keyed(RUN, "slow-1", &json!({}));
    assert_eq!(retried.status, 409, "{}", retried.text);
    assert!(
        retried.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("will not run again"),
        "{}",
        retried.text
    );
    assert_eq!(
        db.number("SELECT COUNT(*) FROM playbook_runs"),
        1,
        "the retry ran the playbook again"
    );
    assert_eq!(db.number("SELECT COUNT(*) FROM work_items"), 1);
}

/// A keyed run whose client goes away while a step waits on a webhook
/// runs to its end: the retry with its key answers with the finished run,
/// which ran once.
fn keyed_run_finishes_after_its_client_went_away(db: TestDb) {
    use std::io::{Read, Write};

    // A webhook receiver that answers once told to.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/hook", hook.local_addr().unwrap());
    let (called_tx, called) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for mut stream in hook.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = called_tx.send(());
            let _ = released.recv();
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    let server = TestServer::start_with(db, |config| {
        config.webhook_allowed_hosts = vec!["127.0.0.1".into()];
    });
    let admin = server.admin();
    create_workspace(&admin, "ops");
    expect(
        &admin.post(
            "/api/v1/workspaces/ops/playbooks",
            json!({"name": "slow", "steps": [
                {"type": "create_task", "title": "Before the hook"},
                {"type": "webhook", "url": hook_url},
                {"type": "create_task", "title": "After the hook"}
            ]}),
        ),
        201,
    );
    const RUN: &str = "/api/v1/workspaces/ops/playbooks/slow/run";

    // The client sends the run and hangs up while the webhook step waits.
    let address = server.url.trim_start_matches("http://").to_owned();
    let mut client = std::net::TcpStream::connect(&address).unwrap();
    write!(
        client,
        "POST {RUN} HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\n\
         idempotency-key: gone-1\r\ncontent-type: application/json\r\n\
         content-length: 2\r\n\r\n{{}}",
        server.admin_token
    )
    .unwrap();
    called
        .recv_timeout(Duration::from_secs(30))
        .expect("the run reached its webhook step");
    client.shutdown(std::net::Shutdown::Both).unwrap();
    drop(client);
    // The server notices the closed connection (it answers new requests in
    // the meantime), then the webhook answers.
    expect(&admin.get("/api/v1/workspaces/ops/playbooks"), 200);
    std::thread::sleep(Duration::from_millis(300));
    release.send(()).unwrap();

    let retried = admin.post_keyed(RUN, "gone-1", &json!({}));
    let run = expect(&retried, 200);
    assert_eq!(
        retried.header("idempotent-replayed"),
        Some("true"),
        "the retry ran again instead of answering as the first request: {}",
        retried.text
    );
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(server.db.number("SELECT COUNT(*) FROM playbook_runs"), 1);
    let titles: BTreeSet<String> = admin.get("/api/v1/workspaces/ops/items").json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        titles,
        BTreeSet::from(["Before the hook".to_owned(), "After the hook".to_owned()]),
        "the run stopped when its client went away"
    );
}

/// Keys recorded before keys were found by their hash still answer after
/// the upgrade: on SQLite, whose migration cannot compute the hash, the
/// server gives each such key its hash when it starts; on PostgreSQL the
/// migration computes the same hash the server does.
fn keys_recorded_before_the_hash_still_answer(db: TestDb) {
    let dir = TempDir::new().unwrap();
    let (config, port) = config_file(dir.path(), "vigilo", &db.url, "");
    let token = create_admin(&config, "root@example.com");
    let mut server = ServerProcess::spawn(server_command(&config), port, &dir.path().join("1.log"));
    server.wait_healthy();
    let admin = Api::new(server.url(), Some(&token));
    create_workspace(&admin, "ops");
    let body = json!({"kind": "task", "title": "Before the upgrade"});
    let first = expect(&admin.post_keyed(ITEMS, "old-1", &body), 201).clone();
    assert!(server.terminate(), "the server stops on SIGTERM");
    let _ = server.wait();

    match db.backend {
        vigilo_tests::Backend::Sqlite => {
            // As the migration leaves a key recorded before it.
            db.execute("UPDATE idempotency_keys SET key_hash = NULL");
        }
        vigilo_tests::Backend::Postgres => {
            let differ = db.number(
                "SELECT COUNT(*) FROM idempotency_keys WHERE key_hash <> ('x' || encode(substring(
                 sha256(convert_to(scope || E'\\n' || idem_key, 'UTF8')) FROM 1 FOR 8), 'hex'))::bit(64)::bigint",
            );
            assert_eq!(differ, 0, "the migration's hash is the server's");
        }
    }

    let again = ServerProcess::spawn(server_command(&config), port, &dir.path().join("2.log"));
    again.wait_healthy();
    let admin = Api::new(again.url(), Some(&token));
    let retried = admin.post_keyed(ITEMS, "old-1", &body);
    assert_eq!(retried.status, 201, "{}", retried.text);
    assert_eq!(
        retried.json, first,
        "the retry answers with the first response"
    );
    assert_eq!(retried.header("idempotent-replayed"), Some("true"));
    let other = admin.post_keyed(ITEMS, "old-1", &json!({"kind": "task", "title": "Other"}));
    assert_eq!(other.status, 422, "{}", other.text);
    assert_eq!(db.number("SELECT COUNT(*) FROM work_items"), 1);
    assert_eq!(
        db.number("SELECT COUNT(*) FROM idempotency_keys WHERE key_hash IS NULL"),
        0,
        "every key has its hash"
    );
}

on_both_databases!(
    keys_recorded_before_the_hash_still_answer,
    retries_answer_with_the_first_response,
    keyed_run_finishes_after_its_client_went_away,
    retried_creates_never_duplicate_across_a_crash,
    keyed_runs_run_once,
    keyed_run_killed_midway_never_runs_again
);
