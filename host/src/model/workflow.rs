//! The three workflows of work items (changes, incidents, tasks): their
//! statuses, in order, and the moves between them. It uses nothing else of
//! the server, so every layer may read it.

/// A kind's workflow: its first status and its allowed moves.
#[derive(Debug)]
pub struct Workflow {
    /// `change`, `incident` or `task`.
    pub kind: &'static str,
    /// Status of a new item.
    pub initial: &'static str,
    /// Every status, in workflow order.
    pub statuses: &'static [&'static str],
    /// `(from, to)` moves.
    pub moves: &'static [(&'static str, &'static str)],
    /// The statuses in which nobody needs to work on an item any more.
    pub finished: &'static [&'static str],
}

/// The kinds of work item, in the order the product shows them.
pub const KINDS: [&str; 3] = ["change", "incident", "task"];

/// Every workflow's statuses, each once, in workflow order (the kinds in
/// [`KINDS`] order).
pub fn all_statuses() -> &'static [&'static str] {
    static ALL: std::sync::LazyLock<Vec<&'static str>> = std::sync::LazyLock::new(|| {
        let mut all = Vec::new();
        for status in KINDS
            .iter()
            .filter_map(|k| workflow(k))
            .flat_map(|w| w.statuses.iter())
        {
            if !all.contains(status) {
                all.push(*status);
            }
        }
        all
    });
    &ALL
}

/// The workflow of `kind`.
pub fn workflow(kind: &str) -> Option<&'static Workflow> {
    const CHANGE: Workflow = Workflow {
        kind: "change",
        initial: "draft",
        statuses: &[
            "draft",
            "pending_approval",
            "approved",
            "rejected",
            "in_progress",
            "done",
        ],
        moves: &[
            ("draft", "pending_approval"),
            ("pending_approval", "draft"),
            ("pending_approval", "approved"),
            ("pending_approval", "rejected"),
            ("rejected", "draft"),
            ("approved", "in_progress"),
            ("in_progress", "done"),
        ],
        finished: &["rejected", "done"],
    };
    const INCIDENT: Workflow = Workflow {
        kind: "incident",
        initial: "open",
        statuses: &["open", "investigating", "mitigated", "resolved"],
        moves: &[
            ("open", "investigating"),
            ("investigating", "mitigated"),
            ("investigating", "resolved"),
            ("mitigated", "investigating"),
            ("mitigated", "resolved"),
            ("resolved", "open"),
        ],
        finished: &["resolved"],
    };
    const TASK: Workflow = Workflow {
        kind: "task",
        initial: "todo",
        statuses: &["todo", "doing", "done"],
        moves: &[
            ("todo", "doing"),
            ("doing", "done"),
            ("doing", "todo"),
            ("done", "todo"),
        ],
        finished: &["done"],
    };
    match kind {
        "change" => Some(&CHANGE),
        "incident" => Some(&INCIDENT),
        "task" => Some(&TASK),
        _ => None,
    }
}

impl Workflow {
    /// The statuses an item in `from` may move to, in workflow order of the
    /// moves.
    pub fn next(&self, from: &str) -> Vec<&'static str> {
        self.moves
            .iter()
            .filter(|(f, _)| *f == from)
            .map(|(_, t)| *t)
            .collect()
    }

    /// Whether moving to `to` decides an approval (and so needs
    /// `change.approve`).
    pub fn is_decision(&self, to: &str) -> bool {
        self.kind == "change" && matches!(to, "approved" | "rejected")
    }
}
