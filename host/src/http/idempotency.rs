//! `Idempotency-Key` on the API's POSTs: a client that did not hear back
//! from a request sends it again with the same key and gets the first
//! response, and nothing runs twice.
//!
//! Keys belong to the API token they were sent with (requests without a
//! bearer token are not covered). The token is checked before a byte of
//! the body is read, and the body is read up to the route's size limit
//! only. The first write the request commits records the key in the same
//! transaction, and the response is stored in that transaction too, sealed
//! (a created token's secret is in it) — see
//! [`crate::store::IdempotencyClaim`]. The same key again:
//!
//! - with the same method, path and body: the first response, with
//!   `Idempotent-Replayed: true`, also after the server was killed and
//!   restarted between the commit and the answer;
//! - while the first request is still running on this server: waits for it
//!   (up to [`WAIT_FOR_FIRST`]) and answers as it did;
//! - with a different request: 422 naming `Idempotency-Key`;
//! - for a request that made several commits (a playbook run, a task run)
//!   and whose server stopped in the middle of it: 409, and it does not run
//!   again.
//!
//! A work item create is not looked up first: the batch that writes it
//! records its key and finds a key used before, and the request then
//! answers as above. Its answer is a function of the item, so the batch
//! keeps it with the change without waiting for the handler
//! ([`answer_created`]).
//!
//! A keyed request runs to its end even if its client goes away, so that a
//! retry finds its answer. A request that failed without committing
//! anything leaves no key, so sending it again runs it again. Keys are
//! pruned with the other records after `record_retention_days`.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::work_items::WorkItem;
use crate::store::{Backend, IdempotencyClaim, KeyOutcome, StoredKey};

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The largest response kept for replay.
const RESPONSE_LIMIT: usize = 16 * 1024 * 1024;

/// The route that creates a work item, whose key is not looked up first
/// (its handler says how it answers, with [`answer_created`]).
const CREATE_ROUTE: &str = "/api/v1/workspaces/{slug}/items";

/// How long a retry waits for the first request with its key to finish.
pub const WAIT_FOR_FIRST: Duration = Duration::from_secs(30);

/// How long a retry waits for an answer being written by another server
/// (PostgreSQL with several servers).
const WAIT_FOR_OTHER_SERVER: Duration = Duration::from_secs(10);

/// The turns of the keys being run on this server, by (scope, key).
type Turns = HashMap<(String, String), Weak<tokio::sync::Mutex<()>>>;

/// Keys being run on this server: a second request with the same key waits
/// for the first one's turn to end, then answers as it did.
static RUNNING: LazyLock<Mutex<Turns>> = LazyLock::new(Default::default);

/// The turn of `(scope, key)` on this server, once no other request with the
/// key runs here; None when the wait is longer than [`WAIT_FOR_FIRST`].
async fn turn(scope: &str, key: &str) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    let lock = {
        let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
        running.retain(|_, lock| lock.strong_count() > 0);
        let id = (scope.to_owned(), key.to_owned());
        match running.get(&id).and_then(Weak::upgrade) {
            Some(lock) => lock,
            None => {
                let lock = Arc::new(tokio::sync::Mutex::new(()));
                running.insert(id, Arc::downgrade(&lock));
                lock
            }
        }
    };
    tokio::time::timeout(WAIT_FOR_FIRST, lock.lock_owned())
        .await
        .ok()
}

/// The largest body a keyed request to `route` may have: the route's own
/// limit (the API's, but for the CSV upload of a bulk invite).
fn body_limit(route: Option<&MatchedPath>) -> usize {
    match route.map(MatchedPath::as_str) {
        Some(super::invites::BULK_ROUTE) => super::invites::CSV_LIMIT,
        _ => super::BODY_LIMIT,
    }
}

/// The middleware.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = request.headers().get(HEADER) else {
        return next.run(request).await;
    };
    let key = match key.to_str() {
        Ok(k) if valid_key(k) => k.to_owned(),
        _ => {
            return ApiError::Validation {
                field: Some("Idempotency-Key".into()),
                message: "`Idempotency-Key` must be 1 to 255 visible ASCII characters".into(),
            }
            .into_response()
        }
    };
    let Some(scope) = bearer(&request).map(crate::secrets::hash) else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    // Who is asking is settled before any of the body is read; the handler
    // reuses the answer.
    match super::extract::authenticate(&parts, &state).await {
        Ok(principal) => {
            parts.extensions.insert(principal);
        }
        Err(refused) => return refused.into_response(),
    }
    let limit = body_limit(parts.extensions.get::<MatchedPath>());
    let bytes = match to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(e) => return body_refusal(&e, limit),
    };
    let request_hash = {
        let mut digest = Sha256::new();
        digest.update(parts.method.as_str());
        digest.update(b"\n");
        digest.update(
            parts
                .uri
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or_default(),
        );
        digest.update(b"\n");
        digest.update(&bytes);
        hex::encode(digest.finalize())
    };
    let Some(turn) = turn(&scope, &key).await else {
        return still_running();
    };
    // A create needs no look first: the batch that writes it records its
    // key, and finds a key used before, and the request then answers as
    // the first one did (see `keep`).
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    if route != Some(CREATE_ROUTE) {
        match state.store.idempotency_key(&scope, &key).await {
            Ok(Some(found)) => return replay(&state, &scope, &key, &request_hash, found).await,
            Ok(None) => {}
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    // The request finishes and its answer is kept even if the client goes
    // away.
    ToTheEnd::new(async move {
        let _turn = turn;
        let claim = IdempotencyClaim::new(scope.clone(), key.clone(), request_hash.clone());
        let response = run_claimed(&claim, next.run(request)).await;
        keep(&state, &claim, &scope, &key, &request_hash, response).await
    })
    .await
}

/// Work that runs to its end whether or not anyone still waits for it: in
/// the waiting task while it is awaited (no task of its own, no hand-over
/// between threads), and on a task of its own from the moment its waiter
/// is dropped (a client that went away).
struct ToTheEnd<F: Future<Output = Response> + Send + 'static>(Option<Pin<Box<F>>>);

impl<F: Future<Output = Response> + Send + 'static> ToTheEnd<F> {
    fn new(work: F) -> Self {
        ToTheEnd(Some(Box::pin(work)))
    }
}

impl<F: Future<Output = Response> + Send + 'static> Future for ToTheEnd<F> {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let Some(work) = self.0.as_mut() else {
            return Poll::Pending;
        };
        let response = std::task::ready!(work.as_mut().poll(cx));
        self.0 = None;
        Poll::Ready(response)
    }
}

impl<F: Future<Output = Response> + Send + 'static> Drop for ToTheEnd<F> {
    fn drop(&mut self) {
        if let Some(work) = self.0.take() {
            // Without a runtime (it is shutting down), nothing can finish.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(work);
            }
        }
    }
}

/// For a handler that creates one work item and answers `status` with
/// `render(item)` as JSON: lets the batch that writes the item keep that
/// answer beside the request's key at once, instead of waiting for it (see
/// [`IdempotencyClaim::answer_creates_with`]). Does nothing without a key.
pub(super) fn answer_created<T: serde::Serialize>(
    state: &AppState,
    status: StatusCode,
    render: impl Fn(&WorkItem) -> T + Send + Sync + 'static,
) {
    let Some(claim) = IdempotencyClaim::current() else {
        return;
    };
    let secrets = state.secrets.clone();
    let context = seal_context(claim.scope(), claim.key());
    claim.answer_creates_with(move |item| {
        let body = serde_json::to_string(&render(item)).ok()?;
        Some((i64::from(status.as_u16()), secrets.seal(&context, &body)))
    });
}

/// Runs `work` with `claim` in scope, committing a transaction it parked if
/// the answer is slow to come. When that commit fails, nothing of the
/// request is stored, and its answer says so instead of what the handler
/// answered.
async fn run_claimed(
    claim: &Arc<IdempotencyClaim>,
    work: impl std::future::Future<Output = Response>,
) -> Response {
    let work = claim.run(work);
    tokio::pin!(work);
    let mut failed = None;
    loop {
        tokio::select! {
            response = &mut work => {
                return match failed {
                    Some(e) if !claim.claimed() => ApiError::Internal(format!(
                        "cannot commit a keyed request's change: {e}"
                    ))
                    .into_response(),
                    _ => response,
                };
            }
            () = claim.parked_too_long() => {
                if let Err(e) = claim.flush().await {
                    tracing::warn!(error = %e, "cannot commit a keyed request's change");
                    failed = Some(e);
                }
            }
        }
    }
}

/// Stores the answer beside the key (with the change, when it waits to be
/// committed) and returns it, or the first request's answer when another
/// request turned out to hold the key.
async fn keep(
    state: &AppState,
    claim: &IdempotencyClaim,
    scope: &str,
    key: &str,
    request_hash: &str,
    response: Response,
) -> Response {
    if claim.lost() {
        return replay_stored(state, scope, key, request_hash).await;
    }
    if claim.answered() {
        // Kept with the change, by the batch that wrote it.
        return response;
    }
    let success = response.status().is_success();
    if !success && !claim.claimed() {
        // Nothing of this request was committed (the parked transaction, if
        // any, rolls back). If another server's request with the same key
        // committed meanwhile, answer as it did.
        if let Ok(Some(found)) = state.store.idempotency_key(scope, key).await {
            return replay(state, scope, key, request_hash, found).await;
        }
        return response;
    }
    let (response_parts, response_body) = response.into_parts();
    let body = match to_bytes(response_body, RESPONSE_LIMIT).await {
        Ok(body) => body,
        Err(_) => {
            tracing::warn!("a keyed response was too large to keep for replay");
            if let Err(e) = claim.flush().await {
                return ApiError::Internal(format!("cannot commit a keyed request: {e}"))
                    .into_response();
            }
            return ApiError::Internal("a keyed response was too large to keep".into())
                .into_response();
        }
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        tracing::warn!("a keyed response is not text and is not kept for replay");
        if let Err(e) = claim.flush().await {
            return ApiError::Internal(format!("cannot commit a keyed request: {e}"))
                .into_response();
        }
        return Response::from_parts(response_parts, Body::from(body));
    };
    let sealed = state.secrets.seal(&seal_context(scope, key), text);
    let status = i64::from(response_parts.status.as_u16());
    match claim.finish(&state.store, status, &sealed, success).await {
        Ok(KeyOutcome::Kept | KeyOutcome::Nothing) => {}
        Ok(KeyOutcome::Lost) => return replay_stored(state, scope, key, request_hash).await,
        Err(e) if claim.claimed() => {
            // The change is stored; only its answer is not.
            tracing::warn!(error = %e, "cannot keep a keyed response for replay");
        }
        Err(e) => {
            return ApiError::Internal(format!(
                "cannot commit a keyed request with its answer: {e}"
            ))
            .into_response()
        }
    }
    Response::from_parts(response_parts, Body::from(body))
}

/// The stored answer for a key another request holds.
async fn replay_stored(state: &AppState, scope: &str, key: &str, request_hash: &str) -> Response {
    match state.store.idempotency_key(scope, key).await {
        Ok(Some(found)) => replay(state, scope, key, request_hash, found).await,
        Ok(None) => still_running(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// 409: the request with this key is still running.
fn still_running() -> Response {
    ApiError::Conflict(
        "a request with this Idempotency-Key is still running; send it again later to get \
         its answer"
            .into(),
    )
    .into_response()
}

/// The answer to a key that was used before.
async fn replay(
    state: &AppState,
    scope: &str,
    key: &str,
    request_hash: &str,
    mut found: StoredKey,
) -> Response {
    if found.request_hash != request_hash {
        return ApiError::Validation {
            field: Some("Idempotency-Key".into()),
            message: "this Idempotency-Key was already used for a different request \
                      (another method, path or body); send a new key"
                .into(),
        }
        .into_response();
    }
    // No request with this key runs on this server (the caller holds its
    // turn), so an answer still missing is being written by another server,
    // or never will be: on SQLite, the only server is this one.
    if state.store.backend() == Backend::Postgres {
        let started = tokio::time::Instant::now();
        while found.response.is_none() && started.elapsed() < WAIT_FOR_OTHER_SERVER {
            tokio::time::sleep(Duration::from_millis(100)).await;
            match state.store.idempotency_key(scope, key).await {
                Ok(Some(again)) => found = again,
                Ok(None) => break,
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
    }
    let (Some(status), Some(sealed)) = (found.status, found.response) else {
        return ApiError::Conflict(
            "a request with this Idempotency-Key was already carried out, and its response \
             is not available (the server stopped before answering); it will not run again: \
             look the result up instead"
                .into(),
        )
        .into_response();
    };
    let body = match state.secrets.open(&seal_context(scope, key), &sealed) {
        Ok(body) => body,
        Err(e) => {
            return ApiError::Internal(format!("cannot open a kept response: {e}")).into_response()
        }
    };
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// The answer to a body that could not be read: 413 over the limit, else
/// 400 (a body that stopped arriving is answered by the connection's
/// body-read timeout).
fn body_refusal(e: &axum::Error, limit: usize) -> Response {
    let too_large =
        std::error::Error::source(e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
    if too_large {
        ApiError::PayloadTooLarge(format!(
            "the request body is larger than {} MiB",
            limit / (1024 * 1024)
        ))
        .into_response()
    } else {
        ApiError::bad_request("bad_request", "the request body could not be read").into_response()
    }
}

/// What a kept response is sealed to, so it opens only for its own key.
fn seal_context(scope: &str, key: &str) -> String {
    format!("idempotency:{scope}:{key}")
}

/// 1 to 255 visible ASCII characters.
fn valid_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic())
}

/// The bearer token the request carries, if any.
fn bearer(request: &Request) -> Option<&str> {
    let header = request.headers().get(AUTHORIZATION)?.to_str().ok()?;
    header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::valid_key;

    #[test]
    fn keys_are_visible_ascii_up_to_255() {
        assert!(valid_key("4f1c2a"));
        assert!(valid_key(&"k".repeat(255)));
        assert!(!valid_key(""));
        assert!(!valid_key(&"k".repeat(256)));
        assert!(!valid_key("has space"));
        assert!(!valid_key("naïve"));
    }
}
