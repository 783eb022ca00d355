//! `GET /metrics`: what each plugin costs, in the Prometheus text format.
//!
//! Who may read it: a platform admin's API token, or the token whose
//! SHA-256 is the `metrics_token_sha256` setting (a token made for the
//! scraper, which can read nothing else). Anyone else gets 401 or 403.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::plugins::metrics::{resident_bytes, CallFigures, BUCKETS_SECONDS};
use crate::plugins::PluginEntry;
use crate::state::AppState;

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(metrics))
}

/// Per plugin and per call kind: calls, errors, refused inputs, panics,
/// crashes, timeouts and a histogram of durations; per plugin its version,
/// tier and state, and for a worker-tier plugin its restarts, process id
/// and resident memory. Prometheus text format (`version=0.0.4`).
/// Readable with a platform admin's API token or with the token whose
/// SHA-256 is the `metrics_token_sha256` setting.
#[utoipa::path(get, path = "/metrics", tag = "plugins", security(("bearer" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain", body = String),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)))]
async fn metrics(AxumState(state): AxumState<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    allowed(&state, &headers).await?;
    let entries = state.plugins.list();
    let text = tokio::task::spawn_blocking(move || exposition(&entries))
        .await
        .map_err(|e| ApiError::Internal(format!("gathering metrics failed: {e}")))?;
    Ok((
        [(CONTENT_TYPE, TEXT_FORMAT), (CACHE_CONTROL, "no-store")],
        text,
    )
        .into_response())
}

/// Passes a platform admin's API token or the metrics token.
async fn allowed(state: &AppState, headers: &HeaderMap) -> ApiResult<()> {
    let token = super::extract::bearer_token(
        headers,
        ": /metrics is read with a platform admin's API token or the metrics token",
    )?;
    if let Some(expected) = &state.config.metrics_token_sha256 {
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
        if same(&digest, &expected.to_ascii_lowercase()) {
            return Ok(());
        }
    }
    let (caller, _) = crate::domain::tokens::authenticate(&state.store, token).await?;
    caller.require_platform_admin("read the metrics")?;
    Ok(())
}

/// Compares two texts in time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A label value, escaped as the text format wants.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One plugin per name: the loaded entry, else the latest one.
fn by_name(entries: &[Arc<PluginEntry>]) -> BTreeMap<String, &Arc<PluginEntry>> {
    let mut chosen: BTreeMap<String, &Arc<PluginEntry>> = BTreeMap::new();
    for entry in entries {
        let Some(name) = entry.name() else { continue };
        match chosen.get(name) {
            Some(kept) if kept.is_loaded() && !entry.is_loaded() => {}
            _ => {
                chosen.insert(name.to_owned(), entry);
            }
        }
    }
    chosen
}

/// A counter family: its name, its help text, and its value in a call
/// kind's figures.
type Counter = (&'static str, &'static str, fn(&CallFigures) -> u64);

/// Writes `# HELP` and `# TYPE` for a family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The whole exposition.
pub fn exposition(entries: &[Arc<PluginEntry>]) -> String {
    let plugins = by_name(entries);
    let mut out = String::new();
    family(
        &mut out,
        "vigilo_plugin_info",
        "gauge",
        "A plugin the server knows, with its version, tier and state (always 1).",
    );
    for (name, entry) in &plugins {
        let version = entry.manifest.as_ref().map_or("", |m| m.version.as_str());
        let tier = entry.tier.map_or("none", |t| t.isolation.as_str());
        let state = format!("{:?}", entry.state()).to_lowercase();
        let _ = writeln!(
            out,
            "vigilo_plugin_info{{plugin=\"{}\",version=\"{}\",tier=\"{tier}\",state=\"{state}\"}} 1",
            label(name),
            label(version)
        );
    }
    let figures: Vec<_> = plugins
        .iter()
        .map(|(name, entry)| (label(name), entry.call_figures()))
        .collect();
    let counters: [Counter; 6] = [
        ("vigilo_plugin_calls_total", "Calls into a plugin, by call kind.", |f| f.calls),
        (
            "vigilo_plugin_call_errors_total",
            "Calls that got no answer: the plugin failed, panicked, crashed, ran past its time limit or could not be called.",
            |f| f.errors,
        ),
        (
            "vigilo_plugin_call_rejections_total",
            "Calls whose input the plugin refused (an invalid field value).",
            |f| f.rejected,
        ),
        ("vigilo_plugin_panics_total", "Calls in which the plugin panicked.", |f| f.panics),
        (
            "vigilo_plugin_crashes_total",
            "Calls whose worker process ended while serving them.",
            |f| f.crashes,
        ),
        (
            "vigilo_plugin_timeouts_total",
            "Calls that ran past their time limit.",
            |f| f.timeouts,
        ),
    ];
    for (metric, help, value) in counters {
        family(&mut out, metric, "counter", help);
        for (name, calls) in &figures {
            for f in calls {
                let _ = writeln!(
                    out,
                    "{metric}{{plugin=\"{name}\",call=\"{}\"}} {}",
                    f.call,
                    value(f)
                );
            }
        }
    }
    let metric = "vigilo_plugin_call_duration_seconds";
    family(
        &mut out,
        metric,
        "histogram",
        "How long calls into a plugin took, by call kind, as the server waited for them.",
    );
    for (name, calls) in &figures {
        for f in calls {
            let labels = format!("plugin=\"{name}\",call=\"{}\"", f.call);
            for (bound, count) in BUCKETS_SECONDS.iter().zip(&f.cumulative) {
                let _ = writeln!(out, "{metric}_bucket{{{labels},le=\"{bound}\"}} {count}");
            }
            let _ = writeln!(out, "{metric}_bucket{{{labels},le=\"+Inf\"}} {}", f.calls);
            let _ = writeln!(out, "{metric}_sum{{{labels}}} {}", f.sum_seconds);
            let _ = writeln!(out, "{metric}_count{{{labels}}} {}", f.calls);
        }
    }
    workers(&mut out, &plugins);
    out
}

/// The worker-tier plugins' restarts, process ids and resident memory.
fn workers(out: &mut String, plugins: &BTreeMap<String, &Arc<PluginEntry>>) {
    let workers: Vec<_> = plugins
        .iter()
        .filter_map(|(name, e)| e.worker().map(|w| (label(name), w.restarts(), w.pid())))
        .collect();
    family(
        out,
        "vigilo_plugin_worker_restarts_total",
        "counter",
        "Worker processes started for a plugin after its first (each after a crash or a timeout).",
    );
    for (name, restarts, _) in &workers {
        let _ = writeln!(
            out,
            "vigilo_plugin_worker_restarts_total{{plugin=\"{name}\"}} {restarts}"
        );
    }
    family(
        out,
        "vigilo_plugin_worker_process_id",
        "gauge",
        "The process id of a plugin's running worker.",
    );
    for (name, _, pid) in &workers {
        if let Some(pid) = pid {
            let _ = writeln!(
                out,
                "vigilo_plugin_worker_process_id{{plugin=\"{name}\"}} {pid}"
            );
        }
    }
    family(
        out,
        "vigilo_plugin_worker_resident_memory_bytes",
        "gauge",
        "Resident memory of a plugin's running worker (VmRSS).",
    );
    for (name, _, pid) in &workers {
        if let Some(bytes) = pid.and_then(resident_bytes) {
            let _ = writeln!(
                out,
                "vigilo_plugin_worker_resident_memory_bytes{{plugin=\"{name}\"}} {bytes}"
            );
        }
    }
}
