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

mod run;
mod template;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

pub use run::{execute, RunContext, StepResult, StepStatus};
use template::parse_template;
#[cfg(test)]
use template::render;
pub use template::template_pattern;

use crate::domain::{validate, DomainError, DomainResult};

/// Longest text setting (before placeholders are filled).
pub const MAX_TEMPLATE: usize = 4000;
/// The settings that are texts with placeholders.
pub const TEXT_SETTINGS: [&str; 5] = ["title", "message", "description", "comment", "url"];
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
    /// Every step type.
    pub const ALL: [StepType; 4] = [
        StepType::Notify,
        StepType::CreateTask,
        StepType::SetStatus,
        StepType::Webhook,
    ];

    /// The wire name.
    pub fn name(self) -> &'static str {
        match self {
            StepType::Notify => "notify",
            StepType::CreateTask => "create_task",
            StepType::SetStatus => "set_status",
            StepType::Webhook => "webhook",
        }
    }

    /// The settings this type reads, `(required, optional)`; any other is
    /// refused.
    pub fn settings(self) -> (&'static [&'static str], &'static [&'static str]) {
        // (required, optional)
        match self {
            StepType::Notify => (&["integration", "message"], &["title"]),
            StepType::CreateTask => (&["title"], &["description", "fields"]),
            StepType::SetStatus => (&["item", "status"], &["comment"]),
            StepType::Webhook => (&["url"], &["body"]),
        }
    }
}

/// How a `set_status` step names its work item (documentation only; the
/// step keeps the JSON value as sent).
#[derive(ToSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub enum StepItem {
    /// The item's id.
    Id(u64),
    /// A placeholder filled from the run's input, such as `{{input.incident}}`.
    Placeholder(String),
}

/// One step of a playbook.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// What the step does.
    #[serde(rename = "type")]
    pub step_type: StepType,
    /// Name for `steps.<name>` placeholders and run records (default
    /// `step1`, `step2`, ...), unique in the playbook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub name: Option<String>,
    /// Go on with the next step if this one fails.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub continue_on_error: bool,
    /// `notify`: the integration's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
    /// `notify`: a one-line title; `create_task`: the task's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4000)]
    pub title: Option<String>,
    /// `notify`: the message text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4000)]
    pub message: Option<String>,
    /// `create_task`: the task's description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4000)]
    pub description: Option<String>,
    /// `create_task`: custom field values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub fields: Option<Map<String, Value>>,
    /// `set_status`: the work item's id (a number, or a placeholder such as
    /// `{{input.incident}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<StepItem>)]
    pub item: Option<Value>,
    /// `set_status`: the status to move to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `set_status`: why (recorded in the audit log).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4000)]
    pub comment: Option<String>,
    /// `webhook`: where to POST: an `http://` or `https://` URL, or a
    /// placeholder that fills one in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_length = 4000)]
    pub url: Option<String>,
    /// `webhook`: the JSON body, any JSON value (strings inside may hold
    /// placeholders); default: the workspace, playbook, run and input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Value>)]
    pub body: Option<Value>,
}

impl Step {
    /// The text setting `key` (one of [`TEXT_SETTINGS`]), if given.
    fn text(&self, key: &str) -> Option<&str> {
        match key {
            "title" => self.title.as_deref(),
            "message" => self.message.as_deref(),
            "description" => self.description.as_deref(),
            "comment" => self.comment.as_deref(),
            "url" => self.url.as_deref(),
            _ => None,
        }
    }

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

/// Every setting a step can have (which ones a step takes depends on its
/// type, see [`StepType::settings`]).
pub const ALL_SETTINGS: [&str; 10] = [
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
        for text in TEXT_SETTINGS.iter().filter_map(|key| step.text(key)) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    fn the_template_pattern_accepts_what_templates_accept() {
        let pattern = regex_automata::dfa::regex::Regex::new(&template_pattern()).unwrap();
        // Every text of up to six characters from an alphabet that covers
        // the grammar's cases.
        let alphabet = ['{', '}', 'a', '.', ' ', '!', '\u{3000}', '\0'];
        let mut texts = vec![String::new()];
        let mut last = vec![String::new()];
        for _ in 0..6 {
            last = last
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(last.iter().cloned());
        }
        for text in texts {
            let accepted = parse_template(&text).is_ok() && !text.contains('\0');
            assert_eq!(pattern.is_match(text.as_str()), accepted, "{text:?}");
        }
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
