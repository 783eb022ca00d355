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

use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub use crate::edge::BODY_LIMIT;

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

/// The API's routes (`/healthz`, `/api/v1/...`) with `Idempotency-Key`
/// handling, and its OpenAPI document at `/api/openapi.json`.
pub fn router(state: &AppState) -> Router<AppState> {
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
        .merge(api_router.layer(axum::middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        )))
}

/// Whether `path` is answered by the API side (JSON errors): `/api/...`,
/// and plugins' frontend files (`/plugins/NAME/assets/...`).
pub fn api_side(path: &str) -> bool {
    path.starts_with("/api/")
        || path == "/api"
        || (path.starts_with("/plugins/") && path.split('/').nth(3) == Some("assets"))
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
