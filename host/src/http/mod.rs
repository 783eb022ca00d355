//! The HTTP surface: `/healthz`, `/api/openapi.json` and `/api/v1/...`.
//!
//! Every API route is registered through `utoipa_axum`'s `routes!`, which
//! records the handler's `#[utoipa::path]` in the OpenAPI document as it adds
//! the route, so the document served at `/api/openapi.json` is generated from
//! the same code that routes requests.

mod audit;
mod certificates;
mod comments;
mod connection;
pub mod connections;
mod dashboards;
pub mod extract;
mod idempotency;
mod integrations;
mod invites;
mod me;
mod members;
mod metrics;
mod playbooks;
mod plugins;
mod roles;
mod scheduler;
pub mod wire;
mod work_items;
mod workspaces;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ApiError;
use crate::state::AppState;

/// The largest request body the API and the web app take, unless a route
/// says otherwise (a bulk invite's CSV, an uploaded template).
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Vigilo API",
        description = "Workspaces, members, roles, tokens and audit for a self-hosted Vigilo. \
                       Authenticate with `Authorization: Bearer vgl_...`. Every error has the \
                       body `{\"error\": {\"code\", \"message\", ...}}`."
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Builds the API router and its OpenAPI document.
pub fn api() -> (Router<AppState>, serde_json::Value) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .merge(me::router())
        .merge(workspaces::router())
        .merge(roles::router())
        .merge(members::router())
        .merge(invites::router())
        .merge(audit::router())
        .merge(plugins::router())
        .merge(metrics::router())
        .merge(work_items::router())
        .merge(comments::router())
        .merge(dashboards::router())
        .merge(certificates::router())
        .merge(scheduler::router())
        .merge(integrations::router())
        .merge(playbooks::router())
        .split_for_parts();
    let mut doc = doc;
    document_common_answers(&mut doc);
    document_idempotency_keys(&mut doc);
    let mut doc = serde_json::to_value(&doc).expect("the OpenAPI document is JSON");
    crate::domain::schemas::state_input_rules(&mut doc);
    audit::leave_out_every_chain_parameters(&mut doc);
    (router, doc)
}

/// A documented error answer: `description`, with the error body.
fn error_answer(description: &str) -> utoipa::openapi::Response {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
}

/// Every POST made with a token takes an optional `Idempotency-Key` (see
/// [`idempotency`]): a retry answers with the first response, 409 while the
/// first is still running, 422 for the key reused on another request.
fn document_idempotency_keys(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Required, Type};
    for item in doc.paths.paths.values_mut() {
        let Some(op) = item.post.as_mut() else {
            continue;
        };
        if op.security.as_ref().is_none_or(|s| s.is_empty()) {
            continue;
        }
        let key = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes a retry safe: the same key again (same token, method, path and body) \
                 answers with the first response instead of running twice. Use a new key for \
                 every new request, such as a random UUID: a key sent again with a different \
                 request is refused (422).",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .pattern(Some("^[!-~]+$")),
            ))
            .build();
        op.parameters.get_or_insert_with(Vec::new).push(key);
        for (status, description) in [
            (
                "409",
                "a conflict with what is stored, or a request with this Idempotency-Key is \
                 still running",
            ),
            (
                "422",
                "a value is invalid, or the Idempotency-Key is malformed or was used for \
                 another request",
            ),
        ] {
            op.responses
                .responses
                .entry(status.to_owned())
                .or_insert_with(|| error_answer(description).into());
        }
    }
}

/// Adds to every operation the answers its extractors give whatever the
/// handler does, so the document lists every status the server returns:
/// 400 (a body that is not JSON, a path or query parameter of the wrong
/// type), 413 and 415 (a body too large or not JSON), 422 (a body that is
/// not an object or holds a NUL character, a NUL character in the URL),
/// 401 and 403 (with a token), 404 (a path naming something). A wildcard
/// path (`{*path}`) is published as the plain parameter OpenAPI knows.
fn document_common_answers(doc: &mut utoipa::openapi::OpenApi) {
    let answer = error_answer;
    let paths = std::mem::take(&mut doc.paths.paths);
    for (path, mut item) in paths {
        let has_path_params = path.contains('{');
        for op in [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ]
        .into_iter()
        .flatten()
        {
            let has_body = op.request_body.is_some();
            let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let mut add = |status: &str, description: &str| {
                op.responses
                    .responses
                    .entry(status.to_owned())
                    .or_insert_with(|| answer(description).into());
            };
            if has_body {
                add("400", "the body is not valid JSON (or cannot be read)");
                add("413", "the body is too large");
                add("415", "the body is not sent as `application/json`");
            }
            if has_params {
                add("400", "a path or query parameter has the wrong type");
            }
            if has_body || has_params {
                add(
                    "422",
                    "a value is invalid: the body is not an object, has wrong or unknown \
                     fields, or a text holds a NUL character",
                );
            }
            if secured {
                add("401", "no usable token");
                add("403", "the token's holder lacks a role or permission");
            }
            if has_path_params {
                add("404", "no such resource, or not visible to the caller");
            }
        }
        doc.paths.paths.insert(path.replace("{*", "{"), item);
    }
}

/// The whole application router, without a socket.
pub fn app(state: AppState) -> Router {
    let (api_router, doc) = api();
    let doc = Arc::new(doc);
    Router::new()
        .route(
            "/api/openapi.json",
            get(move || {
                let doc = doc.clone();
                async move { Json(doc.as_ref().clone()) }
            }),
        )
        .merge(crate::web::router())
        .merge(crate::web::dev_router(
            !state.config.dev_frontend.is_empty(),
        ))
        .merge(api_router.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        )))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::web::error_pages_keep_the_header,
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
        .layer(axum::middleware::from_fn(connections::request_limits))
        .layer(axum::middleware::from_fn(crate::web::security_headers))
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

/// Whether `path` is answered by the API side (JSON errors): `/api/...`,
/// and plugins' frontend files (`/plugins/NAME/assets/...`).
pub fn api_side(path: &str) -> bool {
    path.starts_with("/api/")
        || path == "/api"
        || (path.starts_with("/plugins/") && path.split('/').nth(3) == Some("assets"))
}

/// Refuses a NUL character anywhere in the URL's path or query string with
/// a 422 (see [`crate::input`]) before any handler runs, and gives the
/// framework's own answers (an empty 405, a plain-text rejection of a path
/// parameter, a query or a form) the API's error body or the web app's
/// error page, so that no answer names a Rust type.
async fn url_rules_and_error_shape(req: Request, next: axum::middleware::Next) -> Response {
    let is_api = api_side(req.uri().path());
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
            crate::web::PageError::Domain(crate::domain::DomainError::Invalid { field, message })
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
        crate::web::PageError::NotFound("There is no page at this address.".into()).into_response()
    } else {
        crate::web::PageError::Refused(status).into_response()
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
    if api_side(uri.path()) {
        ApiError::NotFound("no such endpoint; see /api/openapi.json".into()).into_response()
    } else {
        crate::web::not_found().await
    }
}

/// Liveness answer.
#[derive(Serialize, ToSchema)]
struct Health {
    /// Always `ok`.
    status: &'static str,
    /// The server's version (`VIGILO_VERSION`).
    version: &'static str,
}

/// Liveness check: 200 once the server serves.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health {
        status: "ok",
        version: crate::plugins::VIGILO_VERSION,
    })
}
