//! What an `Idempotency-Key` costs: work-item creates over HTTP from 8
//! clients at once, without a key and with a fresh key each, against a real
//! `vigilo-server` process on loopback, on SQLite and (when
//! `VIGILO_TEST_POSTGRES_URL` is set) PostgreSQL. The two modes alternate
//! over several rounds, and each figure is the median round.
//!
//! Run with `cargo bench -p vigilo-tests --bench idempotency`. Set
//! `VIGILO_BENCH_SERVER` to another `vigilo-server` binary to measure that
//! one (an earlier version, say); it also makes the database, so its schema
//! is its own. The figures go into the README.
//!
//! `VIGILO_BENCH_ROUNDS` sets how many rounds of each mode (5 by default);
//! the cost is given both from the two medians and as the median of each
//! keyed round against the plain round before it.
//!
//! To profile one mode, set `VIGILO_BENCH_ONLY` to `keyed` or `plain`: the
//! benchmark then sends only that kind of create, in 60 rounds on SQLite,
//! printing each round's rate, while a profiler watches the server.

use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;
use vigilo_tests::process::{config_file, create_admin, server_command, ServerProcess};
use vigilo_tests::{Api, Backend, TestDb};

const CLIENTS: usize = 8;
const PER_CLIENT: usize = 250;
const ROUNDS: usize = 5;

/// One round: creates per second and the 99th percentile latency.
fn round(api: &Api, keyed: bool, round: usize) -> (f64, Duration) {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|c| {
                s.spawn(move || {
                    let mut times = Vec::with_capacity(PER_CLIENT);
                    for i in 0..PER_CLIENT {
                        let body = json!({"kind": "task", "title": format!("r{round} c{c} i{i}")});
                        let t = Instant::now();
                        let r = if keyed {
                            api.post_keyed(
                                "/api/v1/workspaces/ops/items",
                                &format!("r{round}-{keyed}-{c}-{i}"),
                                &body,
                            )
                        } else {
                            api.post("/api/v1/workspaces/ops/items", body)
                        };
                        assert_eq!(r.status, 201, "{}", r.text);
                        times.push(t.elapsed());
                    }
                    times
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed();
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    ((CLIENTS * PER_CLIENT) as f64 / elapsed.as_secs_f64(), p99)
}

fn median<T: PartialOrd + Copy>(mut values: Vec<T>) -> T {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    values[values.len() / 2]
}

fn bench(db: TestDb) {
    let dir = TempDir::new().unwrap();
    let (config, port) = config_file(dir.path(), "vigilo", &db.url, "");
    let mut command = server_command(&config);
    let token = match std::env::var_os("VIGILO_BENCH_SERVER") {
        Some(binary) => {
            // That binary makes the database too: its schema may differ.
            command = std::process::Command::new(&binary);
            command.arg("--config").arg(&config);
            let made = std::process::Command::new(&binary)
                .arg("--config")
                .arg(&config)
                .args(["create-admin", "--email", "root@example.com"])
                .output()
                .unwrap();
            assert!(
                made.status.success(),
                "{}",
                String::from_utf8_lossy(&made.stderr)
            );
            String::from_utf8(made.stdout).unwrap().trim().to_owned()
        }
        None => create_admin(&config, "root@example.com"),
    };
    let server = ServerProcess::spawn(command, port, &dir.path().join("server.log"));
    server.wait_healthy();
    let api = Api::new(server.url(), Some(&token));
    api.create(
        "/api/v1/workspaces",
        json!({"name": "Ops", "slug": "ops", "region": "us"}),
    );
    if let Ok(only) = std::env::var("VIGILO_BENCH_ONLY") {
        let keyed = only == "keyed";
        for r in 0..60 {
            let (rate, _) = round(&api, keyed, 200 + r);
            eprintln!("{only}: {rate:.0} creates/s");
        }
        return;
    }
    // Warm up both paths.
    round(&api, false, 100);
    round(&api, true, 100);
    let rounds = std::env::var("VIGILO_BENCH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(ROUNDS);
    let (mut plain, mut keyed) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        plain.push(round(&api, false, r));
        keyed.push(round(&api, true, r));
    }
    let rate = |runs: &[(f64, Duration)]| median(runs.iter().map(|r| r.0).collect());
    let p99 = |runs: &[(f64, Duration)]| median(runs.iter().map(|r| r.1).collect());
    let (plain_rate, keyed_rate) = (rate(&plain), rate(&keyed));
    let name = match db.backend {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    // Each keyed round against the plain round just before it: the two
    // ran a second apart, on the same machine in the same mood.
    let paired = median(
        plain
            .iter()
            .zip(&keyed)
            .map(|(p, k)| (1.0 - k.0 / p.0) * 100.0)
            .collect(),
    );
    println!(
        "{name}: without a key {plain_rate:.0} creates/s (p99 {:.1} ms); with a key \
         {keyed_rate:.0} creates/s (p99 {:.1} ms): keys cost {:.1} % of throughput \
         ({paired:.1} % by the median of {rounds} paired rounds)",
        p99(&plain).as_secs_f64() * 1000.0,
        p99(&keyed).as_secs_f64() * 1000.0,
        (1.0 - keyed_rate / plain_rate) * 100.0
    );
}

fn main() {
    bench(TestDb::sqlite());
    if std::env::var_os("VIGILO_BENCH_ONLY").is_some() {
        return;
    }
    if let Some(db) = TestDb::postgres() {
        bench(db);
    }
}
