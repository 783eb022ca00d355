//! Audit events as the API lists them, reduced to what tests compare: the
//! action, the target, the actor's label and the details.

use std::ops::Deref;

use serde_json::Value;

use crate::{expect, Api};

/// One listed audit event.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Dotted action name, such as `plugin.load`.
    pub action: String,
    /// What was acted on.
    pub target: String,
    /// The actor's label: a user's email, or `system`.
    pub actor: String,
    /// The event's details.
    pub details: Value,
}

/// The events one listing returned, in the order listed.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvents(pub Vec<AuditEvent>);

impl Deref for AuditEvents {
    type Target = [AuditEvent];

    fn deref(&self) -> &[AuditEvent] {
        &self.0
    }
}

impl AuditEvents {
    /// Reads the `events` of a listing's body.
    pub fn from_body(body: &Value) -> Self {
        let events = body["events"]
            .as_array()
            .unwrap_or_else(|| panic!("no events in {body}"));
        Self(
            events
                .iter()
                .map(|e| AuditEvent {
                    action: e["action"].as_str().unwrap().to_owned(),
                    target: e["target"].as_str().unwrap().to_owned(),
                    actor: e["actor"]["label"].as_str().unwrap().to_owned(),
                    details: e["details"].clone(),
                })
                .collect(),
        )
    }

    /// Every event's action.
    pub fn actions(&self) -> Vec<&str> {
        self.iter().map(|e| e.action.as_str()).collect()
    }

    /// Every event's target.
    pub fn targets(&self) -> Vec<&str> {
        self.iter().map(|e| e.target.as_str()).collect()
    }

    /// Every event as (action, target).
    pub fn action_targets(&self) -> Vec<(&str, &str)> {
        self.iter()
            .map(|e| (e.action.as_str(), e.target.as_str()))
            .collect()
    }

    /// Every event as (action, actor label).
    pub fn action_actors(&self) -> Vec<(&str, &str)> {
        self.iter()
            .map(|e| (e.action.as_str(), e.actor.as_str()))
            .collect()
    }

    /// How many events have `action`.
    pub fn count(&self, action: &str) -> usize {
        self.iter().filter(|e| e.action == action).count()
    }

    /// The first event with `action`.
    pub fn find(&self, action: &str) -> Option<&AuditEvent> {
        self.iter().find(|e| e.action == action)
    }
}

impl Api {
    /// `GET /api/v1/workspaces/{slug}/audit?{query}` (for example
    /// `action=cert.*&limit=100`), which must answer 200.
    #[track_caller]
    pub fn workspace_audit(&self, slug: &str, query: &str) -> AuditEvents {
        let listed = self.get(&format!("/api/v1/workspaces/{slug}/audit?{query}"));
        AuditEvents::from_body(expect(&listed, 200))
    }

    /// `GET /api/v1/audit/events?chain=0&{query}`: the installation chain,
    /// which must answer 200.
    #[track_caller]
    pub fn installation_audit(&self, query: &str) -> AuditEvents {
        let listed = self.get(&format!("/api/v1/audit/events?chain=0&{query}"));
        AuditEvents::from_body(expect(&listed, 200))
    }

    /// [`Api::installation_audit`] once it holds `n` events of `action`, or
    /// after 10 s: the server records plugin events (a load, a disable) on a
    /// task of its own, a moment after they happen.
    #[track_caller]
    pub fn installation_audit_once(&self, query: &str, action: &str, n: usize) -> AuditEvents {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let events = self.installation_audit(query);
            if events.count(action) >= n || std::time::Instant::now() > deadline {
                return events;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
