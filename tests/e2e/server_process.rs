//! The `vigilo-server` binary itself: config file, `create-admin`,
//! `migrate`, serving, clean shutdown on SIGTERM, and logs free of secrets.

use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;
use vigilo_tests::process::{free_port, server_command, ServerProcess};
use vigilo_tests::{expect, on_both_databases, Api, Backend, TestDb};

fn server_binary_lifecycle(db: TestDb) {
    let dir = TempDir::new().unwrap();
    let port = free_port();
    let data_dir = dir.path().join("data");
    // On PostgreSQL, put a password in the URL (trust auth ignores it) to
    // check it never reaches the logs.
    let database_line = match db.backend {
        Backend::Sqlite => String::new(),
        Backend::Postgres => format!(
            "database_url = \"{}\"\n",
            db.url
                .replacen("postgres://postgres@", "postgres://postgres:s3cretpw@", 1)
        ),
    };
    let config = dir.path().join("vigilo.toml");
    std::fs::write(
        &config,
        format!(
            "bind = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n{database_line}log_format = \"json\"\n",
            data_dir.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| server_command(&config).args(args).output().unwrap();

    let migrated = run(&["migrate"]);
    assert!(
        migrated.status.success(),
        "{}",
        String::from_utf8_lossy(&migrated.stderr)
    );
    if db.backend == Backend::Sqlite {
        assert!(
            data_dir.join("vigilo.db").exists(),
            "the default database lives in data_dir"
        );
    }

    // create-admin prints the token and nothing else on stdout.
    let created = run(&["create-admin", "--email", "root@example.com"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8(created.stdout).unwrap();
    let token = stdout.trim_end_matches('\n').to_string();
    assert!(
        token.starts_with("vgl_") && token.len() == 68 && !token.contains('\n'),
        "{stdout:?}"
    );
    let second =
        String::from_utf8(run(&["create-admin", "--email", "root@example.com"]).stdout).unwrap();
    assert_ne!(second.trim(), token, "each call mints a fresh token");

    let log_path = dir.path().join("server.log");
    let mut server = ServerProcess::spawn(server_command(&config), port, &log_path);
    server.wait_healthy();
    let url = server.url().to_owned();

    // Both admin tokens work against the same user.
    let admin = Api::new(&url, Some(&token));
    let me = expect(&admin.get("/api/v1/me"), 200).clone();
    assert_eq!(me["user"]["platform_admin"], true);
    expect(&Api::new(&url, Some(second.trim())).get("/api/v1/me"), 200);
    admin.create(
        "/api/v1/workspaces",
        json!({"name": "Acme", "slug": "acme", "region": "us"}),
    );
    let invite = admin.create(
        "/api/v1/workspaces/acme/invites",
        json!({"email": "a@acme.com", "role": "viewer"}),
    );
    let invite_token = invite["accept_token"].as_str().unwrap().to_string();
    let accepted = Api::new(&url, None).create(
        &format!("/api/v1/invites/{invite_token}/accept"),
        json!({"name": "A"}),
    );
    let member_token = accepted["token"]["token"].as_str().unwrap().to_string();
    // The invite page the link opens is served (saying this one is used).
    let page = Api::new(&url, None).get(&format!("/invites/{invite_token}"));
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Join Acme"), "{}", page.text);
    assert!(page.text.contains("was already used"), "{}", page.text);
    assert!(
        page.text.contains("can no longer be accepted"),
        "{}",
        page.text
    );

    // SIGTERM shuts it down cleanly.
    assert!(server.terminate());
    let exit = server
        .exit_within(Duration::from_secs(15))
        .expect("server did not stop on SIGTERM");
    assert!(exit.success(), "exit status {exit:?}");

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("listening"), "{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    for line in log.lines() {
        serde_json::from_str::<serde_json::Value>(line)
            .unwrap_or_else(|e| panic!("log_format=json line is not JSON ({e}): {line}"));
    }
    for secret in [
        &token[4..],
        second.trim(),
        &invite_token[4..],
        &member_token[4..],
        "s3cretpw",
    ] {
        assert!(!log.contains(secret), "a secret reached the log");
    }
}

/// SIGTERM with clients holding connections open: a long poll (`wait=60`)
/// ends at once with 503 `shutting_down` (which the CLI and the web app's
/// live view treat as "reconnect"), and a request whose body never
/// arrives is dropped when the grace period ends, so the process exits
/// within it instead of waiting for its clients.
fn shutdown_is_bounded_by_the_grace_period(db: TestDb) {
    use std::io::Write;

    let Started {
        dir,
        config,
        port,
        token,
        mut server,
    } = start_server(&db, "shutdown_grace_secs = 2\n");
    let url = server.url().to_owned();
    let admin = Api::new(&url, Some(&token));
    admin.create(
        "/api/v1/workspaces",
        json!({"name": "Acme", "slug": "acme", "region": "us"}),
    );

    // Eight clients racing one keyed create: the losers answer as the
    // winner did, and nothing of it is an error in the log.
    std::thread::scope(|s| {
        for _ in 0..8 {
            let admin = admin.clone();
            s.spawn(move || {
                let r = admin.post_keyed(
                    "/api/v1/workspaces/acme/items",
                    "race",
                    &json!({"kind": "task", "title": "Once"}),
                );
                assert_eq!(r.status, 201, "{}", r.text);
            });
        }
    });
    // A follower waiting up to 60 s for the next event.
    let (polled_tx, polled) = std::sync::mpsc::channel();
    let follower = Api::new(&url, Some(&token));
    std::thread::spawn(move || {
        let _ = polled_tx.send(follower.get("/api/v1/workspaces/acme/audit?recent=0&wait=60"));
    });
    // A client that starts a create and never sends the rest of its body.
    let mut stalled = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stalled,
        "POST /api/v1/workspaces HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{{\"name\": \"Half"
    )
    .unwrap();
    stalled.flush().unwrap();
    std::thread::sleep(Duration::from_millis(700));

    assert!(server.terminate());
    let stopped_at = Instant::now();
    let poll = polled
        .recv_timeout(Duration::from_secs(20))
        .expect("the long poll was still held 20 s after SIGTERM");
    assert_eq!(poll.status, 503, "{}", poll.text);
    assert_eq!(poll.json["error"]["code"], "shutting_down", "{}", poll.text);
    // A second and a half of slack for a loaded machine tearing the process
    // down: without its bound, the server would wait for the stalled upload
    // (60 s) or the held delivery (forever).
    let exit = server
        .exit_within(Duration::from_millis(3500).saturating_sub(stopped_at.elapsed()))
        .expect("the server was still running after its 2 s grace period");
    assert!(exit.success(), "exit status {exit:?}");
    let log = server.log();
    assert!(
        log.contains("still open after the shutdown grace period"),
        "{log}"
    );
    // The long poll's 503 and the race's losers are expected: not errors.
    assert!(
        !log.lines().any(|l| l.contains("ERROR")),
        "an expected answer was logged as an error:\n{log}"
    );
    drop(stalled);

    // The half-sent create stored nothing.
    let again = ServerProcess::spawn(
        server_command(&config),
        port,
        &dir.path().join("server-2.log"),
    );
    again.wait_healthy();
    let listed = Api::new(again.url(), Some(&token)).get("/api/v1/workspaces");
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert!(!listed.text.contains("Half"), "{}", listed.text);
}

/// SIGTERM while a periodic task is delivering: the run is recorded as
/// interrupted with the reason, no delivery starts after the signal, the
/// process exits within its grace period without a panic, and once the
/// server is back the task runs again.
fn sigterm_during_a_periodic_task(db: TestDb) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    // The far end holds the first delivery unanswered, and answers the
    // rest.
    let far = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let far_url = format!("http://{}/digest", far.local_addr().unwrap());
    let arrived = Arc::new(AtomicUsize::new(0));
    {
        let arrived = arrived.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for mut stream in far.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut buf = [0u8; 65536];
                let _ = stream.read(&mut buf);
                if arrived.fetch_add(1, Ordering::SeqCst) == 0 {
                    held.push(stream);
                } else {
                    let _ = stream.write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    );
                }
            }
        });
    }
    let plugins: Vec<String> = vigilo_tests::plugins::installed(&["webhook", "cert_expiry_digest"])
        .iter()
        .map(|p| format!("{:?}", p.path().display().to_string()))
        .collect();
    let Started {
        dir,
        config,
        port,
        token,
        mut server,
    } = start_server(
        &db,
        &format!(
            "installed_plugins = [{}]\nwatch_plugins_dir = false\nscheduler_tick_ms = 100\n\
             shutdown_grace_secs = 3\nwebhook_allowed_hosts = [\"127.0.0.1\"]\n\
             [task_settings.cert_expiry_digest]\nwithin_days = 30\nschedule = {{ every_seconds = 2 }}\n",
            plugins.join(", ")
        ),
    );
    let admin = Api::new(server.url(), Some(&token));
    admin.create(
        "/api/v1/workspaces",
        json!({"name": "Ops", "slug": "ops", "region": "us"}),
    );
    let (pem, _) = crate::certificates::certificate("soon.example.com", -30, 5);
    admin.create("/api/v1/workspaces/ops/certificates", json!({"pem": pem}));
    admin.create(
        "/api/v1/workspaces/ops/integrations",
        json!({"name": "hook", "adapter": "webhook",
               "config": {"url": far_url, "secret": "whsec-0123456789abcdef"}}),
    );
    let waiting = Instant::now();
    while arrived.load(Ordering::SeqCst) == 0 {
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "the digest never reached the far end"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    assert!(server.terminate());
    let stopped_at = Instant::now();
    let exit = server
        .exit_within(Duration::from_millis(4500).saturating_sub(stopped_at.elapsed()))
        .expect("the server was still running after its 3 s grace period");
    assert!(exit.success(), "exit status {exit:?}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        arrived.load(Ordering::SeqCst),
        1,
        "a delivery started after the signal"
    );
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!log.lines().any(|l| l.contains("ERROR")), "{log}");
    let runs = db
        .rows("SELECT outcome, error FROM task_runs WHERE task = 'cert_expiry_digest' ORDER BY id");
    let interrupted = runs
        .iter()
        .find(|r| r[0].as_deref() == Some("interrupted"))
        .unwrap_or_else(|| panic!("no run was recorded as interrupted: {runs:?}"));
    assert!(
        interrupted[1]
            .as_deref()
            .is_some_and(|e| e.contains("server was stopped")),
        "{runs:?}"
    );
    assert!(
        runs.iter().all(|r| r[0].as_deref() != Some("running")),
        "a run was left running: {runs:?}"
    );

    // Back up, the task runs again and delivers.
    let again = ServerProcess::spawn(
        server_command(&config),
        port,
        &dir.path().join("server-2.log"),
    );
    again.wait_healthy();
    let waiting = Instant::now();
    loop {
        let ok = db.number(
            "SELECT COUNT(*) FROM task_runs WHERE task = 'cert_expiry_digest' AND outcome = 'ok'",
        );
        if ok > 0 {
            break;
        }
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "the task did not run again after the restart"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(arrived.load(Ordering::SeqCst) >= 2);
}

on_both_databases!(
    server_binary_lifecycle,
    shutdown_is_bounded_by_the_grace_period,
    held_uploads_give_their_memory_back,
    sigterm_during_a_periodic_task
);

/// A `vigilo-server` process on `db` with `settings` added to its config
/// file: its directory (config, logs), port, a platform admin's token.
struct Started {
    dir: TempDir,
    config: std::path::PathBuf,
    port: u16,
    token: String,
    server: ServerProcess,
}

fn start_server(db: &TestDb, settings: &str) -> Started {
    let dir = TempDir::new().unwrap();
    let (config, port) =
        vigilo_tests::process::config_file(dir.path(), "vigilo", &db.url, settings);
    let token = vigilo_tests::process::create_admin(&config, "root@example.com");
    let server = ServerProcess::spawn(
        server_command(&config),
        port,
        &dir.path().join("server.log"),
    );
    server.wait_healthy();
    Started {
        dir,
        config,
        port,
        token,
        server,
    }
}

/// The server's resident memory, in MiB.
fn rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kib / 1024
}

/// Uploads that never finish hold no memory before their sender is
/// known, and the memory held by uploads in progress is given back once
/// they close.
fn held_uploads_give_their_memory_back(db: TestDb) {
    use std::io::Write;

    let Started {
        port,
        token,
        mut server,
        ..
    } = start_server(&db, "");
    let pid = server.child().id();
    let admin = Api::new(server.url(), Some(&token));
    admin.create(
        "/api/v1/workspaces",
        json!({"name": "Acme", "slug": "acme", "region": "us"}),
    );
    for i in 0..50 {
        expect(
            &admin.post(
                "/api/v1/workspaces/acme/items",
                json!({"kind": "task", "title": format!("warm {i}")}),
            ),
            201,
        );
    }
    let baseline = rss_mib(pid);

    // 128 uploads of 16 MiB with a token that is not one: each is refused
    // before its body is read.
    let chunk = vec![b'x'; 64 * 1024];
    let forged: Vec<std::net::TcpStream> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..128)
            .map(|i| {
                let chunk = &chunk;
                s.spawn(move || {
                    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
                    let _ = write!(
                        stream,
                        "POST /api/v1/workspaces/x/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n\
                         Idempotency-Key: k{i}\r\nContent-Type: application/json\r\nContent-Length: 16777216\r\n\r\n"
                    );
                    for _ in 0..(16 * 1024 / 64 - 1) {
                        if stream.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    stream
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let while_forged = rss_mib(pid);
    drop(forged);
    assert!(
        while_forged <= baseline + 48,
        "128 unauthenticated uploads took the server from {baseline} MiB to {while_forged} MiB"
    );

    // 64 authenticated uploads of nearly 2 MiB, held before their last
    // bytes: their bodies are in memory while they are in progress...
    let held: Vec<std::net::TcpStream> = (0..64)
        .map(|i| {
            let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            write!(
                stream,
                "POST /api/v1/workspaces/acme/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                 Idempotency-Key: held-{i}\r\nContent-Type: application/json\r\nContent-Length: 2000000\r\n\r\n"
            )
            .unwrap();
            for _ in 0..29 {
                stream.write_all(&chunk).unwrap();
            }
            stream
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let while_held = rss_mib(pid);
    // ...and given back once they close.
    drop(held);
    let closed_at = Instant::now();
    let mut after = rss_mib(pid);
    // Idle meanwhile: nothing else prompts the allocator to give back.
    while after > baseline + 32 && closed_at.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(250));
        after = rss_mib(pid);
    }
    eprintln!(
        "resident memory: {baseline} MiB at rest, {while_forged} MiB with 128 forged uploads, \
         {while_held} MiB with 64 uploads held, {after} MiB after they closed"
    );
    assert!(
        after <= baseline + 32,
        "memory stayed at {after} MiB after held uploads closed (at rest: {baseline} MiB, held: {while_held} MiB)"
    );
}
