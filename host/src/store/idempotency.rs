//! Idempotency keys: what a request with an `Idempotency-Key` header left
//! behind, so that the same request sent again answers with the first
//! response instead of running twice.
//!
//! The key is recorded *in the request's first write transaction*: while an
//! [`IdempotencyClaim`] is in scope, [`WriteTx::commit`] keeps the
//! transaction open ("parks" it) instead of committing at once, until the
//! request has its answer; [`IdempotencyClaim::finish`] then inserts the
//! key's row with the answer in that transaction and commits. So a request that
//! committed anything always left its key *and its answer*, even when the
//! server died a moment later, and the common request (one write, then the
//! answer) costs one transaction, not two.
//!
//! A parked transaction is committed earlier ("flushed") when the request
//! opens its next write transaction ([`Store::begin_write`] does that), when
//! [`WriteTx::commit_now`] is used because something outside the database
//! must only happen after the commit, or when the request has not answered
//! within [`FLUSH_AFTER`] (so that a write made on the request's behalf
//! outside its task, such as a plugin's host call, waits no longer than
//! that). The answer is then kept by a second transaction, as it is for a
//! request that wrote nothing.
//!
//! The claim is a task-local value: [`IdempotencyClaim::run`] sets it for
//! the request's task, and work the request hands to another task gets it
//! explicitly ([`IdempotencyClaim::current`] and [`IdempotencyClaim::carry`]),
//! since a task-local does not follow `tokio::spawn`.
//!
//! A create of a work item joins the batch of creates beside it instead
//! (see [`super::batch`]): the batch records the keys of the keyed creates
//! it carries with their answers (which the API's create gives beforehand,
//! and other requests give when the batch hands them their items, within
//! [`FLUSH_AFTER`]) and commits, so a key costs a batch a statement, not a
//! transaction of its own.
//!
//! Two requests racing with one key cannot both commit: the second one's
//! insert breaks the primary key, its transaction rolls back (with the
//! change it made), and it fails with [`Clash::KeyTaken`](super::Clash::KeyTaken) (a conflict, not a
//! server error); the edge then answers it as the first request answered.
//! (A batch of creates meeting a taken key is written again one create at a
//! time, and the create with that key fails alone; on PostgreSQL, a key
//! another server is recording waits for that server's transaction to
//! end.)
//! (On one server, requests with one key wait their turn and never race.)

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use tokio::sync::oneshot;
use tokio::time::Instant;

use super::work_items::WorkItem;
use super::{is_unique_violation, now, Store, StoreError, StoreResult, WriteTx};

tokio::task_local! {
    static CLAIM: Arc<IdempotencyClaim>;
}

/// How long a parked transaction may wait for its request's answer before
/// it is committed on its own.
pub const FLUSH_AFTER: Duration = Duration::from_millis(100);

const PENDING: u8 = 0;
const PARKED: u8 = 1;
const COMMITTED: u8 = 2;
const LOST: u8 = 3;

/// The key a request carries, claimed by the first write it commits.
#[derive(Debug)]
pub struct IdempotencyClaim {
    scope: String,
    key: String,
    /// [`key_hash`] of the scope and the key: what the key is found by.
    key_hash: i64,
    request_hash: String,
    state: AtomicU8,
    /// What recorded the key, while it waits for the answer.
    parked: tokio::sync::Mutex<Option<Parked>>,
    /// When the transaction was parked (None while nothing is parked).
    parked_at: tokio::sync::watch::Sender<Option<Instant>>,
    /// How the request answers a work item it creates, when its answer is
    /// a function of the item (see [`IdempotencyClaim::answer_creates_with`]).
    create_answer: std::sync::Mutex<Option<CreateAnswer>>,
    /// Set once a batch kept that answer with the change.
    answered: AtomicBool,
}

/// A request's answer as it is kept: the status and the sealed body.
pub(super) type Answer = (i64, String);

/// The answer to a create, from the item created, as
/// [`IdempotencyClaim::finish`] would keep it.
struct CreateAnswer(Box<AnswerFn>);

/// How a create's answer is made from its item.
type AnswerFn = dyn Fn(&WorkItem) -> Option<Answer> + Send + Sync;

impl std::fmt::Debug for CreateAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CreateAnswer")
    }
}

/// Where a claimed request's change waits for the request's answer.
#[derive(Debug)]
enum Parked {
    /// In a transaction of its own.
    Tx(WriteTx),
    /// In a batch of creates, which takes the answer.
    Batch(BatchSlot),
}

/// The request's side of a batch holding its change: the answer goes in
/// (`None` when the request wants its change committed without waiting),
/// and whether the batch committed comes out (and whether it kept the
/// answer).
#[derive(Debug)]
struct BatchSlot {
    answer: oneshot::Sender<Option<Answer>>,
    committed: oneshot::Receiver<Result<bool, String>>,
}

/// The batch's side of a keyed create it holds (see [`park_in_batch`]).
#[derive(Debug)]
pub(super) struct BatchWait {
    /// The request's answer, when it comes.
    pub answer: oneshot::Receiver<Option<Answer>>,
    committed: oneshot::Sender<Result<bool, String>>,
}

/// How a keyed request ended, as far as its key is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The answer is stored beside the key (with the change, when the
    /// request made one).
    Kept,
    /// Nothing was committed and nothing is kept: the key stays free.
    Nothing,
    /// Another request holds the key.
    Lost,
}

impl IdempotencyClaim {
    /// A claim of `key` within `scope` (the token it was sent with) for the
    /// request whose digest is `request_hash`.
    pub fn new(scope: String, key: String, request_hash: String) -> Arc<Self> {
        Arc::new(IdempotencyClaim {
            key_hash: key_hash(&scope, &key),
            scope,
            key,
            request_hash,
            state: AtomicU8::new(PENDING),
            parked: tokio::sync::Mutex::new(None),
            parked_at: tokio::sync::watch::channel(None).0,
            create_answer: std::sync::Mutex::new(None),
            answered: AtomicBool::new(false),
        })
    }

    /// Scope (the hash of the token the request was sent with).
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Tells the batch that writes this request's create how the request
    /// will answer it (status and sealed body, from the item), so that the
    /// batch keeps the answer with the change and commits without waiting
    /// for the request. The request must then answer exactly that.
    pub fn answer_creates_with(
        &self,
        answer: impl Fn(&WorkItem) -> Option<Answer> + Send + Sync + 'static,
    ) {
        let mut slot = self.create_answer.lock().unwrap_or_else(|e| e.into_inner());
        *slot = Some(CreateAnswer(Box::new(answer)));
    }

    /// Whether a batch kept the request's answer with its change: nothing
    /// is left to keep.
    pub fn answered(&self) -> bool {
        self.answered.load(Ordering::SeqCst)
    }

    /// The claim in scope on this task, to hand to work spawned for the
    /// request (see [`IdempotencyClaim::carry`]).
    pub fn current() -> Option<Arc<Self>> {
        CLAIM.try_with(Arc::clone).ok()
    }

    /// Runs `work` with this claim in scope: its first committed write
    /// transaction records the key.
    pub async fn run<F: Future>(self: &Arc<Self>, work: F) -> F::Output {
        CLAIM.scope(self.clone(), work).await
    }

    /// Runs `work` in the scope of `claim`, if there is one: what a task
    /// spawned for a keyed request wraps its work in.
    pub async fn carry<F: Future>(claim: Option<Arc<Self>>, work: F) -> F::Output {
        match claim {
            Some(claim) => claim.run(work).await,
            None => work.await,
        }
    }

    /// Whether a write of the request recorded the key (committed or
    /// parked).
    pub fn claimed(&self) -> bool {
        matches!(self.state.load(Ordering::SeqCst), PARKED | COMMITTED)
    }

    /// Whether another request turned out to hold the key.
    pub fn lost(&self) -> bool {
        self.state.load(Ordering::SeqCst) == LOST
    }

    /// Resolves [`FLUSH_AFTER`] after a transaction was parked (never while
    /// none is).
    pub async fn parked_too_long(&self) {
        let mut parked = self.parked_at.subscribe();
        let since = parked
            .wait_for(Option::is_some)
            .await
            .map(|at| (*at).unwrap_or_else(Instant::now));
        let Ok(since) = since else {
            return std::future::pending().await;
        };
        tokio::time::sleep_until(since + FLUSH_AFTER).await;
    }

    /// Commits the transaction the request in scope on this task parked, if
    /// any: before a request opens another write transaction (so that it
    /// neither waits for the parked one on SQLite's single writer nor misses
    /// what it wrote), or before work that writes from another thread.
    pub async fn flush_current() -> StoreResult<()> {
        match Self::current() {
            Some(claim) => claim.flush().await,
            None => Ok(()),
        }
    }

    /// Commits the parked transaction now, if there is one. A batch holding
    /// the request's change is told not to wait for this request's answer,
    /// and this waits for its commit (which may still wait, up to
    /// [`FLUSH_AFTER`], for the answers of the other requests in it).
    pub async fn flush(&self) -> StoreResult<()> {
        let mut parked = self.parked.lock().await;
        match parked.take() {
            Some(Parked::Tx(mut tx)) => {
                self.parked_at.send_replace(None);
                // On failure the transaction rolls back: the key is another
                // request's, or free.
                insert_claim(&mut tx, self, None).await?;
                match tx.commit_unclaimed().await {
                    Ok(()) => self.state.store(COMMITTED, Ordering::SeqCst),
                    Err(e) => {
                        // Nothing of the request is stored: the key is free.
                        self.state.store(PENDING, Ordering::SeqCst);
                        return Err(e.into());
                    }
                }
            }
            Some(Parked::Batch(slot)) => {
                self.parked_at.send_replace(None);
                let _ = slot.answer.send(None);
                self.batch_outcome(slot.committed.await)?;
            }
            None => {}
        }
        Ok(())
    }

    /// What the request learns of its batch's commit: whether its answer
    /// was kept, or the failure that stored nothing of it (also when the
    /// batch's task ended without a word).
    fn batch_outcome(
        &self,
        committed: Result<Result<bool, String>, oneshot::error::RecvError>,
    ) -> StoreResult<bool> {
        let failure = match committed {
            Ok(Ok(kept)) => return Ok(kept),
            Ok(Err(e)) => {
                sqlx::Error::Protocol(format!("the batch holding this create failed: {e}"))
            }
            Err(_) => sqlx::Error::WorkerCrashed,
        };
        self.state.store(PENDING, Ordering::SeqCst);
        Err(StoreError::Database(failure))
    }

    /// Keeps the request's answer (`status` and the sealed body) beside its
    /// key: in the parked transaction, which then commits, or in a
    /// transaction of its own when the change already committed (or when
    /// the request committed nothing but `keep_anyway`). A failure means
    /// that nothing of a parked change was stored either.
    pub async fn finish(
        &self,
        store: &Store,
        status: i64,
        sealed_response: &str,
        keep_anyway: bool,
    ) -> StoreResult<Outcome> {
        if self.answered() {
            return Ok(Outcome::Kept);
        }
        let parked = self.parked.lock().await.take();
        if let Some(Parked::Batch(slot)) = parked {
            self.parked_at.send_replace(None);
            let _ = slot.answer.send(Some((status, sealed_response.to_owned())));
            if self.batch_outcome(slot.committed.await)? {
                return Ok(Outcome::Kept);
            }
            // The batch committed without waiting for the answer: it is
            // kept below, like the answer of a change that was flushed.
        } else if let Some(Parked::Tx(mut tx)) = parked {
            self.parked_at.send_replace(None);
            match insert_claim(&mut tx, self, Some((status, sealed_response))).await {
                Ok(()) => {}
                Err(_) if self.lost() => return Ok(Outcome::Lost),
                Err(e) => return Err(e),
            }
            if let Err(e) = tx.commit_unclaimed().await {
                self.state.store(PENDING, Ordering::SeqCst);
                return Err(e.into());
            }
            self.state.store(COMMITTED, Ordering::SeqCst);
            return Ok(Outcome::Kept);
        }
        let state = self.state.load(Ordering::SeqCst);
        if state == LOST {
            return Ok(Outcome::Lost);
        }
        if state != COMMITTED && !keep_anyway {
            return Ok(Outcome::Nothing);
        }
        store
            .save_idempotent_response(
                &self.scope,
                &self.key,
                &self.request_hash,
                status,
                sealed_response,
            )
            .await?;
        Ok(Outcome::Kept)
    }
}

/// The claim in scope on this task that no transaction has recorded yet.
pub(super) fn pending_claim() -> Option<Arc<IdempotencyClaim>> {
    IdempotencyClaim::current().filter(|claim| claim.state.load(Ordering::SeqCst) == PENDING)
}

/// Inside `tx`, before it commits: records the pending claim, if any (see
/// [`insert_claim`]).
pub(super) async fn record_claim(tx: &mut WriteTx) -> StoreResult<Option<Arc<IdempotencyClaim>>> {
    let Some(claim) = pending_claim() else {
        return Ok(None);
    };
    insert_claim(tx, &claim, None).await?;
    Ok(Some(claim))
}

/// Inserts `claim`'s key in `tx`, with the request's answer when it is
/// known. A key another request recorded first is [`Clash::KeyTaken`](super::Clash::KeyTaken) (and the
/// claim is lost); `tx` must then roll back.
async fn insert_claim(
    tx: &mut WriteTx,
    claim: &IdempotencyClaim,
    answer: Option<(i64, &str)>,
) -> StoreResult<()> {
    let inserted = sqlx::query(
        "INSERT INTO idempotency_keys (key_hash, scope, idem_key, request_hash, created_at, status, response)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(claim.key_hash)
    .bind(&claim.scope)
    .bind(&claim.key)
    .bind(&claim.request_hash)
    .bind(now())
    .bind(answer.map(|(status, _)| status))
    .bind(answer.map(|(_, response)| response))
    .execute(tx.conn())
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => {
            claim.state.store(LOST, Ordering::SeqCst);
            Err(StoreError::Conflict(super::Clash::KeyTaken))
        }
        Err(e) => {
            claim.state.store(PENDING, Ordering::SeqCst);
            Err(e.into())
        }
    }
}

/// Parks `tx`, the first transaction of `claim`'s request, until the
/// request answers (its key is inserted then, with the answer).
pub(super) async fn park(claim: &IdempotencyClaim, tx: WriteTx) {
    let mut parked = claim.parked.lock().await;
    *parked = Some(Parked::Tx(tx));
    claim.state.store(PARKED, Ordering::SeqCst);
    claim.parked_at.send_replace(Some(Instant::now()));
}

/// A batch recorded `claim`'s key with the request's create and is about to
/// hand the request its item: the request's answer (or its flush) now goes
/// to the batch, which reports its commit through [`settle_batch`].
pub(super) async fn park_in_batch(claim: &IdempotencyClaim) -> BatchWait {
    let (answer_in, answer) = oneshot::channel();
    let (committed, committed_out) = oneshot::channel();
    let mut parked = claim.parked.lock().await;
    *parked = Some(Parked::Batch(BatchSlot {
        answer: answer_in,
        committed: committed_out,
    }));
    claim.state.store(PARKED, Ordering::SeqCst);
    claim.parked_at.send_replace(Some(Instant::now()));
    BatchWait { answer, committed }
}

/// The batch holding `claim`'s create committed (`Ok(kept)`: whether with
/// the answer) or failed, in which case nothing of the request is stored.
pub(super) fn settle_batch(
    claim: &IdempotencyClaim,
    wait: BatchWait,
    result: Result<bool, String>,
) {
    let state = if result.is_ok() { COMMITTED } else { PENDING };
    claim.state.store(state, Ordering::SeqCst);
    let _ = wait.committed.send(result);
}

/// The answer `claim`'s request gives to the create of `item`, when it
/// said how it answers (see [`IdempotencyClaim::answer_creates_with`]).
pub(super) fn prepared_answer(claim: &IdempotencyClaim, item: &WorkItem) -> Option<Answer> {
    let answer = claim
        .create_answer
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    answer.as_ref().and_then(|answer| (answer.0)(item))
}

/// A batch committed `claim`'s create with its key and its answer.
pub(super) fn settle_answered(claim: &IdempotencyClaim) {
    claim.answered.store(true, Ordering::SeqCst);
    claim.state.store(COMMITTED, Ordering::SeqCst);
}

/// A batch found `claim`'s key already recorded by another request.
pub(super) fn lose(claim: &IdempotencyClaim) -> StoreError {
    claim.state.store(LOST, Ordering::SeqCst);
    StoreError::Conflict(super::Clash::KeyTaken)
}

/// Whether no write recorded `claim` yet.
pub(super) fn is_pending(claim: &IdempotencyClaim) -> bool {
    claim.state.load(Ordering::SeqCst) == PENDING
}

/// The claim's key, request digest: what a batch records.
pub(super) fn key_of(claim: &IdempotencyClaim) -> (i64, &str, &str, &str) {
    (
        claim.key_hash,
        &claim.scope,
        &claim.key,
        &claim.request_hash,
    )
}

/// What a key is found by: the first 8 bytes of the SHA-256 of its scope
/// and itself, read as a big-endian signed integer (so that PostgreSQL's
/// migration could compute it for the keys it found).
///
/// An index of these small integers costs SQLite about half what an index
/// of the scope and the key did for each key recorded. Every look-up also
/// compares the scope and the key, so two keys that share a hash (one pair
/// in 2^64; the scope is derived from a secret token, so nobody can aim
/// for it) never answer for each other: the second is refused as taken.
pub fn key_hash(scope: &str, key: &str) -> i64 {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    digest.update(scope.as_bytes());
    digest.update(b"\n");
    digest.update(key.as_bytes());
    let digest = digest.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(first)
}

/// After `tx` committed with the claim recorded.
pub(super) fn claim_committed(claim: Option<Arc<IdempotencyClaim>>) {
    if let Some(claim) = claim {
        claim.state.store(COMMITTED, Ordering::SeqCst);
    }
}

/// A stored key.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Digest of the request that claimed it.
    pub request_hash: String,
    /// The response's status, once known.
    pub status: Option<i64>,
    /// The response body, sealed, once known.
    pub response: Option<String>,
}

impl Store {
    /// The key `key` within `scope`, if a request recorded it.
    pub async fn idempotency_key(&self, scope: &str, key: &str) -> StoreResult<Option<StoredKey>> {
        let row = sqlx::query(
            "SELECT request_hash, status, response FROM idempotency_keys
             WHERE key_hash = $1 AND scope = $2 AND idem_key = $3",
        )
        .bind(key_hash(scope, key))
        .bind(scope)
        .bind(key)
        .fetch_optional(self.pool())
        .await?;
        Ok(match row {
            Some(row) => Some(StoredKey {
                request_hash: row.try_get("request_hash")?,
                status: row.try_get("status")?,
                response: row.try_get("response")?,
            }),
            None => None,
        })
    }

    /// Keeps the response to the request that used `key` (recording the key
    /// too when no write of the request did).
    async fn save_idempotent_response(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        status: i64,
        sealed_response: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO idempotency_keys (key_hash, scope, idem_key, request_hash, created_at, status, response)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (key_hash)
             DO UPDATE SET status = excluded.status, response = excluded.response
             WHERE idempotency_keys.scope = excluded.scope
               AND idempotency_keys.idem_key = excluded.idem_key
               AND idempotency_keys.request_hash = excluded.request_hash",
        )
        .bind(key_hash(scope, key))
        .bind(scope)
        .bind(key)
        .bind(request_hash)
        .bind(now())
        .bind(status)
        .bind(sealed_response)
        .execute(tx.conn())
        .await?;
        tx.commit_unclaimed().await?;
        Ok(())
    }
}
