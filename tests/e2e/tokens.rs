//! API tokens: shown once, stored hashed, expiry, revocation, last use, and
//! carrying exactly their holder's permissions.

use std::time::Duration;

use serde_json::json;
use vigilo_tests::json::find;
use vigilo_tests::{expect, on_both_databases, TestDb, TestServer};

use crate::{create_workspace, join};

fn token_lifecycle(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    let created = admin.create(
        "/api/v1/tokens",
        json!({"name": "ci", "expires_in_seconds": 3600}),
    );
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("vgl_") && token.len() == 68, "{token}");
    assert_eq!(created["status"], "active");
    assert!(created["expires_at"].is_string());

    // Stored only as a hash: the plaintext appears nowhere in the database.
    let stored = server.db.dump_text();
    assert!(!stored.contains(&token[4..]), "token stored in the clear");
    let hashes = server.db.column("SELECT token_hash FROM api_tokens");
    assert!(hashes
        .iter()
        .flatten()
        .all(|h| h.len() == 64 && !token.contains(h.as_str())));

    // Using it records the last use; listings never show the secret.
    let api = server.api(&token);
    expect(&api.get("/api/v1/me"), 200);
    let list = expect(&admin.get("/api/v1/tokens"), 200).clone();
    let listed = find(&list["tokens"], "id", created["id"].clone())
        .unwrap()
        .clone();
    assert!(listed.get("token").is_none());
    assert!(listed["last_used_at"].is_string(), "{listed}");
    assert!(!list.to_string().contains(&token));

    // Revoked: 401 with its own code from then on.
    let revoked = expect(
        &admin.delete(&format!("/api/v1/tokens/{}", created["id"])),
        200,
    )
    .clone();
    assert_eq!(revoked["status"], "revoked");
    let denied = api.get("/api/v1/me");
    assert_eq!(denied.status, 401);
    assert_eq!(denied.code(), "token_revoked");

    // Expired: 401 token_expired.
    let short = admin.create(
        "/api/v1/tokens",
        json!({"name": "short", "expires_in_seconds": 1}),
    );
    std::thread::sleep(Duration::from_millis(1300));
    let expired = server
        .api(short["token"].as_str().unwrap())
        .get("/api/v1/me");
    assert_eq!(
        (expired.status, expired.code()),
        (401, "token_expired"),
        "{}",
        expired.text
    );

    // Unknown and missing tokens.
    let unknown = server
        .api(&format!("vgl_{}", "0".repeat(64)))
        .get("/api/v1/me");
    assert_eq!((unknown.status, unknown.code()), (401, "token_invalid"));
    let missing = server.anonymous().get("/api/v1/me");
    assert_eq!((missing.status, missing.code()), (401, "unauthenticated"));

    // Another user's token id cannot be revoked.
    create_workspace(&admin, "acme");
    let eng = join(&server, "acme", "eng@acme.com", "engineer", false);
    let other = server
        .api(&eng)
        .delete(&format!("/api/v1/tokens/{}", short["id"]));
    assert_eq!(other.status, 404);
}

fn token_carries_holders_permissions(db: TestDb) {
    let server = TestServer::start(db);
    create_workspace(&server.admin(), "acme");
    let eng = join(&server, "acme", "eng@acme.com", "engineer", false);
    // A second token made by the engineer can read members but not invite,
    // exactly like the first.
    let second = server
        .api(&eng)
        .create("/api/v1/tokens", json!({"name": "second"}))["token"]
        .as_str()
        .unwrap()
        .to_string();
    let api = server.api(&second);
    expect(&api.get("/api/v1/workspaces/acme/members"), 200);
    let denied = api.post(
        "/api/v1/workspaces/acme/invites",
        json!({"email": "x@acme.com", "role": "viewer"}),
    );
    assert_eq!(denied.status, 403);
    assert_eq!(denied.json["error"]["missing_permission"], "member.invite");
    let denied = api.post(
        "/api/v1/workspaces",
        json!({"name": "X", "slug": "x1", "region": "us"}),
    );
    assert_eq!(denied.json["error"]["missing_permission"], "platform_admin");
}

fn token_requests_are_validated(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    let before = server.db.column("SELECT COUNT(*) FROM api_tokens");
    for body in [
        json!({"name": ""}),
        json!({"name": "x".repeat(101)}),
        json!({"name": "ok", "expires_in_seconds": 0}),
        json!({"name": "ok", "expires_in_seconds": 999_999_999_999u64}),
        json!({"name": "ok", "scopes": ["all"]}),
    ] {
        let r = admin.post("/api/v1/tokens", body.clone());
        assert_eq!(r.status, 422, "{body} -> {}", r.text);
        assert_eq!(r.code(), "validation_failed");
    }
    assert_eq!(server.db.column("SELECT COUNT(*) FROM api_tokens"), before);
}

on_both_databases!(
    token_lifecycle,
    token_carries_holders_permissions,
    token_requests_are_validated
);
