//! Work item creates that arrive together are written together: one
//! transaction, one statement for the items and one for their audit events,
//! one commit, however many requests it carries (group commit).
//!
//! A create costs a few statements of its own, and under load the cost that
//! counts is not the statements' work but waiting: on SQLite every write
//! waits for the one writer, on PostgreSQL every write to a workspace waits
//! for the head of its audit chain (locked from the append to the commit).
//! So creates queue in a *lane* (one for SQLite; one per workspace on
//! PostgreSQL, so that workspaces never wait for each other), and whoever
//! finds the lane idle writes everything queued in it, up to [`MAX_BATCH`]
//! creates, while later arrivals queue for the next batch. Under no load a
//! batch holds one create and costs what a create always cost.
//!
//! Nothing is answered before its batch committed: each create's answer is
//! its own item, or, when the batch failed, the error its own transaction
//! gives (a failed batch is written again one create at a time, so one bad
//! create never fails the others).
//!
//! A batch runs on a task of its own, so a request that stops waiting (its
//! client went away) never abandons the creates of the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use tokio::sync::oneshot;

use super::audit::{append_to_chains, ChainAppender};
use super::{insert_work_items, Backend, NewWorkItem, Store, StoreError, StoreResult, WorkItem};
use crate::audit::{Actor, NewEvent};

/// The most creates one batch writes.
pub const MAX_BATCH: usize = 64;

/// A work item to create, with the audit event that records it (its target
/// is the new item's id).
#[derive(Debug)]
pub struct ItemCreate {
    /// The workspace.
    pub workspace_id: i64,
    /// `change`, `incident` or `task`.
    pub kind: &'static str,
    /// One line.
    pub title: String,
    /// Free text.
    pub description: String,
    /// Initial status.
    pub status: &'static str,
    /// Validated custom field values.
    pub fields: Map<String, Value>,
    /// The plugin that creates it, if a plugin does.
    pub created_by_plugin: Option<String>,
    /// Who creates it.
    pub actor: Actor,
    /// The audit action (such as `change.create`).
    pub action: &'static str,
    /// The audit event's details.
    pub details: Value,
}

impl ItemCreate {
    /// The item to insert, with its workspace.
    pub fn new_item(&self) -> (i64, NewWorkItem<'_>) {
        (
            self.workspace_id,
            NewWorkItem {
                kind: self.kind,
                title: &self.title,
                description: &self.description,
                status: self.status,
                fields: &self.fields,
                created_by: self.actor.user_id,
                created_by_plugin: self.created_by_plugin.as_deref(),
                creator_email: Some(&self.actor.label),
            },
        )
    }
}

struct Queued {
    create: ItemCreate,
    answer: oneshot::Sender<StoreResult<WorkItem>>,
}

/// One lane: the creates waiting, and who is writing.
#[derive(Default)]
struct Lane {
    waiting: Mutex<Vec<Queued>>,
    writing: tokio::sync::Mutex<()>,
}

/// The lanes of a store.
#[derive(Default)]
pub struct CreateLanes {
    lanes: Mutex<HashMap<i64, Arc<Lane>>>,
}

impl CreateLanes {
    fn lane(&self, key: i64) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|e| e.into_inner());
        lanes.entry(key).or_default().clone()
    }
}

impl Store {
    /// Creates a work item and appends its audit event, in a batch with the
    /// creates that queue beside it (see the module's documentation).
    pub async fn create_work_item(&self, create: ItemCreate) -> StoreResult<WorkItem> {
        let key = match self.backend {
            Backend::Sqlite => 0,
            Backend::Postgres => create.workspace_id,
        };
        let lane = self.creates.lane(key);
        let (answer, mut answered) = oneshot::channel();
        lane.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Queued { create, answer });
        loop {
            tokio::select! {
                biased;
                answer = &mut answered => {
                    return answer.unwrap_or_else(|_| {
                        Err(StoreError::Database(sqlx::Error::WorkerCrashed))
                    });
                }
                writing = lane.writing.lock() => {
                    let batch: Vec<Queued> = {
                        let mut waiting = lane.waiting.lock().unwrap_or_else(|e| e.into_inner());
                        let n = waiting.len().min(MAX_BATCH);
                        waiting.drain(..n).collect()
                    };
                    if batch.is_empty() {
                        // Another batch took this create; its answer comes.
                        drop(writing);
                        return answered.await.unwrap_or_else(|_| {
                            Err(StoreError::Database(sqlx::Error::WorkerCrashed))
                        });
                    }
                    let store = self.clone();
                    let _ = tokio::spawn(async move { store.write_batch(batch).await }).await;
                    drop(writing);
                }
            }
        }
    }

    async fn write_batch(&self, batch: Vec<Queued>) {
        let creates: Vec<&ItemCreate> = batch.iter().map(|q| &q.create).collect();
        match self.insert_batch(&creates).await {
            Ok(items) => {
                for (queued, item) in batch.into_iter().zip(items) {
                    let _ = queued.answer.send(Ok(item));
                }
            }
            Err(e) if batch.len() == 1 => {
                if let Some(queued) = batch.into_iter().next() {
                    let _ = queued.answer.send(Err(e));
                }
            }
            Err(_) => {
                for queued in batch {
                    let answer = self
                        .insert_batch(&[&queued.create])
                        .await
                        .map(|mut items| items.remove(0));
                    let _ = queued.answer.send(answer);
                }
            }
        }
    }

    /// Writes `creates` in one transaction.
    async fn insert_batch(&self, creates: &[&ItemCreate]) -> StoreResult<Vec<WorkItem>> {
        let mut tx = self.begin_write().await?;
        let items: Vec<(i64, NewWorkItem<'_>)> = creates.iter().map(|c| c.new_item()).collect();
        let stored = insert_work_items(&mut tx, &items).await?;
        // The audit events, in the order the creates came, each in its
        // workspace's chain, with one statement.
        let events: Vec<NewEvent> = creates
            .iter()
            .zip(&stored)
            .map(|(c, item)| {
                NewEvent::new(
                    Some(c.workspace_id),
                    c.action,
                    item.id.to_string(),
                    c.details.clone(),
                )
            })
            .collect();
        let mut workspaces: Vec<i64> = creates.iter().map(|c| c.workspace_id).collect();
        workspaces.sort_unstable();
        workspaces.dedup();
        let mut chains = Vec::with_capacity(workspaces.len());
        for workspace_id in workspaces {
            let chain = ChainAppender::open(&mut tx, Some(workspace_id)).await?;
            let of_chain: Vec<(&Actor, &NewEvent)> = creates
                .iter()
                .zip(&events)
                .filter(|(c, _)| c.workspace_id == workspace_id)
                .map(|(c, e)| (&c.actor, e))
                .collect();
            chains.push((chain, of_chain));
        }
        append_to_chains(&mut tx, &mut chains).await?;
        tx.commit_unclaimed().await?;
        Ok(stored)
    }
}
