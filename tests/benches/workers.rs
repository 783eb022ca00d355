//! Benchmarks of the worker tier against the in-process tier, with real
//! plugin libraries and the real server binary:
//!
//!     cargo bench -p vigilo-tests --bench workers
//!
//! 1. One field validation (`holiday_aware_date`, twenty holidays) as the
//!    server makes it (`Plugins::call`: off the executor, within the time
//!    limit), in process and through a worker: p50 and p99 of each, and
//!    what the worker adds at p50 (target ≤ 20 µs); in process both with
//!    and without the record of the running call a server keeps (so that
//!    the next start knows which call a crash ended), and what it adds.
//! 2. Validated creates over HTTP: two servers side by side, one with the
//!    holiday field in process and one with it in a worker, the same
//!    `POST /items` from four clients, rounds alternating between them;
//!    the worker's rate over the in-process rate (target ≥ 0.8).
//! 3. Start to serving with 20 worker-tier plugins: the real
//!    `vigilo-server` started with 20 plugins in its plugins directory, from
//!    spawning it to the first `200` from `/healthz`, every plugin's worker
//!    loaded and confined by then (target ≤ 1 s). The 20 plugins are copies
//!    of the fixture plugin whose name (`fixture_upper`, a string in the
//!    library) is rewritten in each copy to one of the same length, so each
//!    is a distinct plugin.
//! 4. An idle worker's resident memory.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};
use vigilo_host::plugins::forensics::CallLog;
use vigilo_host::plugins::worker::WorkerSettings;
use vigilo_host::plugins::{load_file_with, Isolation, LoadOptions, Plugins, TierSource, Tiers};
use vigilo_sdk::wire::ValidateRequest;
use vigilo_sdk::FieldContext;
use vigilo_tests::plugins::{fixture_plugin, reference_plugin};
use vigilo_tests::process::{start_timed, stop};
use vigilo_tests::{cargo_bin, expect, Api, TestDb, TestServer};

fn percentile(times: &mut [Duration], p: f64) -> Duration {
    times.sort();
    times[((times.len() - 1) as f64 * p) as usize]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A registry loading plugins in `isolation`, its workers started from the
/// real server binary, recording in-process calls in `call_log` when given
/// (as a server does, in its data directory).
fn registry(isolation: Isolation, call_log: Option<&std::path::Path>) -> Arc<Plugins> {
    let worker = WorkerSettings {
        program: Some(cargo_bin("vigilo-server")),
        ..WorkerSettings::default()
    };
    let plugins = Plugins::new(vigilo_host::VIGILO_VERSION, Duration::from_secs(5), 3, None)
        .with_tiers(Tiers::all(isolation, TierSource::Manual).with_worker(worker));
    Arc::new(match call_log {
        Some(path) => plugins.with_call_log(CallLog::open(path).unwrap()),
        None => plugins,
    })
}

fn main() {
    let datepicker = reference_plugin("datepicker_with_holidays");

    // 1. One validation as the server calls it, in each tier.
    let holidays: Vec<String> = (1..=20).map(|d| format!("2026-12-{d:02}")).collect();
    let mut settings = Map::new();
    settings.insert("holidays".into(), json!(holidays));
    let request = ValidateRequest {
        name: "holiday_aware_date".into(),
        value: Value::from("2026-12-24"),
        context: FieldContext {
            workspace: "ops".into(),
            settings,
        },
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut p50 = Vec::new();
    let data = tempfile::TempDir::new().unwrap();
    let call_log = data.path().join("plugin-calls");
    for (isolation, log, what) in [
        (
            Isolation::InProcess,
            None,
            "in_process without the call record",
        ),
        (Isolation::InProcess, Some(call_log.as_path()), "in_process"),
        (Isolation::Worker, None, "worker"),
    ] {
        let plugins = registry(isolation, log);
        let options = LoadOptions {
            tiers: plugins.tiers(),
            ..LoadOptions::default()
        };
        let entry = plugins.add(load_file_with(
            &datepicker,
            vigilo_host::VIGILO_VERSION,
            &options,
        ));
        assert!(entry.is_loaded(), "{:?}", entry.message());
        assert_eq!(entry.tier.unwrap().isolation, isolation);
        let mut times = Vec::with_capacity(20_000);
        runtime.block_on(async {
            for i in 0..22_000 {
                let request = request.clone();
                let started = Instant::now();
                let value = plugins
                    .call(&entry, move |plugin| plugin.validate_field(&request))
                    .await
                    .unwrap();
                let elapsed = started.elapsed();
                black_box(value);
                if i >= 2_000 {
                    times.push(elapsed);
                }
            }
        });
        let (median, tail) = (percentile(&mut times, 0.5), percentile(&mut times, 0.99));
        println!(
            "field validation {what}: p50 {:.1} µs, p99 {:.1} µs ({} calls)",
            us(median),
            us(tail),
            times.len()
        );
        p50.push(median);
    }
    println!(
        "recording the running call (for the next start, after a crash) adds {:.1} µs at p50 \
         to an in-process field validation",
        us(p50[1]) - us(p50[0])
    );
    println!(
        "a worker adds {:.1} µs at p50 to a field validation (target ≤ 20 µs)",
        us(p50[2].saturating_sub(p50[1]))
    );

    // 2. Validated creates over HTTP, side by side.
    let server = |isolation: Isolation| {
        let server =
            TestServer::with_plugins_and(TestDb::sqlite(), &["datepicker_with_holidays"], |c| {
                c.plugin_isolation = isolation;
            });
        let admin = server.admin();
        admin.create(
            "/api/v1/workspaces",
            json!({"name": "Ops", "slug": "ops", "region": "us"}),
        );
        expect(
            &admin.put(
                "/api/v1/workspaces/ops/settings/holidays",
                json!({"value": holidays}),
            ),
            200,
        );
        admin.create(
            "/api/v1/workspaces/ops/fields",
            json!({"key": "window", "label": "Window", "type": "holiday_aware_date", "applies_to": ["change"]}),
        );
        server
    };
    let servers = [server(Isolation::InProcess), server(Isolation::Worker)];
    let round = |admin: &Api, creates: usize| -> f64 {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| {
                    for _ in 0..creates / 4 {
                        let r = admin.post(
                            "/api/v1/workspaces/ops/items",
                            json!({"kind": "change", "title": "c", "fields": {"window": "2026-12-24"}}),
                        );
                        assert_eq!(r.status, 201, "{}", r.text);
                    }
                });
            }
        });
        creates as f64 / started.elapsed().as_secs_f64()
    };
    for server in &servers {
        round(&server.admin(), 200);
    }
    let mut rates = [Vec::new(), Vec::new()];
    for _ in 0..5 {
        for (n, server) in servers.iter().enumerate() {
            rates[n].push(round(&server.admin(), 800));
        }
    }
    let median_rate = |rates: &mut Vec<f64>| {
        rates.sort_by(f64::total_cmp);
        rates[rates.len() / 2]
    };
    let (in_process, worker) = (median_rate(&mut rates[0]), median_rate(&mut rates[1]));
    println!(
        "validated creates over HTTP (4 clients, SQLite): in process {in_process:.0}/s, worker {worker:.0}/s, ratio {:.2} (target ≥ 0.8)",
        worker / in_process
    );
    drop(servers);

    // 3. Start to serving with 20 worker-tier plugins.
    let home = tempfile::TempDir::new().unwrap();
    let plugins_dir = home.path().join("plugins");
    std::fs::create_dir(&plugins_dir).unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&plugins_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let original = std::fs::read(fixture_plugin("upper")).unwrap();
    let name = b"fixture_upper";
    for i in 0..20 {
        let renamed = format!("fixture_up{i:03}");
        let mut bytes = original.clone();
        let mut found = 0;
        let mut at = 0;
        while let Some(offset) = bytes[at..].windows(name.len()).position(|w| w == name) {
            bytes[at + offset..at + offset + name.len()].copy_from_slice(renamed.as_bytes());
            at += offset + name.len();
            found += 1;
        }
        assert!(found > 0, "the fixture's name is not in the library");
        std::fs::write(plugins_dir.join(format!("lib{renamed}.so")), bytes).unwrap();
    }
    let server_bin = cargo_bin("vigilo-server");
    let token = {
        let out = std::process::Command::new(&server_bin)
            .args(["create-admin", "--email", "bench@example.com"])
            .env("VIGILO_DATA_DIR", home.path().join("data"))
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    };
    let start_once = |check: bool| -> (Duration, Option<u64>) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = std::process::Command::new(&server_bin);
        command
            .env("VIGILO_BIND", format!("127.0.0.1:{port}"))
            .env("VIGILO_DATA_DIR", home.path().join("data"))
            .env("VIGILO_PLUGINS_DIR", &plugins_dir)
            .env("VIGILO_PLUGIN_ISOLATION", "worker")
            .env("RUST_LOG", "error");
        let (child, serving) = start_timed(command, port);
        let base = format!("http://127.0.0.1:{port}");
        let mut rss = None;
        if check {
            let api = Api::new(&base, Some(&token));
            let listed = expect(&api.get("/api/v1/plugins"), 200).clone();
            let plugins = listed["plugins"].as_array().unwrap();
            assert_eq!(plugins.len(), 20, "{listed:#}");
            assert!(plugins.iter().all(|p| p["isolation"] == "worker"));
            // 4. An idle worker's resident memory.
            let pid = plugins[0]["worker"]["pid"].as_u64().unwrap();
            std::thread::sleep(Duration::from_millis(200));
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            rss = status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok());
        }
        stop(child);
        (serving, rss)
    };
    let (first, rss) = start_once(true);
    let mut starts: Vec<Duration> = (0..7).map(|_| start_once(false).0).collect();
    println!(
        "start to serving with 20 worker-tier plugins: median {:.0} ms over 7 restarts (worst {:.0} ms; first {:.0} ms; target ≤ 1000 ms)",
        percentile(&mut starts, 0.5).as_secs_f64() * 1e3,
        starts.iter().max().unwrap().as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3
    );
    if let Some(kib) = rss {
        println!(
            "an idle worker's resident memory: {:.1} MiB",
            kib as f64 / 1024.0
        );
    }
}
