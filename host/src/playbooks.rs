//! Playbooks: a workspace's named, ordered steps, run on demand.
//!
//! A step is one of:
//!
//! - `notify`: deliver a message through a configured integration
//!   (`integration`, `title`, `message`);
//! - `create_task`: create a task (`title`, `description`, `fields`);
//! - `set_status`: move a work item along its workflow (`item`, `status`,
//!   `comment`);
//! - `webhook`: POST JSON to a URL (`url`, `body`), never following a
//!   redirect, and only to a destination [`crate::outbound`] allows
//!   (loopback and private networks need the operator's leave).
//!
//! Every text may hold `{{ path }}` placeholders, filled from the run's
//! context: `workspace.slug`, `workspace.name`, `playbook.name`, `run.id`,
//! `run.started_by`, `input.<key>` (the variables given to the run) and
//! `steps.<step name>.<key>` (what an earlier step produced, such as
//! `steps.create_ticket.id`). An unknown placeholder fails the step.
//!
//! A failed step stops the run unless it says `continue_on_error: true`.
//! A dry run evaluates every step with no side effect: it fills the
//! templates, checks that integrations exist and can deliver, that work
//! items exist and can make the move, and that the caller holds the
//! permissions each step needs, and says what each step would do. A
//! `webhook` step cannot be simulated (calling a URL is the side effect)
//! and says so, once its destination has passed the rules. Runs and dry runs are recorded with each step's status,
//! output and error.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use utoipa::ToSchema;
use vigilo_sdk::Event;

use crate::authz::{Access, Permission};
use crate::domain::work_items::{self, NewItem};
use crate::domain::{validate, DomainError, DomainResult};
use crate::state::AppState;

/// Longest a `webhook` step waits for the remote end.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest text setting (before placeholders are filled).
const MAX_TEMPLATE: usize = 4000;
/// Largest JSON setting (`fields`, `body`), serialised.
const MAX_JSON_SETTING: usize = 16 * 1024;
/// Most one filled-in text (or JSON setting) may add up to.
const MAX_RENDERED: usize = 64 * 1024;
/// Largest run input, serialised.
pub const MAX_INPUT: usize = 16 * 1024;

/// What a step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepType {
    /// Deliver a message through an integration.
    Notify,
    /// Create a task.
    CreateTask,
    /// Move a work item along its workflow.
    SetStatus,
    /// POST JSON to a URL.
    Webhook,
}

impl StepType {
    fn name(self) -> &'static str {
        match self {
            StepType::Notify => "notify",
            StepType::CreateTask => "create_task",
            StepType::SetStatus => "set_status",
            StepType::Webhook => "webhook",
        }
    }

    /// The settings this type reads; any other is refused.
    fn settings(self) -> (&'static [&'static str], &'static [&'static str]) {
        // (required, optional)
        match self {
            StepType::Notify => (&["integration", "message"], &["title"]),
            StepType::CreateTask => (&["title"], &["description", "fields"]),
            StepType::SetStatus => (&["item", "status"], &["comment"]),
            StepType::Webhook => (&["url"], &["body"]),
        }
    }
}

/// One step of a playbook.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What the step does.
    #[serde(rename = "type")]
    pub step_type: StepType,
    /// Name for `steps.<name>` placeholders and run records (default
    /// `step1`, `step2`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Go on with the next step if this one fails.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_error: bool,
    /// `notify`: the integration's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    /// `notify`: a one-line title; `create_task`: the task's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `notify`: the message text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `create_task`: the task's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `create_task`: custom field values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Map<String, Value>>,
    /// `set_status`: the work item's id (a number, or a placeholder such as
    /// `{{input.incident}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub item: Option<Value>,
    /// `set_status`: the status to move to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `set_status`: why (recorded in the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// `webhook`: where to POST (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `webhook`: the JSON body (strings inside may hold placeholders);
    /// default: the workspace, playbook, run and input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub body: Option<Value>,
}

impl Step {
    fn present(&self, key: &str) -> bool {
        match key {
            "integration" => self.integration.is_some(),
            "title" => self.title.is_some(),
            "message" => self.message.is_some(),
            "description" => self.description.is_some(),
            "fields" => self.fields.is_some(),
            "item" => self.item.is_some(),
            "status" => self.status.is_some(),
            "comment" => self.comment.is_some(),
            "url" => self.url.is_some(),
            "body" => self.body.is_some(),
            _ => false,
        }
    }
}

const ALL_SETTINGS: [&str; 10] = [
    "integration",
    "title",
    "message",
    "description",
    "fields",
    "item",
    "status",
    "comment",
    "url",
    "body",
];

/// Checks a playbook's steps and fills in default names. The error names
/// the step (`steps[2]`) and what is wrong with it.
pub fn check_steps(steps: &mut [Step]) -> DomainResult<()> {
    if steps.is_empty() {
        return Err(DomainError::invalid(
            "steps",
            "a playbook needs at least one step",
        ));
    }
    if steps.len() > 50 {
        return Err(DomainError::invalid(
            "steps",
            "a playbook has at most 50 steps",
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, step) in steps.iter_mut().enumerate() {
        let field = format!("steps[{}]", i + 1);
        let name = match &step.name {
            Some(name) => validate::identifier(&format!("{field}.name"), name)?,
            None => format!("step{}", i + 1),
        };
        if !names.insert(name.clone()) {
            return Err(DomainError::invalid(
                format!("{field}.name"),
                format!("two steps are named `{name}`"),
            ));
        }
        step.name = Some(name);
        let (required, optional) = step.step_type.settings();
        for key in required {
            if !step.present(key) {
                return Err(DomainError::invalid(
                    format!("{field}.{key}"),
                    format!("a `{}` step needs `{key}`", step.step_type.name()),
                ));
            }
        }
        for key in ALL_SETTINGS {
            if step.present(key) && !required.contains(&key) && !optional.contains(&key) {
                return Err(DomainError::invalid(
                    format!("{field}.{key}"),
                    format!(
                        "a `{}` step has no `{key}` setting (it takes {})",
                        step.step_type.name(),
                        required
                            .iter()
                            .chain(optional.iter())
                            .copied()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        if let Some(url) = &step.url {
            if !(url.starts_with("https://") || url.starts_with("http://") || url.contains("{{")) {
                return Err(DomainError::invalid(
                    format!("{field}.url"),
                    "the webhook URL must start with http:// or https://",
                ));
            }
        }
        if let Some(item) = &step.item {
            if !(item.is_u64() || item.as_str().is_some()) {
                return Err(DomainError::invalid(
                    format!("{field}.item"),
                    "`item` is a work item id or a placeholder such as \"{{input.incident}}\"",
                ));
            }
        }
        for text in [
            &step.title,
            &step.message,
            &step.description,
            &step.comment,
            &step.url,
        ]
        .into_iter()
        .flatten()
        {
            if text.chars().count() > MAX_TEMPLATE {
                return Err(DomainError::invalid(
                    field.clone(),
                    format!("a text setting is longer than {MAX_TEMPLATE} characters"),
                ));
            }
            parse_template(text).map_err(|e| DomainError::invalid(field.clone(), e))?;
        }
        for (key, json) in [
            ("fields", step.fields.clone().map(Value::Object)),
            ("body", step.body.clone()),
        ] {
            if json.is_some_and(|j| j.to_string().len() > MAX_JSON_SETTING) {
                return Err(DomainError::invalid(
                    format!("{field}.{key}"),
                    format!("`{key}` is larger than {MAX_JSON_SETTING} bytes"),
                ));
            }
        }
    }
    Ok(())
}

/// A template split into literal text and `{{ path }}` placeholders.
enum Piece<'a> {
    Text(&'a str),
    Var(&'a str),
}

fn parse_template(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        pieces.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("unclosed placeholder in `{text}`"))?;
        let path = after[..end].trim();
        if path.is_empty()
            || !path
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "`{{{{{}}}}}` is not a placeholder (use a path such as {{{{input.host}}}})",
                &after[..end]
            ));
        }
        pieces.push(Piece::Var(path));
        rest = &after[end + 2..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

/// Looks `path` up in `context`.
fn lookup<'a>(context: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(context, |v, key| match v {
        Value::Object(map) => map.get(key),
        Value::Array(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// Fills `text`'s placeholders from `context`. In a dry run, a placeholder
/// for an earlier step's output (which does not exist yet) is shown as
/// `<steps.name.key>`.
fn render(text: &str, context: &Value, dry_run: bool) -> Result<String, String> {
    let mut budget = MAX_RENDERED;
    render_within(text, context, dry_run, &mut budget)
}

/// [`render`], failing once the output would pass `budget` bytes, so no
/// playbook can make the server build an unbounded string.
fn render_within(
    text: &str,
    context: &Value,
    dry_run: bool,
    budget: &mut usize,
) -> Result<String, String> {
    let mut out = String::new();
    for piece in parse_template(text)? {
        let added = match piece {
            Piece::Text(t) => t.to_owned(),
            Piece::Var(path) => match lookup(context, path) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Null) | None if dry_run && path.starts_with("steps.") => {
                    format!("<{path}>")
                }
                Some(Value::Null) | None => {
                    return Err(format!(
                        "the placeholder {{{{{path}}}}} has no value in this run"
                    ))
                }
                Some(other) => other.to_string(),
            },
        };
        if added.len() > *budget {
            return Err(format!(
                "the filled-in text is longer than {MAX_RENDERED} bytes"
            ));
        }
        *budget -= added.len();
        out.push_str(&added);
    }
    Ok(out)
}

/// `render` over every string inside a JSON value, within one budget.
fn render_value(value: &Value, context: &Value, dry_run: bool) -> Result<Value, String> {
    fn walk(
        value: &Value,
        context: &Value,
        dry_run: bool,
        budget: &mut usize,
    ) -> Result<Value, String> {
        Ok(match value {
            Value::String(s) => Value::String(render_within(s, context, dry_run, budget)?),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|v| walk(v, context, dry_run, budget))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| Ok((k.clone(), walk(v, context, dry_run, budget)?)))
                    .collect::<Result<_, String>>()?,
            ),
            other => other.clone(),
        })
    }
    let mut budget = MAX_RENDERED;
    walk(value, context, dry_run, &mut budget)
}

/// A `webhook` step's body when it gives none: the workspace, playbook, run
/// and input (not earlier steps' outputs).
fn default_body(context: &Value) -> Value {
    json!({
        "workspace": context["workspace"],
        "playbook": context["playbook"],
        "run": context["run"],
        "input": context["input"],
    })
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
    pub status: String,
    /// What it did (or would do).
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// Why it failed (or would fail).
    pub error: Option<String>,
}

/// Who runs a playbook, and where.
pub struct RunContext<'a> {
    /// Server state.
    pub state: &'a AppState,
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
) -> (String, Vec<StepResult>) {
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
                status: "skipped".into(),
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
                if dry_run { "would_run" } else { "succeeded" },
                Some(output),
                None,
            ),
            Outcome::CannotSimulate(output, why) => ("cannot_simulate", Some(output), Some(why)),
            Outcome::Failed(error) => {
                any_failed = true;
                if !step.continue_on_error && !dry_run {
                    stopped = true;
                }
                (
                    if dry_run { "would_fail" } else { "failed" },
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
            status: status.into(),
            output,
            error,
        });
    }
    let status = match (dry_run, any_failed) {
        (true, false) => "ok",
        (true, true) => "would_fail",
        (false, false) => "succeeded",
        (false, true) => "failed",
    };
    (status.into(), results)
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
        kind: "task".into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_from_the_context() {
        let context = json!({"input": {"host": "db1", "n": 3}, "steps": {"t": {"id": 42}}});
        assert_eq!(
            render("restart {{ input.host }} x{{input.n}}", &context, false).unwrap(),
            "restart db1 x3"
        );
        assert_eq!(
            render("task {{steps.t.id}}", &context, false).unwrap(),
            "task 42"
        );
        let err = render("{{input.missing}}", &context, false).unwrap_err();
        assert!(err.contains("input.missing"), "{err}");
        // In a dry run, later outputs are shown as placeholders.
        assert_eq!(
            render("{{steps.later.id}}", &context, true).unwrap(),
            "<steps.later.id>"
        );
        assert!(render("{{input.missing}}", &context, true).is_err());
        assert!(parse_template("{{ unclosed").is_err());
        assert!(parse_template("{{ bad path! }}").is_err());
    }

    #[test]
    fn steps_are_checked_with_the_step_named() {
        let parse = |v: Value| -> Vec<Step> { serde_json::from_value(v).unwrap() };
        let mut ok = parse(
            json!([{"type": "create_task", "title": "x"}, {"type": "notify", "integration": "s", "message": "m"}]),
        );
        check_steps(&mut ok).unwrap();
        assert_eq!(ok[1].name.as_deref(), Some("step2"));
        let mut missing = parse(json!([{"type": "notify", "integration": "s"}]));
        let err = check_steps(&mut missing).unwrap_err().to_string();
        assert!(err.contains("needs `message`"), "{err}");
        let mut foreign = parse(json!([{"type": "create_task", "title": "x", "url": "http://a"}]));
        let err = check_steps(&mut foreign).unwrap_err().to_string();
        assert!(err.contains("has no `url` setting"), "{err}");
        let mut dup = parse(
            json!([{"type": "create_task", "title": "x", "name": "a"}, {"type": "create_task", "title": "y", "name": "a"}]),
        );
        assert!(check_steps(&mut dup).is_err());
        assert!(serde_json::from_value::<Vec<Step>>(json!([{"type": "reboot"}])).is_err());
    }
}
