//! Running and dry-running a playbook's steps, and what each one did.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use vigilo_sdk::Event;

use super::template::{default_body, render, render_value};
use super::{Step, StepType};
use crate::domain::authz::{Access, Permission};
use crate::domain::work_items::{self, Kind, NewItem};
use crate::domain::Context;
use crate::domain::DomainError;
use crate::store::integrations::RunStatus;

/// Longest a `webhook` step waits for the remote end.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

crate::model::words::words! {
    /// How a step of a run went.
    pub enum StepStatus ("step status") {
        /// It did its work.
        Succeeded = "succeeded",
        /// It failed.
        Failed = "failed",
        /// It did not run: an earlier step failed.
        Skipped = "skipped",
        /// In a dry run: it would run.
        WouldRun = "would_run",
        /// In a dry run: it would fail.
        WouldFail = "would_fail",
        /// In a dry run: it cannot be tried without doing it.
        CannotSimulate = "cannot_simulate",
    }
}

/// One step's result in a run record.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct StepResult {
    /// 1-based position.
    pub index: usize,
    /// The step's name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub step_type: StepType,
    /// `succeeded`, `failed` or `skipped`; in a dry run `would_run`,
    /// `would_fail` or `cannot_simulate`.
    #[schema(value_type = String)]
    pub status: StepStatus,
    /// What it did (or would do).
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// Why it failed (or would fail).
    pub error: Option<String>,
}

/// Who runs a playbook, and where.
pub struct RunContext<'a> {
    /// Server state.
    pub state: &'a Context,
    /// The caller's access to the workspace: every step acts as the caller.
    pub access: &'a Access,
}

/// Runs (or dry-runs) `steps`; returns each step's result and the run's
/// status (`succeeded`, `failed`; for a dry run `ok` or `would_fail`).
pub async fn execute(
    cx: &RunContext<'_>,
    run_id: i64,
    playbook_name: &str,
    steps: &[Step],
    input: &Map<String, Value>,
    dry_run: bool,
) -> (RunStatus, Vec<StepResult>) {
    let mut context = json!({
        "workspace": {"slug": cx.access.workspace.slug, "name": cx.access.workspace.name},
        "playbook": {"name": playbook_name},
        "run": {"id": run_id, "dry_run": dry_run, "started_by": cx.access.caller.user.email},
        "input": input,
        "steps": {},
    });
    let mut results = Vec::with_capacity(steps.len());
    let mut stopped = false;
    let mut any_failed = false;
    for (i, step) in steps.iter().enumerate() {
        let name = step
            .name
            .clone()
            .unwrap_or_else(|| format!("step{}", i + 1));
        if stopped {
            results.push(StepResult {
                index: i + 1,
                name,
                step_type: step.step_type,
                status: StepStatus::Skipped,
                output: None,
                error: Some("an earlier step failed".into()),
            });
            continue;
        }
        let outcome = if dry_run {
            simulate(cx, step, &context).await
        } else {
            perform(cx, run_id, step, &context).await
        };
        let (status, output, error) = match outcome {
            Outcome::Done(output) => (
                if dry_run {
                    StepStatus::WouldRun
                } else {
                    StepStatus::Succeeded
                },
                Some(output),
                None,
            ),
            Outcome::CannotSimulate(output, why) => {
                (StepStatus::CannotSimulate, Some(output), Some(why))
            }
            Outcome::Failed(error) => {
                any_failed = true;
                if !step.continue_on_error && !dry_run {
                    stopped = true;
                }
                (
                    if dry_run {
                        StepStatus::WouldFail
                    } else {
                        StepStatus::Failed
                    },
                    None,
                    Some(error),
                )
            }
        };
        if let (Some(output), Value::Object(steps_seen)) = (&output, &mut context["steps"]) {
            steps_seen.insert(name.clone(), output.clone());
        }
        results.push(StepResult {
            index: i + 1,
            name,
            step_type: step.step_type,
            status,
            output,
            error,
        });
    }
    let status = match (dry_run, any_failed) {
        (true, false) => RunStatus::Ok,
        (true, true) => RunStatus::WouldFail,
        (false, false) => RunStatus::Succeeded,
        (false, true) => RunStatus::Failed,
    };
    (status, results)
}

enum Outcome {
    Done(Value),
    CannotSimulate(Value, String),
    Failed(String),
}

/// Why a step failed, as its run record says it: a refusal of the domain
/// (its message), or a problem with the step's own settings.
struct StepFailure(String);

impl From<String> for StepFailure {
    fn from(why: String) -> Self {
        StepFailure(why)
    }
}

impl From<&str> for StepFailure {
    fn from(why: &str) -> Self {
        StepFailure(why.to_owned())
    }
}

impl From<DomainError> for StepFailure {
    fn from(e: DomainError) -> Self {
        StepFailure(e.to_string())
    }
}

impl From<crate::integrations::IntegrationError> for StepFailure {
    fn from(e: crate::integrations::IntegrationError) -> Self {
        DomainError::from(e).into()
    }
}

impl From<crate::store::StoreError> for StepFailure {
    fn from(e: crate::store::StoreError) -> Self {
        DomainError::from(e).into()
    }
}

fn item_id(step: &Step, context: &Value, dry_run: bool) -> Result<Option<i64>, String> {
    match step.item.as_ref() {
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or("`item` is not a work item id".into()),
        Some(Value::String(text)) => {
            let text = render(text, context, dry_run)?;
            if dry_run && text.starts_with('<') {
                // An earlier step's output: unknown until the real run.
                return Ok(None);
            }
            text.trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| format!("`item` became `{text}`, which is not a work item id"))
        }
        _ => Err("`item` is missing".into()),
    }
}

fn event_for(
    cx: &RunContext<'_>,
    step: &Step,
    context: &Value,
    dry_run: bool,
) -> Result<Event, String> {
    let title = render(step.title.as_deref().unwrap_or(""), context, dry_run)?;
    let text = render(step.message.as_deref().unwrap_or(""), context, dry_run)?;
    Ok(Event {
        event_type: "playbook.notify".into(),
        workspace: cx.access.workspace.slug.clone(),
        title,
        text,
        data: json!({"playbook": context["playbook"]["name"], "run": context["run"]["id"]}),
    })
}

/// What a step would do, checked but not done.
async fn simulate(cx: &RunContext<'_>, step: &Step, context: &Value) -> Outcome {
    let result: Result<Outcome, StepFailure> = async {
        match step.step_type {
            StepType::Notify => {
                let event = event_for(cx, step, context, true)?;
                let name = step.integration.as_deref().unwrap_or_default();
                let integration = cx
                    .state
                    .store
                    .integration(cx.access.workspace.id, name)
                    .await?;
                cx.state
                    .integrations
                    .check_ready(cx.access.workspace.id, &integration)?;
                cx.state
                    .integrations
                    .check_destinations(cx.access.workspace.id, &integration)
                    .await?;
                Ok(Outcome::Done(json!({
                    "would": format!("send through `{}` ({})", integration.name, integration.adapter),
                    "integration": integration.name, "adapter": integration.adapter,
                    "title": event.title, "text": event.text,
                })))
            }
            StepType::CreateTask => {
                let task = task_settings(step, context, true)?;
                let checked = work_items::check_new(cx.state, cx.access, task)
                    .await?;
                Ok(Outcome::Done(json!({
                    "would": "create a task", "title": checked.title,
                    "description": checked.description, "fields": checked.fields,
                })))
            }
            StepType::SetStatus => {
                let status = render(step.status.as_deref().unwrap_or(""), context, true)?;
                match item_id(step, context, true)? {
                    Some(id) => {
                        let item = cx
                            .state
                            .store
                            .work_item(cx.access.workspace.id, id)
                            .await?;
                        work_items::check_transition(cx.access, &item, &status)?;
                        Ok(Outcome::Done(json!({
                            "would": format!("move {} {id} from {} to {status}", item.kind, item.status),
                            "item": id, "from": item.status, "to": status,
                        })))
                    }
                    None => {
                        cx.access.require(Permission::ItemWrite)?;
                        Ok(Outcome::CannotSimulate(
                            json!({"would": format!("move the item an earlier step produces to {status}")}),
                            "the work item comes from an earlier step, so the move cannot be checked before the run".into(),
                        ))
                    }
                }
            }
            StepType::Webhook => {
                let url = render(step.url.as_deref().unwrap_or(""), context, true)?;
                let body = match &step.body {
                    Some(body) => render_value(body, context, true)?,
                    None => default_body(context),
                };
                // The destination rules are checked now (a DNS lookup, no
                // request), unless an earlier step's output fills the URL in.
                if !url.contains("<steps.") {
                    let policy = crate::outbound::Policy::from_config(&cx.state.config);
                    let checked = url.clone();
                    tokio::task::spawn_blocking(move || policy.resolve(&checked))
                        .await
                        .map_err(|e| format!("the destination check did not complete: {e}"))??;
                }
                Ok(Outcome::CannotSimulate(
                    json!({"would": format!("POST JSON to {url}"), "url": url, "body": body}),
                    "calling a URL is the step's effect, so a dry run does not call it; whether the endpoint accepts the request is unknown".into(),
                ))
            }
        }
    }
    .await;
    result.unwrap_or_else(|StepFailure(why)| Outcome::Failed(why))
}

/// Does a step.
async fn perform(cx: &RunContext<'_>, run_id: i64, step: &Step, context: &Value) -> Outcome {
    let result: Result<Value, StepFailure> = async {
        match step.step_type {
            StepType::Notify => {
                let event = event_for(cx, step, context, false)?;
                let name = step.integration.as_deref().unwrap_or_default();
                let integration = cx
                    .state
                    .store
                    .integration(cx.access.workspace.id, name)
                    .await?;
                let outcome = cx
                    .state
                    .integrations
                    .deliver(cx.access.workspace.id, &integration, &event, &format!("playbook:{run_id}"))
                    .await;
                match outcome.error {
                    None => Ok(json!({
                        "integration": outcome.integration, "adapter": outcome.adapter,
                        "delivery_id": outcome.delivery_id, "detail": outcome.detail,
                    })),
                    Some(error) => Err(format!("delivery through `{}` failed: {error}", outcome.integration).into()),
                }
            }
            StepType::CreateTask => {
                let task = task_settings(step, context, false)?;
                let item = work_items::create(cx.state, cx.access, task)
                    .await?;
                Ok(json!({"id": item.id, "kind": item.kind, "title": item.title, "status": item.status}))
            }
            StepType::SetStatus => {
                let status = render(step.status.as_deref().unwrap_or(""), context, false)?;
                let id = item_id(step, context, false)?.ok_or("`item` is missing")?;
                let comment = render(step.comment.as_deref().unwrap_or(""), context, false)?;
                let comment = if comment.is_empty() {
                    format!("playbook `{}` run {run_id}", context["playbook"]["name"].as_str().unwrap_or(""))
                } else {
                    comment
                };
                let item = work_items::transition(cx.state, cx.access, id, &status, &comment)
                    .await?;
                Ok(json!({"item": item.id, "kind": item.kind, "status": item.status}))
            }
            StepType::Webhook => {
                let url = render(step.url.as_deref().unwrap_or(""), context, false)?;
                let body = match &step.body {
                    Some(body) => render_value(body, context, false)?,
                    None => default_body(context),
                };
                Ok(post_json(crate::outbound::Policy::from_config(&cx.state.config), url, body).await?)
            }
        }
    }
    .await;
    match result {
        Ok(output) => Outcome::Done(output),
        Err(StepFailure(why)) => Outcome::Failed(why),
    }
}

/// A `create_task` step's task, its title, description and field values
/// filled in.
fn task_settings(step: &Step, context: &Value, dry_run: bool) -> Result<NewItem, String> {
    let title = render(step.title.as_deref().unwrap_or(""), context, dry_run)?;
    let description = render(step.description.as_deref().unwrap_or(""), context, dry_run)?;
    let fields = match &step.fields {
        Some(fields) => match render_value(&Value::Object(fields.clone()), context, dry_run)? {
            Value::Object(map) => map,
            _ => Map::new(),
        },
        None => Map::new(),
    };
    Ok(NewItem {
        kind: Kind::Task.to_string(),
        title,
        description,
        fields,
    })
}

/// POSTs `body` to `url` off the async executor, if `policy` lets it be
/// called; a non-2xx answer is an error naming the status.
async fn post_json(
    policy: crate::outbound::Policy,
    url: String,
    body: Value,
) -> Result<Value, String> {
    tokio::task::spawn_blocking(move || {
        let addrs = policy.resolve(&url)?;
        // No redirects: the step calls the URL it names, nothing else. It
        // connects to the addresses that were checked, not to whatever a
        // second lookup might return.
        let agent = ureq::AgentBuilder::new()
            .timeout(WEBHOOK_TIMEOUT)
            .redirects(0)
            .resolver(move |_: &str| Ok(addrs.clone()))
            .build();
        match agent
            .post(&url)
            .set("User-Agent", concat!("vigilo/", env!("CARGO_PKG_VERSION")))
            .send_json(&body)
        {
            Ok(response) if (200..300).contains(&response.status()) => {
                Ok(json!({"url": url, "status": response.status()}))
            }
            Ok(response) => Err(format!(
                "{url} answered {} (redirects are not followed)",
                response.status()
            )),
            Err(ureq::Error::Status(code, response)) => {
                let text: String = response
                    .into_string()
                    .unwrap_or_default()
                    .chars()
                    .take(200)
                    .collect();
                Err(format!("{url} answered {code}: {text}"))
            }
            Err(ureq::Error::Transport(e)) => Err(format!("cannot reach {url}: {}", e.kind())),
        }
    })
    .await
    .map_err(|e| format!("the webhook call did not complete: {e}"))?
}
