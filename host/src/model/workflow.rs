//! The three workflows of work items (changes, incidents, tasks): their
//! kinds and statuses as types, the statuses of each kind in order, and the
//! moves between them. It uses nothing else of the server, so every layer
//! may read it.

use super::words::words;

words! {
    /// What a work item is. The kinds in the order the product shows them.
    pub enum Kind ("kind") {
        /// A planned change, approved before it is carried out.
        Change = "change",
        /// Something that went wrong and is being handled.
        Incident = "incident",
        /// A piece of work.
        Task = "task",
    }
}

words! {
    /// Where a work item is in its workflow. Every kind's statuses, each
    /// once, in workflow order (the kinds in [`Kind`] order); which of them
    /// a kind has is its [`Workflow`]'s.
    pub enum Status ("status") {
        /// A change being written.
        Draft = "draft",
        /// A change waiting for its approval.
        PendingApproval = "pending_approval",
        /// An approved change.
        Approved = "approved",
        /// A change that was turned down.
        Rejected = "rejected",
        /// A change being carried out.
        InProgress = "in_progress",
        /// A finished change or task.
        Done = "done",
        /// A new incident.
        Open = "open",
        /// An incident whose cause is being looked for.
        Investigating = "investigating",
        /// An incident whose harm has stopped.
        Mitigated = "mitigated",
        /// A closed incident.
        Resolved = "resolved",
        /// A task nobody started.
        Todo = "todo",
        /// A task being worked on.
        Doing = "doing",
    }
}

/// A kind's workflow: its first status and its allowed moves.
#[derive(Debug)]
pub struct Workflow {
    /// The kind it is the workflow of.
    pub kind: Kind,
    /// Status of a new item.
    pub initial: Status,
    /// Every status, in workflow order.
    pub statuses: &'static [Status],
    /// `(from, to)` moves.
    pub moves: &'static [(Status, Status)],
    /// The statuses in which nobody needs to work on an item any more.
    pub finished: &'static [Status],
}

impl Kind {
    /// Its workflow.
    pub fn workflow(self) -> &'static Workflow {
        use Status::*;
        const CHANGE: Workflow = Workflow {
            kind: Kind::Change,
            initial: Draft,
            statuses: &[Draft, PendingApproval, Approved, Rejected, InProgress, Done],
            moves: &[
                (Draft, PendingApproval),
                (PendingApproval, Draft),
                (PendingApproval, Approved),
                (PendingApproval, Rejected),
                (Rejected, Draft),
                (Approved, InProgress),
                (InProgress, Done),
            ],
            finished: &[Rejected, Done],
        };
        const INCIDENT: Workflow = Workflow {
            kind: Kind::Incident,
            initial: Open,
            statuses: &[Open, Investigating, Mitigated, Resolved],
            moves: &[
                (Open, Investigating),
                (Investigating, Mitigated),
                (Investigating, Resolved),
                (Mitigated, Investigating),
                (Mitigated, Resolved),
                (Resolved, Open),
            ],
            finished: &[Resolved],
        };
        const TASK: Workflow = Workflow {
            kind: Kind::Task,
            initial: Todo,
            statuses: &[Todo, Doing, Done],
            moves: &[(Todo, Doing), (Doing, Done), (Doing, Todo), (Done, Todo)],
            finished: &[Done],
        };
        match self {
            Kind::Change => &CHANGE,
            Kind::Incident => &INCIDENT,
            Kind::Task => &TASK,
        }
    }

    /// Its name for people, plural and lower case ("changes").
    pub fn plural(self) -> &'static str {
        match self {
            Kind::Change => "changes",
            Kind::Incident => "incidents",
            Kind::Task => "tasks",
        }
    }
}

impl Workflow {
    /// The statuses an item in `from` may move to, in workflow order of the
    /// moves.
    pub fn next(&self, from: Status) -> Vec<Status> {
        self.moves
            .iter()
            .filter(|(f, _)| *f == from)
            .map(|(_, t)| *t)
            .collect()
    }

    /// The status of this kind named `word`, if it has one by that name.
    pub fn status(&self, word: &str) -> Option<Status> {
        Status::parse(word).filter(|s| self.statuses.contains(s))
    }

    /// Whether an item in `status` is finished.
    pub fn is_finished(&self, status: Status) -> bool {
        self.finished.contains(&status)
    }

    /// Whether moving to `to` decides an approval (and so needs
    /// `change.approve`).
    pub fn is_decision(&self, to: Status) -> bool {
        self.kind == Kind::Change && matches!(to, Status::Approved | Status::Rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_belongs_to_a_workflow_and_moves_stay_inside_it() {
        for status in Status::ALL {
            assert!(
                Kind::ALL
                    .iter()
                    .any(|k| k.workflow().statuses.contains(status)),
                "{status} is no kind's"
            );
        }
        for kind in Kind::ALL {
            let flow = kind.workflow();
            assert_eq!(flow.kind, *kind);
            assert!(flow.statuses.contains(&flow.initial));
            for (from, to) in flow.moves {
                assert!(flow.statuses.contains(from) && flow.statuses.contains(to));
            }
        }
    }

    #[test]
    fn words_parse_exactly_and_never_fall_back() {
        assert_eq!(Kind::parse("change"), Some(Kind::Change));
        assert_eq!(Kind::parse("Change"), None);
        assert_eq!(Kind::parse(""), None);
        assert_eq!(
            "chore".parse::<Kind>().unwrap_err(),
            "unknown kind `chore`: use change, incident or task"
        );
        assert_eq!(Kind::Task.workflow().status("done"), Some(Status::Done));
        assert_eq!(Kind::Task.workflow().status("approved"), None);
        assert_eq!(
            serde_json::to_string(&Status::PendingApproval).unwrap(),
            "\"pending_approval\""
        );
        let kind: Kind = serde_json::from_str("\"incident\"").unwrap();
        assert_eq!(kind, Kind::Incident);
        assert!(serde_json::from_str::<Kind>("\"bug\"").is_err());
    }
}
