//! What each plugin costs: per plugin and per call kind, how many calls it
//! served, how they ended, and how long they took.
//!
//! Every call into a plugin ([`super::Plugins::call`]) is counted once,
//! when its outcome is known, with a handful of relaxed atomic additions:
//! no lock is taken and nothing is allocated. Durations go into a fixed
//! set of buckets ([`BUCKETS_SECONDS`]), from which p50 and p99 are
//! estimated (as Prometheus' `histogram_quantile` does: linearly within
//! the bucket the quantile falls in) and which `/metrics` exposes as a
//! histogram.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use vigilo_sdk::wire;
use vigilo_sdk::PluginKind;

/// The call kinds counted apart, by their wire method name.
pub const CALL_KINDS: [&str; 6] = [
    wire::FIELD_TYPE_VALIDATE,
    wire::WIDGET_RENDER,
    wire::WIDGET_VALIDATE_CONFIG,
    wire::ADAPTER_SEND,
    wire::ADAPTER_VALIDATE_CONFIG,
    wire::TASK_RUN,
];

/// Upper bounds of the duration buckets, in seconds (the last bucket,
/// `+Inf`, takes the rest).
pub const BUCKETS_SECONDS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 5.0, 30.0,
];

/// The bounds in microseconds, compared on the hot path.
const BUCKETS_MICROS: [u64; 16] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 5_000_000, 30_000_000,
];

/// No call kind seen yet (the call failed before reaching the plugin).
pub(super) const NO_KIND: u8 = u8::MAX;

/// The index of `method` in [`CALL_KINDS`] (or [`NO_KIND`]).
pub(super) fn kind_index(method: &str) -> u8 {
    CALL_KINDS
        .iter()
        .position(|k| *k == method)
        .map_or(NO_KIND, |i| i as u8)
}

/// The call a plugin of `kind` mostly serves: what a call that failed
/// before reaching the plugin is counted as.
pub(super) fn primary_kind(kind: Option<PluginKind>) -> u8 {
    let method = match kind {
        Some(PluginKind::FieldType) => wire::FIELD_TYPE_VALIDATE,
        Some(PluginKind::DashboardWidget) => wire::WIDGET_RENDER,
        Some(PluginKind::IntegrationAdapter) => wire::ADAPTER_SEND,
        Some(PluginKind::CeleryTask) | None => wire::TASK_RUN,
    };
    kind_index(method)
}

/// Whether a plugin of `kind` serves calls `call`.
fn serves(kind: Option<PluginKind>, call: &str) -> bool {
    match kind {
        Some(PluginKind::FieldType) => call == wire::FIELD_TYPE_VALIDATE,
        Some(PluginKind::DashboardWidget) => {
            call == wire::WIDGET_RENDER || call == wire::WIDGET_VALIDATE_CONFIG
        }
        Some(PluginKind::IntegrationAdapter) => {
            call == wire::ADAPTER_SEND || call == wire::ADAPTER_VALIDATE_CONFIG
        }
        Some(PluginKind::CeleryTask) => call == wire::TASK_RUN,
        None => false,
    }
}

/// How a call ended, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// The plugin answered.
    Answered,
    /// The plugin refused the input (a field value it finds invalid): an
    /// answer, not a fault.
    Rejected,
    /// The plugin failed, or could not be called (not loaded, busy,
    /// restarting).
    Failed,
    /// The plugin panicked.
    Panicked,
    /// Its worker ended while serving the call.
    Crashed,
    /// The call ran past its time limit.
    TimedOut,
}

/// One call kind's counters.
#[derive(Debug, Default)]
struct KindCounters {
    calls: AtomicU64,
    errors: AtomicU64,
    rejected: AtomicU64,
    panics: AtomicU64,
    crashes: AtomicU64,
    timeouts: AtomicU64,
    sum_micros: AtomicU64,
    /// Calls per bucket (not cumulative); the last is `+Inf`.
    buckets: [AtomicU64; BUCKETS_MICROS.len() + 1],
}

/// One plugin's counters, per call kind, and of its calls to the host.
#[derive(Debug, Default)]
pub struct PluginMetrics {
    kinds: [KindCounters; CALL_KINDS.len()],
    host_calls: AtomicU64,
    capability_refusals: AtomicU64,
    /// The log lines it may still write now, and when that was worked out.
    log_allowance: std::sync::Mutex<Option<(f64, std::time::Instant)>>,
    log_dropped: AtomicU64,
    log_unreported: AtomicU64,
}

/// Log lines a plugin may write per second, on average.
const LOG_LINES_PER_SECOND: f64 = 20.0;
/// Log lines a plugin may write at once.
const LOG_BURST: f64 = 100.0;

/// A plugin's calls to the host at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct HostCallFigures {
    /// Host calls made.
    pub calls: u64,
    /// Calls refused because the plugin did not declare the capability they
    /// need (`capability_not_declared`).
    pub capability_refusals: u64,
    /// Log lines dropped because the plugin wrote too many too fast.
    pub log_lines_dropped: u64,
}

/// One call kind's figures at one moment.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct CallFigures {
    /// The call kind: `field_type.validate`, `widget.render`,
    /// `widget.validate_config`, `adapter.send`, `adapter.validate_config`
    /// or `task.run`.
    pub call: String,
    /// Calls made (every outcome).
    pub calls: u64,
    /// Calls that got no answer: the plugin failed, panicked, crashed, ran
    /// past its limit, or could not be called. A refused input is not an
    /// error.
    pub errors: u64,
    /// Calls whose input the plugin refused (an invalid field value).
    pub rejected: u64,
    /// Calls in which the plugin panicked.
    pub panics: u64,
    /// Calls whose worker ended while serving them.
    pub crashes: u64,
    /// Calls that ran past their time limit.
    pub timeouts: u64,
    /// Estimated median duration in milliseconds (null before any call).
    pub p50_ms: Option<f64>,
    /// Estimated 99th percentile duration in milliseconds (null before any
    /// call).
    pub p99_ms: Option<f64>,
    /// Total time spent in these calls, in seconds.
    #[serde(skip)]
    pub sum_seconds: f64,
    /// Calls per bucket of [`BUCKETS_SECONDS`] and `+Inf`, cumulative.
    #[serde(skip)]
    pub cumulative: Vec<u64>,
}

impl PluginMetrics {
    /// Counts one call the plugin made to the host.
    pub(super) fn count_host_call(&self) {
        self.host_calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one host call refused for an undeclared capability.
    pub(super) fn count_capability_refusal(&self) {
        self.capability_refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether the plugin may write a log line now (a token bucket of
    /// [`LOG_BURST`] lines refilled at [`LOG_LINES_PER_SECOND`]): `Some`
    /// with the lines dropped since the last one admitted, or None to drop
    /// this one.
    pub(super) fn admit_log_line(&self) -> Option<u64> {
        let now = std::time::Instant::now();
        let mut allowance = self.log_allowance.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, since) = allowance.unwrap_or((LOG_BURST, now));
        let tokens = (tokens + now.duration_since(since).as_secs_f64() * LOG_LINES_PER_SECOND)
            .min(LOG_BURST);
        if tokens < 1.0 {
            *allowance = Some((tokens, now));
            self.log_dropped.fetch_add(1, Ordering::Relaxed);
            self.log_unreported.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *allowance = Some((tokens - 1.0, now));
        Some(self.log_unreported.swap(0, Ordering::Relaxed))
    }

    /// The plugin's calls to the host so far.
    pub fn host_figures(&self) -> HostCallFigures {
        HostCallFigures {
            calls: self.host_calls.load(Ordering::Relaxed),
            capability_refusals: self.capability_refusals.load(Ordering::Relaxed),
            log_lines_dropped: self.log_dropped.load(Ordering::Relaxed),
        }
    }

    /// Counts one call of kind `kind` (an index of [`CALL_KINDS`]) that
    /// ended as `ending` after `elapsed`.
    pub(super) fn record(&self, kind: u8, ending: Ending, elapsed: Duration) {
        let Some(k) = self.kinds.get(kind as usize) else {
            return;
        };
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        k.calls.fetch_add(1, Ordering::Relaxed);
        k.sum_micros.fetch_add(micros, Ordering::Relaxed);
        let bucket = BUCKETS_MICROS
            .iter()
            .position(|bound| micros <= *bound)
            .unwrap_or(BUCKETS_MICROS.len());
        k.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let (error, counter) = match ending {
            Ending::Answered => return,
            Ending::Rejected => (false, Some(&k.rejected)),
            Ending::Failed => (true, None),
            Ending::Panicked => (true, Some(&k.panics)),
            Ending::Crashed => (true, Some(&k.crashes)),
            Ending::TimedOut => (true, Some(&k.timeouts)),
        };
        if error {
            k.errors.fetch_add(1, Ordering::Relaxed);
        }
        if let Some(counter) = counter {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The figures of each call kind a plugin of `kind` serves, and of any
    /// other kind it was called for.
    pub fn figures(&self, kind: Option<PluginKind>) -> Vec<CallFigures> {
        CALL_KINDS
            .iter()
            .zip(&self.kinds)
            .filter(|(call, k)| serves(kind, call) || k.calls.load(Ordering::Relaxed) > 0)
            .map(|(call, k)| {
                let mut cumulative = Vec::with_capacity(k.buckets.len());
                let mut total = 0;
                for bucket in &k.buckets {
                    total += bucket.load(Ordering::Relaxed);
                    cumulative.push(total);
                }
                CallFigures {
                    call: (*call).to_owned(),
                    // The buckets, not `calls`: both are read without a
                    // lock, and the quantiles must agree with the count.
                    calls: total,
                    errors: k.errors.load(Ordering::Relaxed),
                    rejected: k.rejected.load(Ordering::Relaxed),
                    panics: k.panics.load(Ordering::Relaxed),
                    crashes: k.crashes.load(Ordering::Relaxed),
                    timeouts: k.timeouts.load(Ordering::Relaxed),
                    p50_ms: quantile(&cumulative, 0.5).map(|s| round_ms(s * 1000.0)),
                    p99_ms: quantile(&cumulative, 0.99).map(|s| round_ms(s * 1000.0)),
                    sum_seconds: k.sum_micros.load(Ordering::Relaxed) as f64 / 1e6,
                    cumulative,
                }
            })
            .collect()
    }
}

/// Milliseconds to the microsecond.
fn round_ms(ms: f64) -> f64 {
    (ms * 1000.0).round() / 1000.0
}

/// The `q` quantile in seconds, estimated from cumulative bucket counts:
/// linearly within the bucket it falls in; the highest finite bound when
/// it falls in `+Inf`.
fn quantile(cumulative: &[u64], q: f64) -> Option<f64> {
    let total = *cumulative.last()?;
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let at = cumulative.iter().position(|c| *c as f64 >= rank)?;
    let Some(upper) = BUCKETS_SECONDS.get(at) else {
        return BUCKETS_SECONDS.last().copied();
    };
    let (lower, below) = match at {
        0 => (0.0, 0),
        _ => (BUCKETS_SECONDS[at - 1], cumulative[at - 1]),
    };
    let within = (cumulative[at] - below) as f64;
    Some(lower + (upper - lower) * ((rank - below as f64) / within.max(1.0)))
}

/// The kind of the call being made, learnt when the caller's closure calls
/// the plugin (shared by the thread that runs it and the task that counts
/// it).
#[derive(Debug)]
pub(super) struct SeenKind(AtomicU8);

impl SeenKind {
    pub(super) fn new() -> Self {
        SeenKind(AtomicU8::new(NO_KIND))
    }

    pub(super) fn set(&self, kind: u8) {
        self.0.store(kind, Ordering::Relaxed);
    }

    pub(super) fn get(&self) -> u8 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The resident memory of process `pid` in bytes (`VmRSS` in
/// `/proc/PID/status`; None where there is no such file).
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_fall_in_the_right_bucket() {
        let m = PluginMetrics::default();
        for _ in 0..98 {
            m.record(0, Ending::Answered, Duration::from_micros(80));
        }
        m.record(0, Ending::Rejected, Duration::from_micros(80));
        m.record(0, Ending::TimedOut, Duration::from_secs(2));
        let all = m.figures(Some(PluginKind::FieldType));
        assert_eq!(all.len(), 1);
        let f = &all[0];
        assert_eq!((f.calls, f.errors, f.rejected, f.timeouts), (100, 1, 1, 1));
        let p50 = f.p50_ms.unwrap();
        assert!(p50 > 0.05 && p50 <= 0.1, "{p50}");
        let p99 = f.p99_ms.unwrap();
        assert!(p99 <= 0.1, "{p99}");
        let widget = PluginMetrics::default();
        assert_eq!(
            widget.figures(Some(PluginKind::DashboardWidget))[0].p50_ms,
            None
        );
    }
}
