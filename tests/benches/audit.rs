//! Benchmarks of the audit log (figures go in the README):
//!
//! * appends per second through the store, one writer, one transaction per
//!   event (target ≥ 5,000/s);
//! * verifying a chain of 1,000,000 events, fully (target ≤ 2 s), and
//!   incrementally from a checkpoint near its head; the full verification
//!   also on PostgreSQL when `VIGILO_TEST_POSTGRES_URL` is set.
//!
//!     cargo bench -p vigilo-tests --bench audit
//!
//! `AUDIT_APPENDS` and `AUDIT_VERIFY_EVENTS` change the sizes.

use std::time::Instant;

use serde_json::json;
use sqlx::Connection;
use vigilo_host::audit::checkpoint::Signer;
use vigilo_host::audit::{Actor, NewEvent};
use vigilo_host::store::audit::{self, ChainAppender};
use vigilo_host::store::Store;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let appends = env("AUDIT_APPENDS", 20_000);
    let verify_events = env("AUDIT_VERIFY_EVENTS", 1_000_000);
    let dir = tempfile::TempDir::new().unwrap();
    // A fresh PostgreSQL database when `VIGILO_TEST_POSTGRES_URL` is set
    // (made and dropped outside the benchmark's runtime).
    let postgres = vigilo_tests::TestDb::postgres();
    let postgres_url = postgres.as_ref().map(|db| db.url.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let store = Store::connect(&url, 4).await.unwrap();
        store.migrate().await.unwrap();
        let actor = Actor {
            user_id: Some(1),
            token_id: Some(1),
            label: "bench@example.com".into(),
        };
        let event = settings_event;

        // The floor: an empty write transaction through the store, and, on
        // a connection of its own to the same file (the store lets no
        // statement of anyone else's into its transactions), one with a
        // single trivial statement and one with a 12-value insert (what
        // any append costs before its own work).
        let started = Instant::now();
        for _ in 0..appends {
            let tx = store.begin_write().await.unwrap();
            tx.commit().await.unwrap();
        }
        let empty = started.elapsed().as_secs_f64() / appends as f64;
        let mut raw = sqlx::AnyConnection::connect(&url).await.unwrap();
        let started = Instant::now();
        for _ in 0..appends {
            let mut tx = raw.begin().await.unwrap();
            sqlx::query("SELECT 1").execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        let one = started.elapsed().as_secs_f64() / appends as f64;
        sqlx::query("CREATE TABLE scratch (a INTEGER, b INTEGER, c TEXT, d INTEGER, e INTEGER, f INTEGER, g TEXT, h TEXT, i TEXT, j TEXT, k TEXT, l TEXT)")
            .execute(&mut raw)
            .await
            .unwrap();
        let started = Instant::now();
        for i in 0..appends {
            let mut tx = raw.begin().await.unwrap();
            sqlx::query("INSERT INTO scratch VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                .bind(1i64).bind(i as i64).bind("2026-11-24T00:00:00.000000Z").bind(1i64).bind(1i64).bind(1i64)
                .bind("bench@example.com").bind("workspace.settings.set").bind(format!("key{i}"))
                .bind("{\"key\":\"k\"}").bind("a".repeat(64)).bind("b".repeat(64))
                .execute(&mut *tx).await.unwrap();
            tx.commit().await.unwrap();
        }
        let twelve = started.elapsed().as_secs_f64() / appends as f64;
        drop(raw);
        println!(
            "write transaction floor: empty {:.0} µs, one trivial statement {:.0} µs, a 12-value insert into an unindexed table {:.0} µs",
            empty * 1e6,
            one * 1e6,
            twelve * 1e6
        );

        // One writer, one transaction per event, as the API does.
        let started = Instant::now();
        for i in 0..appends {
            let mut tx = store.begin_write().await.unwrap();
            audit::append(&mut tx, &actor, event(i, 1)).await.unwrap();
            tx.commit().await.unwrap();
        }
        let secs = started.elapsed().as_secs_f64();
        println!("audit append: {appends} events, one transaction each: {secs:.2} s = {:.0} appends/s (target >= 5000/s)", appends as f64 / secs);

        let (signer, key) = long_chain(&store, "SQLite", verify_events, &dir).await;
        // Incremental: a checkpoint at the head, then 1,000 more events.
        store.checkpoint_chain(&signer, 2).await.unwrap();
        let mut tx = store.begin_write().await.unwrap();
        let mut chain = ChainAppender::open(&mut tx, Some(2)).await.unwrap();
        for i in 0..1000 {
            chain.append(&mut tx, &actor, event(i, 2)).await.unwrap();
        }
        tx.commit().await.unwrap();
        let started = Instant::now();
        let report = store.verify_chain(2, false, &key).await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert!(report.intact && report.mode == "incremental", "{report:?}");
        println!(
            "audit verify (incremental): {} events after the newest checkpoint of a {}-event chain in {:.3} s",
            report.events_checked,
            verify_events + 1000,
            secs
        );
        if let Some(url) = &postgres_url {
            let store = Store::connect(url, 4).await.unwrap();
            store.migrate().await.unwrap();
            long_chain(&store, "PostgreSQL", verify_events, &dir).await;
            store.close().await;
        }
    });
    drop(postgres);
}

/// Writes a chain of `events` events (chain 2) in large transactions, then
/// verifies it fully three times and prints the best time.
async fn long_chain(
    store: &Store,
    name: &str,
    events: usize,
    dir: &tempfile::TempDir,
) -> (Signer, ed25519_dalek::VerifyingKey) {
    let actor = Actor {
        user_id: Some(1),
        token_id: Some(1),
        label: "bench@example.com".into(),
    };
    let started = Instant::now();
    // One transaction per 1,000 events: on PostgreSQL every append also
    // updates the chain's head row, and a row updated many times in one
    // transaction costs more with each update.
    let mut written = 0;
    while written < events {
        let end = (written + 1000).min(events);
        let batch: Vec<NewEvent> = (written..end).map(|i| settings_event(i, 2)).collect();
        let batch: Vec<(&Actor, NewEvent)> = batch.into_iter().map(|e| (&actor, e)).collect();
        let mut tx = store.begin_write().await.unwrap();
        let mut chain = ChainAppender::open(&mut tx, Some(2)).await.unwrap();
        chain.append_many(&mut tx, &batch).await.unwrap();
        tx.commit().await.unwrap();
        written = end;
    }
    println!(
        "({name} setup: wrote {events} events in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    let signer = Signer::load_or_create(&dir.path().join(format!("{name}.key"))).unwrap();
    let key = signer.verifying_key();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let report = store.verify_chain(2, true, &key).await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert!(report.intact && report.events_checked == events as u64);
        best = best.min(secs);
    }
    println!(
        "{name}: audit verify (full): {events} events in {best:.2} s = {:.0} events/s (best of 3; target <= 2 s for 1,000,000)",
        events as f64 / best
    );
    (signer, key)
}

fn settings_event(i: usize, ws: i64) -> NewEvent {
    NewEvent::new(
        Some(ws),
        "workspace.settings.set",
        format!("key{i}"),
        json!({"key": format!("key{i}"), "new": i, "old": null}),
    )
}
