//! The whole application: the API ([`crate::http`]) and the web app
//! ([`crate::web`]) side by side on one router, under the layers every
//! answer passes (URL rules, error shapes, body limit, tracing, connection
//! limits, security headers).

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::trace::TraceLayer;

use crate::edge::BODY_LIMIT;
use crate::error::ApiError;
use crate::state::AppState;
use crate::{http, web};

/// The whole application router, without a socket.
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(http::router(&state))
        .merge(web::router())
        .merge(web::dev_router(!state.config.dev_frontend.is_empty()))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            web::error_pages_keep_the_header,
        ))
        .layer(axum::middleware::from_fn(url_rules_and_error_shape))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(
            // Spans name the matched route template (`/api/v1/invites/{token}/accept`),
            // never the raw URI, which may carry a secret.
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let route = req
                        .extensions()
                        .get::<MatchedPath>()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_else(|| "<unmatched>".into());
                    tracing::info_span!("request", method = %req.method(), route = %route)
                })
                .on_failure(log_failure),
        )
        .layer(axum::middleware::from_fn(|request, next| {
            http::connections::request_limits(request, next, || {
                web::PageError::TimedOut.into_response()
            })
        }))
        .layer(axum::middleware::from_fn(crate::edge::security_headers))
        .with_state(state)
}

/// Logs an answer in the 5xx range below ERROR: an internal error was
/// logged at ERROR with its detail where it happened; a plugin's failure
/// is a warning; `503` (the server shutting down, a plugin not loaded) is
/// expected and only logged at debug level.
fn log_failure(
    class: tower_http::classify::ServerErrorsFailureClass,
    latency: std::time::Duration,
    _span: &tracing::Span,
) {
    use tower_http::classify::ServerErrorsFailureClass as Class;
    let latency_ms = latency.as_millis();
    match class {
        Class::StatusCode(status) if status == StatusCode::SERVICE_UNAVAILABLE => {
            tracing::debug!(%status, latency_ms, "request answered 503");
        }
        Class::StatusCode(status) => {
            tracing::warn!(%status, latency_ms, "request failed");
        }
        Class::Error(error) => tracing::warn!(%error, latency_ms, "request failed"),
    }
}

/// Refuses a NUL character anywhere in the URL's path or query string with
/// a 422 (see [`crate::input`]) before any handler runs, and gives the
/// framework's own answers (an empty 405, a plain-text rejection of a path
/// parameter, a query or a form) the API's error body or the web app's
/// error page, so that no answer names a Rust type.
async fn url_rules_and_error_shape(req: Request, next: axum::middleware::Next) -> Response {
    let is_api = http::api_side(req.uri().path());
    let nul = if crate::input::path_has_nul(req.uri().path()) {
        Some(None)
    } else {
        req.uri().query().and_then(|q| {
            crate::input::pairs::<Vec<(String, String)>>(q.as_bytes())
                .err()
                .filter(|r| r.nul)
                .map(|r| r.field)
        })
    };
    if let Some(field) = nul {
        let message = match &field {
            Some(f) => crate::input::nul_message(f),
            None => "the URL path contains a NUL character (%00), which is not allowed".into(),
        };
        return if is_api {
            ApiError::Validation { field, message }.into_response()
        } else {
            web::PageError::Domain(crate::domain::DomainError::Invalid { field, message })
                .into_response()
        };
    }
    let method = req.method().clone();
    let response = next.run(req).await;
    if is_api
        && response.status() == StatusCode::METHOD_NOT_ALLOWED
        && !response.headers().contains_key(CONTENT_TYPE)
    {
        // The router adds `Allow` on the way out, after this layer.
        let (mut parts, _) = response.into_parts();
        let body = ApiError::MethodNotAllowed(format!(
            "this endpoint does not accept {method}; the `Allow` header lists the methods it does"
        ))
        .into_response();
        let (body_parts, body) = body.into_parts();
        parts.headers.extend(body_parts.headers);
        return Response::from_parts(parts, body);
    }
    let plain_text = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    let bare = !response.headers().contains_key(CONTENT_TYPE);
    let status = response.status();
    if !(status.is_client_error() && (plain_text || bare)) {
        return response;
    }
    // The framework's own refusal: keep its status (and `Allow`), not its
    // words.
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let bad_path = text.starts_with(b"Invalid URL");
    let mut shaped = if is_api {
        let message = if bad_path {
            "a path parameter is not valid"
        } else {
            "the request could not be read"
        };
        let mut answer = ApiError::bad_request("bad_request", message).into_response();
        *answer.status_mut() = status;
        answer
    } else if bad_path || status == StatusCode::NOT_FOUND {
        web::PageError::NotFound("There is no page at this address.".into()).into_response()
    } else {
        web::PageError::Refused(status).into_response()
    };
    if let Some(allow) = parts.headers.get(axum::http::header::ALLOW) {
        shaped
            .headers_mut()
            .insert(axum::http::header::ALLOW, allow.clone());
    }
    shaped
}

/// What a path that nothing answers gets: the API's JSON 404 under `/api`,
/// the web app's page elsewhere.
async fn fallback(uri: axum::http::Uri) -> axum::response::Response {
    if http::api_side(uri.path()) {
        ApiError::NotFound("no such endpoint; see /api/openapi.json".into()).into_response()
    } else {
        web::not_found().await
    }
}
