//! Vigilo under load over HTTP: real `vigilo-server` processes (release
//! builds) on loopback, driven by 16 clients at once, each with its own
//! kept-alive connection, on SQLite, on PostgreSQL with one replica and on
//! PostgreSQL with two replicas sharing one database.
//!
//! For each setup it measures, for `BENCH_SECS` seconds each (3 by
//! default, after a warm-up), in `BENCH_ROUNDS` rounds (3) in which the
//! setups take turns, so that a slow minute of the machine weighs on all of
//! them alike (each figure is the median round):
//!
//! 1. `GET /api/v1/plugins`;
//! 2. validated creates in one workspace: a `change` with a
//!    `holiday_aware_date` field that the datepicker plugin checks against
//!    the workspace's holidays (in its worker, the default tier), through
//!    the audit chain of that workspace;
//! 3. the same creates spread over 8 workspaces (client `c` writes to
//!    workspace `c % 8`);
//! 4. `GET /api/v1/workspaces/big/dashboard` with the Kanban overview over
//!    100,000 work items (`BENCH_ITEMS` to change).
//!
//! With two replicas, client `c` sends to replica `c % 2`. It prints
//! throughput and p50/p99 latency of each, then the ratios the README
//! quotes (one workspace / eight workspaces, two replicas / one replica),
//! all measured in the same run.
//!
//!     cargo bench -p vigilo-tests --bench http
//!
//! PostgreSQL is measured when `VIGILO_TEST_POSTGRES_URL` is set.
//! `VIGILO_BENCH_SERVER` runs another `vigilo-server` binary (an earlier
//! version, say) instead of this checkout's release build.
//! `BENCH_CLIENTS` changes the number of clients; `BENCH_ONLY=sqlite` (or
//! `postgres`) measures one backend. The figures go into the README.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tempfile::TempDir;
use vigilo_tests::plugins::reference_plugin;
use vigilo_tests::process::{config_file, create_admin, server_command, ServerProcess};
use vigilo_tests::TestDb;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// What one load produced.
#[derive(Debug, Clone, Copy)]
struct Figures {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

impl std::fmt::Display for Figures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:>7.0}/s  p50 {:>6.2} ms  p99 {:>6.2} ms",
            self.rate,
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0
        )
    }
}

/// One request a client sends: method, URL and body (for a POST).
type Request = (&'static str, String, Option<Value>);

/// Runs `clients` clients for `duration`, each sending `request(client, n)`
/// one after another on its own connection and expecting `status`.
fn drive(
    clients: usize,
    duration: Duration,
    token: &str,
    status: u16,
    request: &(dyn Fn(usize, usize) -> Request + Sync),
) -> Figures {
    let stop = AtomicBool::new(false);
    let done = AtomicUsize::new(0);
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (stop, done) = (&stop, &done);
                s.spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .max_idle_connections_per_host(1)
                        .timeout(Duration::from_secs(60))
                        .build();
                    let auth = format!("Bearer {token}");
                    let mut times = Vec::new();
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let (method, url, body) = request(c, n);
                        let t = Instant::now();
                        let call = agent.request(method, &url).set("Authorization", &auth);
                        let answer = match body {
                            Some(body) => call.send_json(body),
                            None => call.call(),
                        };
                        let got = match answer {
                            Ok(r) => {
                                let code = r.status();
                                let _ = r.into_string();
                                code
                            }
                            Err(ureq::Error::Status(code, r)) => {
                                panic!("{method} {url}: {code} {}", r.into_string().unwrap())
                            }
                            Err(e) => panic!("{method} {url}: {e}"),
                        };
                        assert_eq!(got, status, "{method} {url}");
                        times.push(t.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                        n += 1;
                    }
                    times
                })
            })
            .collect();
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let elapsed = started.elapsed();
    latencies.sort();
    let at = |q: usize| latencies[(latencies.len() * q / 100).min(latencies.len() - 1)];
    Figures {
        rate: done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
        p50: at(50),
        p99: at(99),
    }
}

/// A release build of `name` beside this benchmark (`target/release`).
fn release_file(name: &str) -> PathBuf {
    let path = vigilo_tests::bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --release -p vigilo-host`",
        path.display()
    );
    path
}

/// An installation: its servers (one or two replicas on one database), an
/// owner's token, and the database.
struct Installation {
    servers: Vec<ServerProcess>,
    token: String,
    db: TestDb,
    _dir: TempDir,
}

fn post(base: &str, token: &str, path: &str, body: Value, status: u16) -> Value {
    let answer = ureq::post(&format!("{base}{path}"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(body);
    let response = match answer {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {path}: {e}"),
    };
    let code = response.status();
    let text = response.into_string().unwrap();
    assert_eq!(code, status, "POST {path}: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn put(base: &str, token: &str, path: &str, body: Value) {
    let answer = ureq::put(&format!("{base}{path}"))
        .set("Authorization", &format!("Bearer {token}"))
        .send_json(body);
    if let Err(e) = answer {
        panic!("PUT {path}: {e}");
    }
}

impl Installation {
    fn start(db: TestDb, replicas: usize) -> Self {
        let dir = TempDir::new().unwrap();
        let plugins = ["datepicker_with_holidays", "kanban_overview"]
            .map(|p| format!("\"{}\"", reference_plugin(p).display()))
            .join(", ");
        let first = dir.path().join("first");
        std::fs::create_dir_all(&first).unwrap();
        let (config, port) = config_file(
            &first,
            "vigilo",
            &db.url,
            &format!("installed_plugins = [{plugins}]\n"),
        );
        let token = create_admin(&config, "root@example.com");
        let mut servers = Vec::new();
        let start = |config: &Path, port: u16, dir: &Path| {
            let mut command = server_command(config);
            if let Some(binary) = std::env::var_os("VIGILO_BENCH_SERVER") {
                command = std::process::Command::new(binary);
                command.arg("--config").arg(config);
            }
            // The tier is the installation's default, as an operator has it.
            command.env_remove("VIGILO_PLUGIN_ISOLATION");
            let server = ServerProcess::spawn(command, port, &dir.join("server.log"));
            server.wait_healthy();
            server
        };
        servers.push(start(&config, port, &first));
        for r in 1..replicas {
            let own = dir.path().join(format!("replica{r}"));
            std::fs::create_dir_all(&own).unwrap();
            let (config, port) = config_file(
                &own,
                "vigilo",
                &db.url,
                &format!(
                    "installed_plugins = [{plugins}]\naudit_signing_key = \"{}\"\nsecrets_key = \"{}\"\n",
                    first.join("data/audit-signing.key").display(),
                    first.join("data/secrets.key").display(),
                ),
            );
            servers.push(start(&config, port, &own));
        }
        Installation {
            servers,
            token,
            db,
            _dir: dir,
        }
    }

    fn url(&self, client: usize) -> &str {
        self.servers[client % self.servers.len()].url()
    }

    /// Workspaces `w0` … `w{n-1}`, each with holidays and a
    /// `holiday_aware_date` field on changes.
    fn workspaces(&self, n: usize) {
        let (base, token) = (self.url(0), self.token.as_str());
        for w in 0..n {
            post(
                base,
                token,
                "/api/v1/workspaces",
                json!({"name": format!("Team {w}"), "slug": format!("w{w}"), "region": "eu"}),
                201,
            );
            put(
                base,
                token,
                &format!("/api/v1/workspaces/w{w}/settings/holidays"),
                json!({"value": ["2027-01-01", "2027-12-24", "2027-12-25"]}),
            );
            post(
                base,
                token,
                &format!("/api/v1/workspaces/w{w}/fields"),
                json!({"key": "window", "label": "Change window",
                       "type": "holiday_aware_date", "applies_to": ["change"]}),
                201,
            );
        }
    }

    /// Creates over `workspaces` workspaces (client `c` writes to `c % n`).
    fn creates(&self, clients: usize, duration: Duration, workspaces: usize) -> Figures {
        let urls: Vec<String> = (0..clients)
            .map(|c| {
                format!(
                    "{}/api/v1/workspaces/w{}/items",
                    self.url(c),
                    c % workspaces
                )
            })
            .collect();
        drive(clients, duration, &self.token, 201, &|c, n| {
            (
                "POST",
                urls[c].clone(),
                Some(
                    json!({"kind": "change", "title": format!("Rotate keys {c}-{n}"),
                            "fields": {"window": "2027-03-09"}}),
                ),
            )
        })
    }

    fn plugin_list(&self, clients: usize, duration: Duration) -> Figures {
        let urls: Vec<String> = (0..clients)
            .map(|c| format!("{}/api/v1/plugins", self.url(c)))
            .collect();
        drive(clients, duration, &self.token, 200, &|c, _| {
            ("GET", urls[c].clone(), None)
        })
    }

    /// Workspace `big` with `items` work items (inserted in SQL) and the
    /// Kanban overview on its dashboard.
    fn big_workspace(&self, items: usize) {
        let (base, token) = (self.url(0), self.token.as_str());
        post(
            base,
            token,
            "/api/v1/workspaces",
            json!({"name": "Big", "slug": "big", "region": "eu"}),
            201,
        );
        self.db.seed_work_items("big", items);
        post(
            base,
            token,
            "/api/v1/workspaces/big/dashboard/widgets",
            json!({"widget": "kanban_overview"}),
            201,
        );
    }

    fn dashboard(&self, clients: usize, duration: Duration) -> Figures {
        let urls: Vec<String> = (0..clients)
            .map(|c| format!("{}/api/v1/workspaces/big/dashboard", self.url(c)))
            .collect();
        drive(clients, duration, &self.token, 200, &|c, _| {
            ("GET", urls[c].clone(), None)
        })
    }

    /// Every chain verifies intact after the load (a benchmark that broke
    /// the chain would measure nothing worth having).
    fn verify(&self) {
        let answer: Value = ureq::get(&format!("{}/api/v1/audit/verify?full=true", self.url(0)))
            .set("Authorization", &format!("Bearer {}", self.token))
            .timeout(Duration::from_secs(600))
            .call()
            .expect("verify")
            .into_json()
            .unwrap();
        assert_eq!(answer["intact"], json!(true), "{answer}");
    }
}

/// The median of each figure over several rounds.
fn median(runs: &[Figures]) -> Figures {
    let pick = |f: &dyn Fn(&Figures) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    };
    Figures {
        rate: pick(&|f| f.rate),
        p50: Duration::from_secs_f64(pick(&|f| f.p50.as_secs_f64())),
        p99: Duration::from_secs_f64(pick(&|f| f.p99.as_secs_f64())),
    }
}

/// One setup under test and its figures, round by round.
struct Setup {
    name: &'static str,
    install: Installation,
    replicas: usize,
    figures: [Vec<Figures>; 4],
}

const LOADS: [&str; 4] = [
    "plugin list",
    "creates, one workspace",
    "creates, eight workspaces",
    "dashboard over the big workspace",
];

fn main() {
    let clients = env("BENCH_CLIENTS", 16);
    let duration = Duration::from_secs(env("BENCH_SECS", 3) as u64);
    let rounds = env("BENCH_ROUNDS", 3);
    let items = env("BENCH_ITEMS", 100_000);
    let only = std::env::var("BENCH_ONLY").unwrap_or_default();
    release_file("vigilo-server");
    let warm = Duration::from_millis(500);
    println!(
        "{clients} clients; each figure the median of {rounds} rounds of {} s, \
         the setups taking turns",
        duration.as_secs()
    );
    let mut wanted: Vec<(&'static str, TestDb, usize)> = Vec::new();
    if only.is_empty() || only == "sqlite" {
        wanted.push(("SQLite", TestDb::sqlite(), 1));
    }
    if only.is_empty() || only == "postgres" {
        match (TestDb::postgres(), TestDb::postgres()) {
            (Some(one), Some(two)) => {
                wanted.push(("PostgreSQL, one replica", one, 1));
                wanted.push(("PostgreSQL, two replicas", two, 2));
            }
            _ => println!("PostgreSQL: skipped (set VIGILO_TEST_POSTGRES_URL)"),
        }
    }
    let mut setups: Vec<Setup> = wanted
        .into_iter()
        .map(|(name, db, replicas)| {
            let install = Installation::start(db, replicas);
            install.workspaces(8);
            install.big_workspace(items);
            Setup {
                name,
                install,
                replicas,
                figures: Default::default(),
            }
        })
        .collect();
    for _ in 0..rounds {
        for setup in &mut setups {
            let install = &setup.install;
            let loads: [&dyn Fn(Duration) -> Figures; 4] = [
                &|d| install.plugin_list(clients, d),
                &|d| install.creates(clients, d, 1),
                &|d| install.creates(clients, d, 8),
                &|d| install.dashboard(clients, d),
            ];
            for (load, figures) in loads.iter().zip(setup.figures.iter_mut()) {
                load(warm);
                figures.push(load(duration));
            }
        }
    }
    for setup in &setups {
        println!("\n{}", setup.name);
        for (name, runs) in LOADS.iter().zip(&setup.figures) {
            println!("  {name:<34} {}", median(runs));
        }
        println!(
            "  {:<34} {:.2}",
            "one workspace / eight workspaces",
            median(&setup.figures[1]).rate / median(&setup.figures[2]).rate
        );
        setup.install.verify();
        if let Ok(dir) = std::env::var("BENCH_LOGS") {
            for (i, server) in setup.install.servers.iter().enumerate() {
                let file = format!("{dir}/{}-{i}.log", setup.name.replace([' ', ','], "_"));
                std::fs::write(file, server.log()).unwrap();
            }
        }
    }
    let creates = |replicas: usize| {
        setups
            .iter()
            .find(|s| s.name.starts_with("PostgreSQL") && s.replicas == replicas)
            .map(|s| median(&s.figures[1]).rate)
    };
    if let (Some(one), Some(two)) = (creates(1), creates(2)) {
        println!(
            "\nPostgreSQL, creates in one workspace: two replicas / one replica {:.2}",
            two / one
        );
    }
}
