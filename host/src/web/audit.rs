//! The audit log in the browser: `/w/{slug}/audit` (a workspace's chain,
//! needs `audit.read`) and `/admin/audit` (every chain, platform admins).
//!
//! Events are listed newest first with filters by action (`member.*`
//! matches a prefix), actor, target and time range, all in the URL. A
//! small module ([`super::assets`]' `audit.js`) follows the log live: it
//! long-polls `…/audit/events?after=N&wait=25` and puts new events at the
//! top, and after a dropped connection resumes from the last event it saw.
//! The verify page runs the chain check, shows each break with its class,
//! and says when the chain was last verified, by whom, and against which
//! signed checkpoint; checkpoints and the public key can be downloaded.

use crate::web::extract::{need, Member};
use crate::web::urls::Workspace;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::items::when_text;
use super::session::{urlencode, SignedIn};
use super::{Frame, PageError};
use crate::audit::AuditEvent;
use crate::domain::audit::{self, EventQuery, NewestFirst};
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::state::AppState;
use crate::store::audit::Verification;

mod verify;

pub use verify::{
    admin_checkpoints_download, admin_sign, admin_verify, admin_verify_page, checkpoints_download,
    public_key, sign, verify, verify_page,
};

/// How many events a page shows.
const PAGE: usize = 50;

/// The list's filters, as in the URL.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct Filters {
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    before: Option<i64>,
    /// `/admin/audit` only: which chain (0, the installation's, by default).
    chain: Option<i64>,
}

/// A time from a filter: RFC 3339, or what a `datetime-local` input sends
/// (`2026-12-01T09:30`, taken as UTC), or a date.
fn filter_time(field: &str, text: &str) -> Result<Option<String>, DomainError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let candidates = [
        text.to_owned(),
        format!("{text}:00Z"),
        format!("{text}Z"),
        format!("{text}T00:00:00Z"),
    ];
    candidates
        .iter()
        .find(|c| crate::store::parse_time(c).is_some())
        .map(|c| Some(c.clone()))
        .ok_or_else(|| {
            DomainError::invalid(
                field,
                format!("`{text}` is not a time (such as 2026-12-01T09:30, in UTC)"),
            )
        })
}

impl Filters {
    fn query(&self) -> Result<(EventQuery, Option<String>), DomainError> {
        let keep = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        Ok((
            EventQuery {
                action: keep(&self.action),
                actor: keep(&self.actor),
                target: keep(&self.target),
                since: filter_time("since", &self.since)?,
                ..EventQuery::default()
            },
            filter_time("until", &self.until)?,
        ))
    }

    /// The filters as a query string (without `before`), starting with `&`.
    fn as_query(&self) -> String {
        let mut out = String::new();
        for (key, value) in [
            ("action", &self.action),
            ("actor", &self.actor),
            ("target", &self.target),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !value.trim().is_empty() {
                out.push_str(&format!("&{key}={}", urlencode(value.trim())));
            }
        }
        if let Some(chain) = self.chain {
            out.push_str(&format!("&chain={chain}"));
        }
        out
    }

    fn any(&self) -> bool {
        [
            &self.action,
            &self.actor,
            &self.target,
            &self.since,
            &self.until,
        ]
        .iter()
        .any(|v| !v.trim().is_empty())
    }
}

/// An event as a row of the list (also what the live module receives).
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    seq: i64,
    time: String,
    when: String,
    actor: String,
    action: String,
    target: String,
    details: String,
}

fn row(e: AuditEvent) -> EventRow {
    let details = match &e.details {
        serde_json::Value::Object(m) if m.is_empty() => String::new(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    EventRow {
        seq: e.seq,
        when: when_text(&e.time),
        time: e.time,
        actor: e.actor.label,
        action: e.action,
        target: e.target,
        details,
    }
}

/// A chain in the admin's chain picker.
pub struct ChainOption {
    id: i64,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "audit/log.html")]
struct LogPage {
    frame: Frame,
    /// `/w/{slug}/audit` or `/admin/audit`.
    base: String,
    heading: String,
    chains: Vec<ChainOption>,
    filters: Filters,
    filter_query: String,
    rows: Vec<EventRow>,
    head: i64,
    older: Option<i64>,
    live_query: String,
    error: Option<String>,
    last_verified: Option<(String, String, bool)>,
}

fn live_query(filters: &Filters) -> String {
    let mut out = String::new();
    for (key, value) in [
        ("action", &filters.action),
        ("actor", &filters.actor),
        ("target", &filters.target),
    ] {
        if !value.trim().is_empty() {
            out.push_str(&format!("&{key}={}", urlencode(value.trim())));
        }
    }
    if let Some(chain) = filters.chain {
        out.push_str(&format!("&chain={chain}"));
    }
    out
}

fn verified_summary(v: Option<Verification>) -> Option<(String, String, bool)> {
    v.map(|v| (when_text(&v.verified_at), v.verified_by, v.report.intact))
}

/// `GET /w/{slug}/audit`.
pub async fn log(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::AuditRead>,
    Path(slug): Path<String>,
    Query(filters): Query<Filters>,
) -> Result<Response, PageError> {
    let read = match filters.query() {
        Ok((q, until)) => {
            audit::newest_first(&state, &access, &q, until.as_deref(), filters.before, PAGE).await
        }
        Err(e) => Err(e),
    };
    let last = audit::last_verification(&state, &access).await?;
    let frame = Frame::workspace(&state, &current, &access, "audit", "Audit log").await?;
    log_page(
        frame,
        Workspace(&slug).audit().into(),
        format!("Audit log of {}", access.workspace.name),
        Vec::new(),
        filters,
        read,
        verified_summary(last),
    )
}

fn log_page(
    frame: Frame,
    base: String,
    heading: String,
    chains: Vec<ChainOption>,
    filters: Filters,
    read: Result<NewestFirst, DomainError>,
    last_verified: Option<(String, String, bool)>,
) -> Result<Response, PageError> {
    let (page, error) = match read {
        Ok(page) => (page, None),
        Err(DomainError::Invalid { message, .. }) => (
            NewestFirst {
                events: Vec::new(),
                head: 0,
                older: None,
            },
            Some(message),
        ),
        Err(e) => return Err(e.into()),
    };
    let status = if error.is_some() {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    } else {
        axum::http::StatusCode::OK
    };
    Ok(super::render_status(
        status,
        &LogPage {
            frame,
            base,
            heading,
            chains,
            filter_query: filters.as_query(),
            live_query: live_query(&filters),
            filters,
            rows: page.events.into_iter().map(row).collect(),
            head: page.head,
            older: page.older,
            error,
            last_verified,
        },
    ))
}

/// `?after=N` (and the filters) for following the log.
#[derive(Debug, Deserialize)]
pub struct Follow {
    #[serde(default)]
    after: i64,
    #[serde(default)]
    wait: Option<u64>,
    #[serde(default)]
    action: String,
    #[serde(default)]
    actor: String,
    #[serde(default)]
    target: String,
    chain: Option<i64>,
}

impl Follow {
    fn query(&self) -> EventQuery {
        let keep = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        EventQuery {
            after: Some(self.after.max(0)),
            // A browser's poll is held at most 25 s, under any proxy's idle
            // timeout.
            wait: Some(self.wait.unwrap_or(25).min(25)),
            action: keep(&self.action),
            actor: keep(&self.actor),
            target: keep(&self.target),
            ..EventQuery::default()
        }
    }
}

/// New events for the live view.
#[derive(Debug, Serialize)]
pub struct Followed {
    events: Vec<EventRow>,
    next_after: i64,
}

/// `GET /w/{slug}/audit/events?after=N`: the events after `N` (held until
/// one arrives or 25 s pass), oldest first, as JSON for `audit.js`.
pub async fn follow(
    State(state): State<AppState>,
    Member {
        current: _, access, ..
    }: Member<need::AuditRead>,
    Query(follow): Query<Follow>,
) -> Result<Response, PageError> {
    let page = audit::events(&state, &access, &follow.query()).await?;
    Ok(Json(Followed {
        events: page.events.into_iter().map(row).collect(),
        next_after: page.next_after,
    })
    .into_response())
}

async fn chain_labels(
    state: &AppState,
    current: &Current,
) -> Result<Vec<(i64, String)>, PageError> {
    let visible = crate::domain::workspaces::visible(state, &current.caller).await?;
    let mut labels = vec![(0, "Installation (plugins, workspaces, admins)".to_owned())];
    for chain in state.store.chain_ids().await? {
        if chain == 0 {
            continue;
        }
        let label = visible
            .iter()
            .find(|v| v.workspace.id == chain)
            .map(|v| format!("{} ({})", v.workspace.name, v.workspace.slug))
            .unwrap_or_else(|| format!("Chain {chain}"));
        labels.push((chain, label));
    }
    Ok(labels)
}

/// `GET /admin/audit`: one chain at a time, the installation's first.
pub async fn admin_log(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Query(mut filters): Query<Filters>,
) -> Result<Response, PageError> {
    current
        .caller
        .require_platform_admin("read every audit chain")?;
    let chain = filters.chain.unwrap_or(0);
    filters.chain = Some(chain);
    let read = match filters.query() {
        Ok((q, until)) => {
            audit::newest_first_of_chain(
                &state,
                &current.caller,
                chain,
                &q,
                until.as_deref(),
                filters.before,
                PAGE,
            )
            .await
        }
        Err(e) => Err(e),
    };
    let labels = chain_labels(&state, &current).await?;
    let last = audit::last_verifications(&state, &current.caller)
        .await?
        .into_iter()
        .find(|(c, _)| *c == chain)
        .and_then(|(_, v)| v);
    let frame = Frame::admin(&state, &current, "audit", "Audit log").await?;
    log_page(
        frame,
        "/admin/audit".into(),
        "Audit log".into(),
        labels
            .into_iter()
            .map(|(id, label)| ChainOption {
                selected: id == chain,
                id,
                label,
            })
            .collect(),
        filters,
        read,
        verified_summary(last),
    )
}

/// `GET /admin/audit/events?chain=C&after=N`: the live view's feed.
pub async fn admin_follow(
    State(state): State<AppState>,
    SignedIn(current): SignedIn,
    Query(follow): Query<Follow>,
) -> Result<Response, PageError> {
    let chain = follow.chain.unwrap_or(0);
    let mut q = follow.query();
    q.cursor = Some(format!("{chain}:{}", follow.after.max(0)));
    q.after = None;
    q.chain = Some(chain);
    let page = audit::all_events(&state, &current.caller, &q).await?;
    let next_after = page
        .cursor
        .split(',')
        .filter_map(|p| p.split_once(':'))
        .find(|(c, _)| c.parse::<i64>().ok() == Some(chain))
        .and_then(|(_, s)| s.parse().ok())
        .unwrap_or(follow.after);
    Ok(Json(Followed {
        events: page.events.into_iter().map(row).collect(),
        next_after,
    })
    .into_response())
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/w/{slug}/audit", get(log))
        .route("/w/{slug}/audit/events", get(follow))
        .route("/w/{slug}/audit/verify", get(verify_page).post(verify))
        .route("/w/{slug}/audit/checkpoints", post(sign))
        .route(
            "/w/{slug}/audit/checkpoints.json",
            get(checkpoints_download),
        )
        .route("/audit/public-key.json", get(public_key))
        .route("/admin/audit", get(admin_log))
        .route("/admin/audit/events", get(admin_follow))
        .route(
            "/admin/audit/verify",
            get(admin_verify_page).post(admin_verify),
        )
        .route("/admin/audit/checkpoints", post(admin_sign))
        .route(
            "/admin/audit/checkpoints.json",
            get(admin_checkpoints_download),
        )
}
