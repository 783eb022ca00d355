//! `Idempotency-Key` on the API's POSTs: a client that did not hear back
//! from a create sends it again with the same key and gets the first
//! response, and nothing is created twice.
//!
//! Keys belong to the API token they were sent with (requests without a
//! bearer token are not covered). The first write the request commits
//! records the key in the same transaction (see
//! [`crate::store::IdempotencyClaim`]); once the handler has answered, its
//! response is kept beside the key, sealed (a created token's secret is in
//! it). The same key again:
//!
//! - with the same method, path and body: the first response, with
//!   `Idempotent-Replayed: true`;
//! - with a different request: 422 naming `Idempotency-Key`;
//! - while the first request is still running (or when the server stopped
//!   after it committed but before it answered): 409, and it does not run
//!   again.
//!
//! A request that failed without committing anything leaves no key, so
//! sending it again runs it again. Keys are pruned with the other records
//! after `record_retention_days`.

use std::time::Duration;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{IdempotencyClaim, StoredKey};

/// The request header.
pub const HEADER: &str = "idempotency-key";

/// The largest request body a keyed request may have (the API's limit for
/// every route that takes a key).
const REQUEST_LIMIT: usize = 16 * 1024 * 1024;

/// The largest response kept for replay.
const RESPONSE_LIMIT: usize = 4 * 1024 * 1024;

/// How long a retry waits for the first request's response.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);

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
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, REQUEST_LIMIT).await else {
        return ApiError::PayloadTooLarge(format!(
            "the request body is larger than {} MiB",
            REQUEST_LIMIT / (1024 * 1024)
        ))
        .into_response();
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
    match state.store.idempotency_key(&scope, &key).await {
        Ok(Some(found)) => return replay(&state, &scope, &key, &request_hash, found).await,
        Ok(None) => {}
        Err(e) => return ApiError::from(e).into_response(),
    }

    let claim = IdempotencyClaim::new(scope.clone(), key.clone(), request_hash.clone());
    let response = claim
        .run(next.run(Request::from_parts(parts, Body::from(bytes))))
        .await;
    if !response.status().is_success() && !claim.claimed() {
        // Nothing of this request was committed. If another request with
        // the same key committed meanwhile, answer as it did.
        if let Ok(Some(found)) = state.store.idempotency_key(&scope, &key).await {
            return replay(&state, &scope, &key, &request_hash, found).await;
        }
        return response;
    }
    let (response_parts, response_body) = response.into_parts();
    let Ok(body) = to_bytes(response_body, RESPONSE_LIMIT).await else {
        tracing::warn!("a keyed response was too large to keep for replay");
        return ApiError::Internal("a keyed response was too large to keep".into()).into_response();
    };
    match std::str::from_utf8(&body) {
        Ok(text) => {
            let sealed = state.secrets.seal(&seal_context(&scope, &key), text);
            let status = i64::from(response_parts.status.as_u16());
            if let Err(e) = state
                .store
                .save_idempotent_response(&scope, &key, &request_hash, status, &sealed)
                .await
            {
                tracing::warn!(error = %e, "cannot keep a keyed response for replay");
            }
        }
        Err(_) => tracing::warn!("a keyed response is not text and is not kept for replay"),
    }
    Response::from_parts(response_parts, Body::from(body))
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
    let started = tokio::time::Instant::now();
    while found.response.is_none() && started.elapsed() < WAIT_FOR_FIRST {
        tokio::time::sleep(Duration::from_millis(100)).await;
        match state.store.idempotency_key(scope, key).await {
            Ok(Some(again)) => found = again,
            Ok(None) => break,
            Err(e) => return ApiError::from(e).into_response(),
        }
    }
    let (Some(status), Some(sealed)) = (found.status, found.response) else {
        return ApiError::Conflict(
            "a request with this Idempotency-Key was already carried out, and its response \
             is not available (it is still running, or the server stopped before answering); \
             it will not run again: look the result up instead"
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
