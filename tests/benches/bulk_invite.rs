//! Benchmark: bulk invite of a 10,000-row CSV, end to end through the real
//! `vigilo` binary against a real server on SQLite (target: under 3 s).
//!
//!     cargo bench -p vigilo-tests --bench bulk_invite
//!
//! Prints the wall time of each run (a fresh workspace each time) and the
//! median. `BULK_ROWS` and `BULK_RUNS` change the size and repetitions.

use std::time::Instant;

use serde_json::json;
use vigilo_tests::{expect, Cli, TestDb, TestServer};

fn main() {
    let rows: usize = std::env::var("BULK_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runs: usize = std::env::var("BULK_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    // Build the binaries before timing anything.
    vigilo_tests::cargo_bin("vigilo");
    let server = TestServer::start(TestDb::sqlite());
    let dir = tempfile::TempDir::new().unwrap();
    let mut times = Vec::new();
    for run in 0..runs {
        let slug = format!("bench-{run}");
        expect(
            &server.admin().post(
                "/api/v1/workspaces",
                json!({"name": slug, "slug": slug, "region": "us"}),
            ),
            201,
        );
        let mut csv = String::from("email,role,custom_role_name\n");
        for i in 0..rows {
            let role = ["viewer", "engineer", "approver"][i % 3];
            csv.push_str(&format!("user{i}@bench{run}.example.com,{role},\n"));
        }
        let file = dir.path().join(format!("{slug}.csv"));
        std::fs::write(&file, csv).unwrap();
        let cli = Cli::with(&server.url, &server.admin_token, Some(&slug));
        let started = Instant::now();
        let out = cli.run(&[
            "--json",
            "member",
            "bulk-invite",
            "--csv",
            file.to_str().unwrap(),
        ]);
        let elapsed = started.elapsed();
        let report = out.ok().json();
        assert_eq!(report["invited"], rows, "every row must be invited");
        println!(
            "run {run}: {rows} rows invited in {:.3} s",
            elapsed.as_secs_f64()
        );
        times.push(elapsed.as_secs_f64());
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = times[times.len() / 2];
    println!(
        "bulk_invite: {rows} rows, median {median:.3} s over {runs} runs ({:.0} invites/s); target < 3 s",
        rows as f64 / median
    );
}
