//! Vigilo's end-to-end suite: one test binary, a module per area. Every
//! scenario runs against a real server on `127.0.0.1:0`, on a fresh SQLite
//! file and (when `VIGILO_TEST_POSTGRES_URL` is set) a fresh PostgreSQL
//! database, and the CLI tests drive the real `vigilo` binary.

mod audit;
mod authz;
mod bad_input;
mod bulk_moves;
mod bundles;
mod certificates;
mod cli;
mod domain;
mod domain_batches;
mod domain_sessions;
mod egress;
mod guide;
mod hardening;
mod host_api;
mod idempotency;
mod integrations;
mod lists;
mod members;
mod metrics;
mod openapi;
mod phone;
mod plugin_runtime;
mod plugins;
mod previous_sdk;
mod scaffold;
mod scheduler;
mod server_process;
mod sign_in;
mod team;
mod tier_moves;
mod tile_options;
mod time_zones;
mod tokens;
mod web;
mod web_admin;
mod web_tiles;
mod work_items;
mod workers;
mod workspaces;

use serde_json::{json, Value};
use vigilo_tests::{expect, Api, TestServer, WebSession};

/// A user invited into `slug` with `role` (or a custom role when `custom`),
/// who accepted; returns their first API token.
pub fn join(server: &TestServer, slug: &str, email: &str, role: &str, custom: bool) -> String {
    let body = if custom {
        json!({"email": email, "custom_role": role})
    } else {
        json!({"email": email, "role": role})
    };
    let invite = server
        .admin()
        .create(&format!("/api/v1/workspaces/{slug}/invites"), body);
    let token = invite["accept_token"].as_str().unwrap();
    let accepted = server.anonymous().post(
        &format!("/api/v1/invites/{token}/accept"),
        json!({"name": email.split('@').next().unwrap()}),
    );
    expect(&accepted, 201)["token"]["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Creates a workspace as the platform admin.
pub fn create_workspace(admin: &Api, slug: &str) -> Value {
    admin.create(
        "/api/v1/workspaces",
        json!({"name": slug.to_uppercase(), "slug": slug, "region": "us"}),
    )
}

/// Number of audit events in every chain.
pub fn audit_count(server: &TestServer) -> i64 {
    server.db.number("SELECT COUNT(*) FROM audit_events")
}

/// Gives the platform admin `root@example.com` (named Root) the password
/// [`web::PASSWORD`].
pub fn root_with_password(server: &TestServer) {
    vigilo_tests::block_on(vigilo_host::create_admin_with_password(
        &server.config,
        "root@example.com",
        Some("Root"),
        Some(web::PASSWORD),
    ))
    .expect("an admin with a password");
}

/// Gives the platform admin `admin@example.com` the password
/// [`web::PASSWORD`] and signs them in as a browser would.
pub fn admin_web_session(server: &TestServer) -> WebSession {
    vigilo_tests::block_on(vigilo_host::create_admin_with_password(
        &server.config,
        "admin@example.com",
        None,
        Some(web::PASSWORD),
    ))
    .expect("the admin's password");
    WebSession::sign_in(&server.url, "admin@example.com", web::PASSWORD)
}

/// The page at `path`, which must answer 200.
#[track_caller]
pub fn show(web: &WebSession, path: &str) -> String {
    let (status, page) = web.page(path);
    assert_eq!(status, 200, "{path}: {page}");
    page
}

/// The CSRF token of the first form on `page`.
pub fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a form with a CSRF token")
        .to_owned()
}
