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
//! A create without a key is answered once its batch committed: with its
//! own item, or, when the batch failed, with the error its own transaction
//! gives (a batch that fails before it hands out any item is written again
//! one create at a time, so one bad create never fails the others).
//!
//! A create that is the first write of a request with an `Idempotency-Key`
//! joins the batch too, and the batch records its key with one statement
//! for all the keys it carries: sent with the items' insert on SQLite (one
//! round trip for both), after the events on PostgreSQL. When the request
//! said beforehand how it answers (the API's create, whose answer is a
//! function of the item: [`super::IdempotencyClaim::answer_creates_with`]),
//! the key is recorded with that answer and the batch commits at once.
//! Otherwise the batch hands the request its item *before* committing,
//! waits up to [`FLUSH_AFTER`] for its answer, and keeps it beside the key
//! (one more statement for all such answers); an answer that comes later is
//! kept by a transaction of its own. Either way the change, its key and its
//! answer commit together, as they do in a request's own transaction (see
//! [`super::IdempotencyClaim`]).
//!
//! A key another request recorded first fails the batch, which is written
//! again one create at a time; alone, that create fails with
//! [`super::Clash::KeyTaken`] and nothing of it is stored. Should a batch fail
//! after it handed out items (its commit fails), every create it handed out
//! fails: its request answers with an error and keeps nothing, so a retry
//! runs again.
//!
//! A batch runs on a task of its own, so a request that stops waiting (its
//! client went away) never abandons the creates of the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::audit::{append_to_chains, ChainAppender};
use super::idempotency::{self, Answer, IdempotencyClaim, FLUSH_AFTER};
use super::work_items::{ItemRows, NewWorkItem, WorkItem};
use super::{now, values_list, Backend, Store, StoreError, StoreResult, WriteTx};
use crate::audit::{Actor, NewEvent};
use crate::model::workflow::{Kind, Status};

/// The most creates one batch writes.
pub const MAX_BATCH: usize = 64;

/// A work item to create, with the audit event that records it (its target
/// is the new item's id).
#[derive(Debug)]
pub struct ItemCreate {
    /// The workspace.
    pub workspace_id: i64,
    /// A change, an incident or a task.
    pub kind: Kind,
    /// One line.
    pub title: String,
    /// Free text.
    pub description: String,
    /// Initial status.
    pub status: Status,
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
    /// The `Idempotency-Key` of the request, when this create is the first
    /// thing it writes.
    claim: Option<Arc<IdempotencyClaim>>,
    answer: oneshot::Sender<StoreResult<WorkItem>>,
}

/// One lane: the creates waiting, and who is writing.
#[derive(Default)]
struct Lane {
    waiting: Mutex<Vec<Queued>>,
    writing: Arc<tokio::sync::Mutex<()>>,
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
        // A change the request made before is committed first, as before
        // any write transaction; a key no write recorded yet goes with this
        // create.
        IdempotencyClaim::flush_current().await?;
        let claim = idempotency::pending_claim();
        let key = match self.backend {
            Backend::Sqlite => 0,
            Backend::Postgres => create.workspace_id,
        };
        let lane = self.creates.lane(key);
        let (answer, mut answered) = oneshot::channel();
        lane.waiting
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Queued {
                create,
                claim,
                answer,
            });
        loop {
            tokio::select! {
                biased;
                answer = &mut answered => {
                    return answer.unwrap_or_else(|_| {
                        Err(StoreError::Database(sqlx::Error::WorkerCrashed))
                    });
                }
                writing = lane.writing.clone().lock_owned() => {
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
                    // The lane is the batch's until it is written. This
                    // create's answer comes from it like the others' (a
                    // keyed create's before the batch commits, since the
                    // batch waits for the request's answer).
                    let store = self.clone();
                    tokio::spawn(async move {
                        store.write_batch(batch).await;
                        drop(writing);
                    });
                }
            }
        }
    }

    async fn write_batch(&self, batch: Vec<Queued>) {
        let alone = batch.len() == 1;
        let Err((e, mut unsettled)) = self.write(batch).await else {
            return;
        };
        if alone {
            if let Some(queued) = unsettled.pop() {
                let _ = queued.answer.send(Err(e));
            }
            return;
        }
        // One create may have failed the others: each is written again on
        // its own, and fails alone.
        for queued in unsettled {
            if let Err((e, mut unsettled)) = self.write(vec![queued]).await {
                if let Some(queued) = unsettled.pop() {
                    let _ = queued.answer.send(Err(e));
                }
            }
        }
    }

    /// Writes `batch` in one transaction and answers each create. On
    /// failure, returns the creates it did not answer: all of them, unless
    /// the failure came after keyed creates were handed their items (those
    /// learn of it through their key's claim). A key another request
    /// recorded first fails a batch of several; alone, it fails its own
    /// create with [`super::Clash::KeyTaken`].
    async fn write(&self, mut batch: Vec<Queued>) -> Result<(), (StoreError, Vec<Queued>)> {
        one_claim_each(&mut batch);
        let mut tx = match self.begin_write().await {
            Ok(tx) => tx,
            Err(e) => return Err((e.into(), batch)),
        };
        let written = {
            let creates: Vec<&ItemCreate> = batch.iter().map(|q| &q.create).collect();
            let claims: Vec<Option<&Arc<IdempotencyClaim>>> =
                batch.iter().map(|q| q.claim.as_ref()).collect();
            write_creates(&mut tx, &creates, &claims).await
        };
        let (stored, keyed, recorded) = match written {
            Ok(written) => written,
            Err(e) => return Err((e, batch)),
        };
        match recorded {
            recorded if recorded == keyed.len() => {}
            _ if batch.len() == 1 => {
                // Its key is another request's: nothing of it is stored.
                if let (Some(queued), Some((claim, _))) = (batch.pop(), keyed.first()) {
                    let _ = queued.answer.send(Err(idempotency::lose(claim)));
                }
                return Ok(());
            }
            _ => return Err((StoreError::Conflict(super::Clash::KeyTaken), batch)),
        }
        // Keyed creates whose answers are not known yet get their items now,
        // and the batch waits for their answers. The rest are answered once
        // the batch committed.
        let mut waiting = Vec::new();
        let mut answers = Vec::new();
        let mut at_commit = Vec::new();
        for (queued, item) in batch.into_iter().zip(stored) {
            let prepared = keyed.iter().any(|(c, answer)| {
                answer.is_some() && queued.claim.as_ref().is_some_and(|q| Arc::ptr_eq(q, c))
            });
            match queued.claim.clone() {
                Some(claim) if !prepared => {
                    let wait = idempotency::park_in_batch(&claim).await;
                    let _ = queued.answer.send(Ok(item));
                    waiting.push((claim, wait));
                }
                _ => at_commit.push((queued, item)),
            }
        }
        let deadline = Instant::now() + FLUSH_AFTER;
        for (claim, wait) in &mut waiting {
            if let Ok(Ok(Some(answer))) = tokio::time::timeout_at(deadline, &mut wait.answer).await
            {
                answers.push((claim.clone(), answer));
            }
        }
        let committed = async {
            keep_answers(&mut tx, self.backend, &answers).await?;
            tx.commit_unclaimed().await?;
            StoreResult::Ok(())
        }
        .await;
        match committed {
            Ok(()) => {
                for (claim, wait) in waiting {
                    let kept = answers.iter().any(|(c, _)| Arc::ptr_eq(c, &claim));
                    idempotency::settle_batch(&claim, wait, Ok(kept));
                }
                for (queued, item) in at_commit {
                    if let Some(claim) = &queued.claim {
                        idempotency::settle_answered(claim);
                    }
                    let _ = queued.answer.send(Ok(item));
                }
                Ok(())
            }
            Err(e) => {
                for (claim, wait) in waiting {
                    idempotency::settle_batch(&claim, wait, Err(e.to_string()));
                }
                Err((e, at_commit.into_iter().map(|(q, _)| q).collect()))
            }
        }
    }
}

/// A claim is recorded once: by the first create of its request in the
/// batch, and only while no other write of the request recorded it; the
/// request's other creates are written as creates without a key.
fn one_claim_each(batch: &mut [Queued]) {
    for i in 0..batch.len() {
        let (before, rest) = batch.split_at_mut(i);
        let queued = &mut rest[0];
        let repeated = queued.claim.as_ref().is_some_and(|claim| {
            !idempotency::is_pending(claim)
                || before
                    .iter()
                    .any(|q| q.claim.as_ref().is_some_and(|c| Arc::ptr_eq(c, claim)))
        });
        if repeated {
            queued.claim = None;
        }
    }
}

/// The keyed creates of a batch, each with its answer when its request
/// said it beforehand.
type Keyed = Vec<(Arc<IdempotencyClaim>, Option<Answer>)>;

/// The statement that records the keys of `n` keyed creates (values bound
/// by [`bind_keys`]): it returns a row for each key recorded, none for a
/// key another request recorded first.
fn keys_sql(backend: Backend, n: usize) -> String {
    format!(
        "INSERT INTO idempotency_keys (key_hash, scope, idem_key, request_hash, created_at, status, response)
         VALUES {}
         ON CONFLICT (key_hash) DO NOTHING
         RETURNING idem_key",
        values_list(backend, n, 7)
    )
}

/// Binds the values of [`keys_sql`] to `query`, after those bound before.
fn bind_keys<'q>(
    mut query: Query<'q, Any, AnyArguments<'q>>,
    keyed: &'q Keyed,
    created_at: &'q str,
) -> Query<'q, Any, AnyArguments<'q>> {
    for (claim, answer) in keyed {
        let (key_hash, scope, key, request_hash) = idempotency::key_of(claim);
        query = query
            .bind(key_hash)
            .bind(scope)
            .bind(key)
            .bind(request_hash)
            .bind(created_at)
            .bind(answer.as_ref().map(|(status, _)| *status))
            .bind(answer.as_ref().map(|(_, response)| response.as_str()));
    }
    query
}

/// Keeps the answers of keyed creates beside their keys, with one
/// statement.
async fn keep_answers(
    tx: &mut WriteTx,
    backend: Backend,
    answers: &[(Arc<IdempotencyClaim>, (i64, String))],
) -> StoreResult<()> {
    if answers.is_empty() {
        return Ok(());
    }
    let rows: Vec<String> = (0..answers.len())
        .map(|i| match backend {
            Backend::Sqlite => "(CAST(? AS BIGINT), CAST(? AS BIGINT), ?)".to_owned(),
            Backend::Postgres => format!(
                "(CAST(${} AS BIGINT), CAST(${} AS BIGINT), ${})",
                3 * i + 1,
                3 * i + 2,
                3 * i + 3
            ),
        })
        .collect();
    let sql = format!(
        "WITH answers (key_hash, status, response) AS (VALUES {})
         UPDATE idempotency_keys SET status = answers.status, response = answers.response
         FROM answers
         WHERE idempotency_keys.key_hash = answers.key_hash",
        rows.join(", ")
    );
    let mut update = sqlx::query(&sql);
    for (claim, (status, response)) in answers {
        let (key_hash, ..) = idempotency::key_of(claim);
        update = update.bind(key_hash).bind(*status).bind(response);
    }
    update.execute(tx.conn()).await?;
    Ok(())
}

/// Inserts `creates` (the first write of the request holding `claims[i]`,
/// where there is one) with their audit events and the keys of the keyed
/// ones, each key with its answer when its request said it beforehand.
/// Returns the items stored, the keyed creates, and how many keys were
/// recorded: fewer than the keyed creates when another request recorded
/// one first.
///
/// Every round trip to the database is a wait on the writer's path, so on
/// SQLite the keys travel with the items' insert; on PostgreSQL they are
/// recorded last, so that a key another server is recording (which waits
/// for that server's commit) holds this transaction's locks as briefly as
/// possible.
async fn write_creates(
    tx: &mut WriteTx,
    creates: &[&ItemCreate],
    claims: &[Option<&Arc<IdempotencyClaim>>],
) -> StoreResult<(Vec<WorkItem>, Keyed, usize)> {
    let items: Vec<(i64, NewWorkItem<'_>)> = creates.iter().map(|c| c.new_item()).collect();
    let rows = ItemRows::take_ids(tx, &items).await?;
    let stored = rows.stored();
    let keyed: Keyed = claims
        .iter()
        .zip(&stored)
        .filter_map(|(claim, item)| {
            let claim = Arc::clone((*claim)?);
            let answer = idempotency::prepared_answer(&claim, item);
            Some((claim, answer))
        })
        .collect();
    let created_at = now();
    let backend = tx.backend();
    let mut recorded = None;
    if backend == Backend::Sqlite && !keyed.is_empty() {
        let sql = format!("{};\n{}", rows.sql(), keys_sql(backend, keyed.len()));
        let query = bind_keys(rows.bind(sqlx::query(&sql)), &keyed, &created_at);
        recorded = Some(query.fetch_all(tx.conn()).await?.len());
    } else {
        rows.insert(tx).await?;
    }
    append_events(tx, creates, &stored).await?;
    let recorded = match recorded {
        Some(recorded) => recorded,
        None if keyed.is_empty() => 0,
        None => {
            let sql = keys_sql(backend, keyed.len());
            let query = bind_keys(sqlx::query(&sql), &keyed, &created_at);
            query.fetch_all(tx.conn()).await?.len()
        }
    };
    Ok((stored, keyed, recorded))
}

/// Appends the audit events of `creates`, whose items are `stored`, each to
/// its workspace's chain, with one statement.
async fn append_events(
    tx: &mut WriteTx,
    creates: &[&ItemCreate],
    stored: &[WorkItem],
) -> StoreResult<()> {
    // The audit events, in the order the creates came.
    let events: Vec<NewEvent> = creates
        .iter()
        .zip(stored)
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
        let chain = ChainAppender::open(tx, Some(workspace_id)).await?;
        let of_chain: Vec<(&Actor, &NewEvent)> = creates
            .iter()
            .zip(&events)
            .filter(|(c, _)| c.workspace_id == workspace_id)
            .map(|(c, e)| (&c.actor, e))
            .collect();
        chains.push((chain, of_chain));
    }
    append_to_chains(tx, &mut chains).await?;
    Ok(())
}
