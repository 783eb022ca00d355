//! The authorization walk: every endpoint in the OpenAPI document, called
//! as a platform admin, each built-in role, two custom roles, a member of
//! another workspace, a revoked token, an expired token and no token.
//!
//! The expected permission matrix is written out here, independently of the
//! server's code, and the walk fails if the document gains an endpoint this
//! table does not cover.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use vigilo_tests::json::strings;
use vigilo_tests::{expect, on_both_databases, Api, Response, TestDb, TestServer};

use crate::{create_workspace, join};

mod endpoints;

use endpoints::{Need, ENDPOINTS};

/// The documented permission matrix (README, "Roles and permissions").
fn role_permissions(role: &str) -> BTreeSet<&'static str> {
    let all = [
        "workspace.read",
        "workspace.settings",
        "workspace.export",
        "member.read",
        "member.invite",
        "member.remove",
        "role.manage",
        "audit.read",
        "item.write",
        "change.approve",
        "dashboard.edit",
        "cert.manage",
        "integration.manage",
        "playbook.edit",
        "playbook.run",
        "playbook.dry_run",
    ];
    let list: &[&str] = match role {
        "owner" => &all,
        "approver" => &[
            "workspace.read",
            "member.read",
            "audit.read",
            "item.write",
            "change.approve",
            "dashboard.edit",
            "cert.manage",
            "playbook.edit",
            "playbook.run",
            "playbook.dry_run",
        ],
        "engineer" => &[
            "workspace.read",
            "member.read",
            "item.write",
            "dashboard.edit",
            "cert.manage",
            "playbook.edit",
            "playbook.run",
            "playbook.dry_run",
        ],
        "viewer" => &["workspace.read", "member.read", "playbook.dry_run"],
        // Custom roles made in `setup`.
        "inviter" => &["workspace.read", "member.invite", "playbook.dry_run"],
        _ => unreachable!(),
    };
    list.iter().copied().collect()
}

enum Who {
    Admin,
    Member(&'static str),
    Outsider,
    Revoked,
    Expired,
    Nobody,
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique() -> usize {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Calls one endpoint with a body that would succeed for an allowed caller.
fn call(api: &Api, method: &str, path: &str) -> Response {
    let n = unique();
    let p = path
        .replace("{slug}", "acme")
        .replace("{key}", &format!("k{n}"))
        .replace("{id}", "999999")
        .replace("{comment}", "999999")
        .replace("{name}", "no-such-name")
        .replace("{playbook}", "no-such-playbook")
        .replace("{path}", "app.js")
        .replace("{email}", "nobody%40example.com")
        .replace("{token}", &format!("vgi_{}", "0".repeat(64)));
    match (method, path) {
        ("post", "/api/v1/tokens") => api.post(&p, json!({"name": format!("t{n}")})),
        ("post", "/api/v1/workspaces") => api.post(&p, json!({"name": "W", "slug": format!("ws-{n}"), "region": "eu"})),
        ("put", _) => api.put(&p, json!({"value": n})),
        ("post", "/api/v1/templates") => api.post(
            &p,
            json!({"name": format!("tpl-{n}"), "snapshot": {"schema_version": 1, "settings": {}, "policies": {},
                   "custom_roles": [], "custom_fields": [], "playbooks": []}}),
        ),
        ("post", "/api/v1/workspaces/{slug}/roles") => api.post(&p, json!({"name": format!("r{n}"), "base_role": "viewer", "remove": ["member.read"]})),
        ("post", "/api/v1/workspaces/{slug}/invites") => api.post(&p, json!({"email": format!("new{n}@example.com"), "custom_role": "minimal"})),
        ("post", "/api/v1/workspaces/{slug}/invites/bulk") => api.raw(
            "POST",
            &p,
            Some("text/csv"),
            Some(format!("email,role,custom_role_name\nbulk{n}@example.com,,minimal\n").as_bytes()),
        ),
        ("post", "/api/v1/invites/{token}/accept") => api.post(&p, json!({"name": "X"})),
        ("post", "/api/v1/workspaces/{slug}/invites/{id}/resend") => api.post(&p, json!({})),
        ("post", "/api/v1/workspaces/{slug}/items") => api.post(&p, json!({"kind": "task", "title": format!("t{n}")})),
        ("post", "/api/v1/workspaces/{slug}/items/{id}/transition") => api.post(&p, json!({"status": "doing"})),
        ("post", "/api/v1/workspaces/{slug}/items/transitions") => api.post(&p, json!({"ids": [999999], "status": "doing"})),
        ("post", "/api/v1/workspaces/{slug}/items/{id}/comments") => api.post(&p, json!({"body": format!("c{n}")})),
        ("patch", "/api/v1/workspaces/{slug}/items/{id}/comments/{comment}") => api.patch(&p, json!({"body": format!("c{n}")})),
        ("patch", "/api/v1/workspaces/{slug}/members/{email}") => api.patch(&p, json!({"role": "viewer"})),
        ("patch", _) => api.patch(&p, json!({"title": format!("t{n}")})),
        ("post", "/api/v1/workspaces/{slug}/fields") => api.post(
            &p,
            json!({"key": format!("f{n}"), "label": "F", "applies_to": ["task"], "type": "text"}),
        ),
        ("post", "/api/v1/workspaces/{slug}/dashboard/widgets") => api.post(&p, json!({"widget": "kanban_overview"})),
        ("post", "/api/v1/workspaces/{slug}/certificates") => api.post(&p, json!({"pem": "not a certificate"})),
        ("post", "/api/v1/workspaces/{slug}/integrations") => api.post(&p, json!({"name": format!("i{n}"), "adapter": "none", "config": {}})),
        ("post", "/api/v1/workspaces/{slug}/playbooks") => api.post(
            &p,
            json!({"name": format!("pb{n}"), "steps": [{"type": "create_task", "title": "t"}]}),
        ),
        ("post", "/api/v1/workspaces/{slug}/integrations/{name}/test") => api.post(&p, json!({})),
        ("post", _) if path.contains("/playbooks/") => api.post(&p, json!({"input": {}})),
        ("post", "/api/v1/scheduler/tasks/{name}/run") => api.post(&p, json!({})),

        ("post", _) if path.contains("/audit/checkpoints") => api.post(&p, json!({})),
        ("post", _) if path.starts_with("/api/v1/plugins/") => api.post(&p, json!({})),
        ("get", _) => api.get(&p),
        ("delete", _) => api.delete(&p),
        other => panic!("no body known for {other:?}"),
    }
}

fn authorization_walk(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "acme");
    create_workspace(&admin, "globex");
    for (name, add, remove) in [
        ("inviter", json!(["member.invite"]), json!(["member.read"])),
        ("minimal", json!([]), json!(["member.read"])),
    ] {
        admin.create(
            "/api/v1/workspaces/acme/roles",
            json!({"name": name, "base_role": "viewer", "add": add, "remove": remove}),
        );
    }
    let mut tokens = std::collections::HashMap::new();
    for role in ["owner", "approver", "engineer", "viewer"] {
        tokens.insert(
            role,
            join(&server, "acme", &format!("{role}@acme.com"), role, false),
        );
    }
    tokens.insert(
        "inviter",
        join(&server, "acme", "inviter@acme.com", "inviter", true),
    );
    let outsider = join(&server, "globex", "owner@globex.com", "owner", false);
    let revoked = admin.create("/api/v1/tokens", json!({"name": "gone"}));
    expect(
        &admin.delete(&format!("/api/v1/tokens/{}", revoked["id"])),
        200,
    );
    let expired = admin.create(
        "/api/v1/tokens",
        json!({"name": "old", "expires_in_seconds": 1}),
    );
    std::thread::sleep(Duration::from_millis(1300));

    // The walk covers exactly the documented endpoints.
    let doc = expect(&server.anonymous().get("/api/openapi.json"), 200).clone();
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((method.clone(), path.clone()));
        }
    }
    let table: BTreeSet<_> = ENDPOINTS
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(
        documented, table,
        "the OpenAPI document and the authorization table disagree"
    );

    let principals: Vec<(Who, Api)> = vec![
        (Who::Admin, admin.clone()),
        (Who::Member("owner"), server.api(&tokens["owner"])),
        (Who::Member("approver"), server.api(&tokens["approver"])),
        (Who::Member("engineer"), server.api(&tokens["engineer"])),
        (Who::Member("viewer"), server.api(&tokens["viewer"])),
        (Who::Member("inviter"), server.api(&tokens["inviter"])),
        (Who::Outsider, server.api(&outsider)),
        (Who::Revoked, server.api(revoked["token"].as_str().unwrap())),
        (Who::Expired, server.api(expired["token"].as_str().unwrap())),
        (Who::Nobody, server.anonymous()),
    ];
    let mut failures = Vec::new();
    for (method, path, need) in ENDPOINTS {
        for (who, api) in &principals {
            let r = call(api, method, path);
            let what = format!("{method} {path} as {}", describe(who));
            assert!(r.status < 500, "{what}: server error {}", r.text);
            assert!(
                r.json["error"].is_object() || r.status < 400,
                "{what}: error body not in the API shape: {}",
                r.text
            );
            let expected_denial: Option<(u16, &str)> = match (who, need) {
                (_, Need::Public) => None,
                (Who::Nobody, Need::OptionalToken) => None,
                (Who::Nobody, _) => Some((401, "unauthenticated")),
                (Who::Revoked, _) => Some((401, "token_revoked")),
                (Who::Expired, _) => Some((401, "token_expired")),
                (Who::Admin, _) => None,
                (_, Need::Authenticated | Need::OptionalToken) => None,
                (_, Need::PlatformAdmin) => Some((403, "platform_admin")),
                (Who::Outsider, Need::Workspace(_)) => Some((403, "workspace.read")),
                (Who::Member(role), Need::Workspace(p)) => {
                    (!role_permissions(role).contains(p)).then_some((403, *p))
                }
            };
            match expected_denial {
                Some((401, code)) => {
                    if r.status != 401 || r.code() != code {
                        failures.push(format!(
                            "{what}: expected 401 {code}, got {} {}",
                            r.status, r.text
                        ));
                    }
                }
                Some((_, missing)) => {
                    if r.status != 403 || r.json["error"]["missing_permission"] != missing {
                        failures.push(format!(
                            "{what}: expected 403 naming {missing}, got {} {}",
                            r.status, r.text
                        ));
                    }
                    if matches!(who, Who::Outsider) && r.text.contains("owner@acme.com") {
                        failures.push(format!(
                            "{what}: a denial leaked workspace data: {}",
                            r.text
                        ));
                    }
                }
                None => {
                    if r.status == 401 || r.status == 403 {
                        failures.push(format!(
                            "{what}: expected to be allowed, got {} {}",
                            r.status, r.text
                        ));
                    }
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} authorization failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn describe(who: &Who) -> String {
    match who {
        Who::Admin => "platform admin".into(),
        Who::Member(r) => r.to_string(),
        Who::Outsider => "member of another workspace".into(),
        Who::Revoked => "revoked token".into(),
        Who::Expired => "expired token".into(),
        Who::Nobody => "no token".into(),
    }
}

/// Nothing of one workspace shows through another's member.
fn workspaces_are_isolated(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "acme");
    create_workspace(&admin, "globex");
    expect(
        &admin.put(
            "/api/v1/workspaces/acme/settings/secret_plan",
            json!({"value": "acme-only"}),
        ),
        200,
    );
    let acme_owner = join(&server, "acme", "owner@acme.com", "owner", false);
    let globex_owner = join(&server, "globex", "owner@globex.com", "owner", false);
    let globex = server.api(&globex_owner);

    let list = expect(&globex.get("/api/v1/workspaces"), 200).clone();
    let slugs = strings(&list["workspaces"], "slug");
    assert_eq!(slugs, ["globex"]);
    let me = expect(&globex.get("/api/v1/me"), 200).to_string();
    assert!(!me.contains("acme"), "{me}");
    for path in [
        "",
        "/settings",
        "/members",
        "/invites",
        "/roles",
        "/audit",
        "/export",
    ] {
        let r = globex.get(&format!("/api/v1/workspaces/acme{path}"));
        assert_eq!(r.status, 403, "{path}: {}", r.text);
        assert!(
            !r.text.contains("acme-only") && !r.text.contains("owner@acme.com"),
            "{path} leaked: {}",
            r.text
        );
        // A slug that does not exist answers exactly the same, so members
        // of one workspace cannot probe for others.
        let missing = globex.get(&format!("/api/v1/workspaces/initech{path}"));
        assert_eq!(missing.status, 403, "{path}: {}", missing.text);
        assert_eq!(
            missing.text.replace("initech", "acme"),
            r.text,
            "{path}: an existing and a missing workspace differ"
        );
    }
    // The acme owner cannot reach globex either, and cannot remove globex's members.
    let acme = server.api(&acme_owner);
    let r = acme.delete("/api/v1/workspaces/globex/members/owner%40globex.com");
    assert_eq!(r.status, 403);
    expect(&admin.get("/api/v1/workspaces/globex/members"), 200)["members"][0]["email"]
        .as_str()
        .map(|e| assert_eq!(e, "owner@globex.com"))
        .unwrap();
    // A platform admin sees both, including ones with no members at all.
    create_workspace(&admin, "admins-only");
    let all = expect(&admin.get("/api/v1/workspaces"), 200).clone();
    let slugs = strings(&all["workspaces"], "slug");
    assert_eq!(slugs, ["acme", "admins-only", "globex"]);
}

on_both_databases!(authorization_walk, workspaces_are_isolated);
