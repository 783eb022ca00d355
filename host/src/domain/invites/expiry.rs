//! Invites past their expiry: closed (so their addresses can be invited
//! again) and audited as `invite.expire` by the system actor, a batch per
//! transaction; before a new invite to the same address, before a bulk
//! invite, and every hour for every workspace.

use serde_json::json;

use crate::audit::{Actor, NewEvent};
use crate::domain::DomainResult;
use crate::store::invites::Expiring;
use crate::store::{self, WriteTx};

/// How many expired invites one transaction closes: each is a write and an
/// audit event, and the writer is not held long for them.
const EXPIRE_BATCH: i64 = 200;

/// Closes up to [`EXPIRE_BATCH`] open invites past their expiry, each
/// audited as `invite.expire` by the system actor, in `tx`; returns how
/// many.
pub(super) async fn expire(tx: &mut WriteTx, which: Expiring<'_>) -> DomainResult<usize> {
    let expired = store::invites::close_expired_invites(tx, which, EXPIRE_BATCH).await?;
    for invite in &expired {
        crate::store::audit::append(
            tx,
            &Actor::system(),
            NewEvent::new(
                Some(invite.workspace_id),
                "invite.expire",
                &invite.email,
                json!({"invite_id": invite.id}),
            ),
        )
        .await?;
    }
    Ok(expired.len())
}

/// Closes the open invites past their expiry (of one workspace, or of
/// all), [`EXPIRE_BATCH`] per transaction; returns how many.
pub(super) async fn expire_in_batches(
    store: &crate::store::Store,
    workspace_id: Option<i64>,
) -> DomainResult<usize> {
    let which = match workspace_id {
        Some(ws) => Expiring::Workspace(ws),
        None => Expiring::Everywhere,
    };
    let mut total = 0;
    loop {
        let mut tx = store.begin_write().await?;
        let expired = expire(&mut tx, which).await?;
        tx.commit().await?;
        total += expired;
        if expired < EXPIRE_BATCH as usize {
            return Ok(total);
        }
    }
}

/// Closes every open invite past its expiry, in every workspace, each
/// audited as `invite.expire` (the hourly task); returns how many.
pub async fn expire_everywhere(store: &crate::store::Store) -> DomainResult<usize> {
    expire_in_batches(store, None).await
}
