//! Idempotency keys: what a create request with an `Idempotency-Key`
//! header left behind, so that the same request sent again answers with the
//! first response instead of running twice.
//!
//! The key is recorded *in the request's first write transaction*
//! ([`WriteTx::commit`] inserts it while an [`IdempotencyClaim`] is in scope),
//! so a request that committed anything always left its key, even when the
//! server died before it could answer; the response is added afterwards.
//! Two requests racing with one key cannot both commit: the second one's
//! insert breaks the primary key and its transaction rolls back.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sqlx::Row;

use super::{now, Store, StoreResult, WriteTx};

tokio::task_local! {
    static CLAIM: Arc<IdempotencyClaim>;
}

/// The key a request carries, claimed by the first write it commits.
#[derive(Debug)]
pub struct IdempotencyClaim {
    scope: String,
    key: String,
    request_hash: String,
    claimed: AtomicBool,
}

impl IdempotencyClaim {
    /// A claim of `key` within `scope` (the token it was sent with) for the
    /// request whose digest is `request_hash`.
    pub fn new(scope: String, key: String, request_hash: String) -> Arc<Self> {
        Arc::new(IdempotencyClaim {
            scope,
            key,
            request_hash,
            claimed: AtomicBool::new(false),
        })
    }

    /// Runs `work` with this claim in scope: its first committed write
    /// transaction records the key.
    pub async fn run<F: Future>(self: &Arc<Self>, work: F) -> F::Output {
        CLAIM.scope(self.clone(), work).await
    }

    /// Whether a write transaction committed with the key recorded.
    pub fn claimed(&self) -> bool {
        self.claimed.load(Ordering::SeqCst)
    }
}

/// The claim in scope on this task that no transaction has recorded yet.
fn pending_claim() -> Option<Arc<IdempotencyClaim>> {
    CLAIM
        .try_with(|claim| claim.clone())
        .ok()
        .filter(|claim| !claim.claimed())
}

/// Inside `tx`, before it commits: records the pending claim, if any.
pub(super) async fn record_claim(
    tx: &mut WriteTx,
) -> Result<Option<Arc<IdempotencyClaim>>, sqlx::Error> {
    let Some(claim) = pending_claim() else {
        return Ok(None);
    };
    sqlx::query(
        "INSERT INTO idempotency_keys (scope, idem_key, request_hash, created_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&claim.scope)
    .bind(&claim.key)
    .bind(&claim.request_hash)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(Some(claim))
}

/// After the transaction committed: the claim is recorded.
pub(super) fn claim_committed(claim: Option<Arc<IdempotencyClaim>>) {
    if let Some(claim) = claim {
        claim.claimed.store(true, Ordering::SeqCst);
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
             WHERE scope = $1 AND idem_key = $2",
        )
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
    pub async fn save_idempotent_response(
        &self,
        scope: &str,
        key: &str,
        request_hash: &str,
        status: i64,
        sealed_response: &str,
    ) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO idempotency_keys (scope, idem_key, request_hash, created_at, status, response)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (scope, idem_key)
             DO UPDATE SET status = excluded.status, response = excluded.response",
        )
        .bind(scope)
        .bind(key)
        .bind(request_hash)
        .bind(now())
        .bind(status)
        .bind(sealed_response)
        .execute(&mut *tx)
        .await?;
        tx.commit_unclaimed().await?;
        Ok(())
    }
}
