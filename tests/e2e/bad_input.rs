//! Bad input gets a clear 4xx in the API's error shape and changes nothing.

use serde_json::json;
use vigilo_tests::{expect, on_both_databases, TestDb, TestServer};

use crate::{audit_count, create_workspace};

/// method, path, content type, body, expected status, expected error code.
type Case = (
    &'static str,
    &'static str,
    Option<&'static str>,
    Vec<u8>,
    u16,
    &'static str,
);

fn state(server: &TestServer) -> (String, String, i64) {
    let admin = server.admin();
    (
        expect(&admin.get("/api/v1/workspaces"), 200).to_string(),
        expect(&admin.get("/api/v1/workspaces/acme/invites"), 200).to_string(),
        audit_count(server) + server.db.number("SELECT COUNT(*) FROM playbook_runs"),
    )
}

fn bad_requests_change_nothing(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "acme");
    admin.create(
        "/api/v1/workspaces/acme/invites",
        json!({"email": "kept@acme.com", "role": "viewer"}),
    );
    admin.create(
        "/api/v1/workspaces/acme/playbooks",
        json!({"name": "p1", "steps": [{"type": "create_task", "title": "t"}]}),
    );
    let before = state(&server);
    let json_case = |path: &'static str, body: serde_json::Value| -> Case {
        (
            "POST",
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
            422,
            "validation_failed",
        )
    };

    let cases: Vec<Case> = vec![
        ("POST", "/api/v1/workspaces", Some("application/json"), b"{\"name\": \"A\", ".to_vec(), 400, "invalid_json"),
        ("POST", "/api/v1/workspaces", Some("application/json"), b"[1,2,3]".to_vec(), 422, "validation_failed"),
        ("POST", "/api/v1/workspaces", None, br#"{"name":"A","slug":"aa","region":"us"}"#.to_vec(), 415, "unsupported_media_type"),
        (
            "POST",
            "/api/v1/workspaces",
            Some("application/json"),
            json!({"name": "A", "slug": "aa", "region": "us", "colour": "red"}).to_string().into_bytes(),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/api/v1/workspaces",
            Some("application/json"),
            json!({"name": "A".repeat(5000), "slug": "aa", "region": "us"}).to_string().into_bytes(),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/api/v1/workspaces",
            Some("application/json"),
            json!({"name": "A", "slug": "Not A Slug", "region": "us"}).to_string().into_bytes(),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/api/v1/workspaces",
            Some("application/json"),
            json!({"name": "Dup", "slug": "acme", "region": "us"}).to_string().into_bytes(),
            409,
            "conflict",
        ),
        (
            "POST",
            "/api/v1/workspaces",
            Some("application/json"),
            json!({"name": "T", "slug": "from-nothing", "region": "us", "template": "no-such-template"}).to_string().into_bytes(),
            404,
            "not_found",
        ),
        (
            "POST",
            "/api/v1/workspaces/acme/invites",
            Some("application/json"),
            json!({"email": "not-an-email", "role": "viewer"}).to_string().into_bytes(),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/api/v1/workspaces/acme/invites",
            Some("application/json"),
            json!({"email": "kept@acme.com", "role": "viewer"}).to_string().into_bytes(),
            409,
            "conflict",
        ),
        (
            "POST",
            "/api/v1/workspaces/acme/invites",
            Some("application/json"),
            json!({"email": "x@acme.com", "role": "emperor"}).to_string().into_bytes(),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/api/v1/workspaces/acme/invites/bulk",
            Some("text/csv"),
            b"mail,level\nx@acme.com,viewer\n".to_vec(),
            400,
            "invalid_csv",
        ),
        ("POST", "/api/v1/workspaces/acme/invites/bulk", Some("text/csv"), vec![0xff, 0xfe, 0x00, 0x41], 400, "invalid_csv"),
        (
            "POST",
            "/api/v1/workspaces/acme/roles",
            Some("application/json"),
            json!({"name": "r", "base_role": "viewer", "add": ["everything.all"]}).to_string().into_bytes(),
            422,
            "validation_failed",
        ),
        (
            "POST",
            "/api/v1/templates",
            Some("application/json"),
            json!({"name": "t", "snapshot": {"schema_version": 99, "settings": {}, "policies": {}, "custom_roles": [], "custom_fields": [], "playbooks": []}})
                .to_string()
                .into_bytes(),
            422,
            "validation_failed",
        ),
        ("DELETE", "/api/v1/tokens/not-a-number", None, Vec::new(), 400, "bad_request"),
        ("GET", "/api/v1/workspaces/acme/audit?limit=0", None, Vec::new(), 422, "validation_failed"),
        ("GET", "/api/v1/workspaces/acme/audit?limit=abc", None, Vec::new(), 400, "bad_request"),
        // Parses as RFC 3339, but is past what UTC can hold.
        ("GET", "/api/v1/workspaces/acme/audit?since=9999-12-31T23:59:59-00:01", None, Vec::new(), 422, "validation_failed"),
        ("GET", "/api/v1/audit/events?since=9999-12-31T23:59:59-00:01", None, Vec::new(), 422, "validation_failed"),
        ("GET", "/api/v1/workspaces/nope", None, Vec::new(), 404, "not_found"),
        ("GET", "/api/v1/no-such-endpoint", None, Vec::new(), 404, "not_found"),
        (
            "PUT",
            "/api/v1/workspaces/acme/settings/bad%20key",
            Some("application/json"),
            json!({"value": 1}).to_string().into_bytes(),
            422,
            "validation_failed",
        ),
        (
            "PUT",
            "/api/v1/workspaces/acme/settings/big",
            Some("application/json"),
            json!({"value": "x".repeat(70_000)}).to_string().into_bytes(),
            422,
            "validation_failed",
        ),
    ];
    let playbooks = "/api/v1/workspaces/acme/playbooks";
    let items = "/api/v1/workspaces/acme/items";
    let cases = cases.into_iter().chain([
        // An array is not an object, even when its items would fill the
        // fields by position.
        json_case(items, json!(["task", "t"])),
        json_case(items, json!("task")),
        json_case(playbooks, json!(["p", [{"type": "create_task", "title": "t"}]])),
        // ... at any depth: a nested record given as an array is refused too.
        json_case("/api/v1/templates", json!({"name": "t1", "snapshot": [1, {}, {}, []]})),
        json_case(
            "/api/v1/templates",
            json!({"name": "t2", "snapshot": {"schema_version": 1, "settings": {}, "policies": {},
                   "custom_roles": [["ops", "engineer", []]]}}),
        ),
        // No NUL character in any text, on either database.
        json_case(items, json!({"kind": "task", "title": "t", "description": "a\u{0}b"})),
        json_case(items, json!({"kind": "task", "title": "t", "fields": {"risk": "lo\u{0}w"}})),
        json_case(items, json!({"kind": "task", "title": "t", "fields": {"r\u{0}": "x"}})),
        json_case(playbooks, json!({"name": "p", "steps": [{"type": "create_task", "title": "\u{0}"}]})),
        json_case("/api/v1/workspaces", json!({"name": "A\u{0}", "slug": "nul", "region": "us"})),
        ("GET", "/api/v1/workspaces/acme/audit?action=a%00", None, Vec::new(), 422, "validation_failed"),
        ("GET", "/api/v1/workspaces/acme%00/audit", None, Vec::new(), 422, "validation_failed"),
        ("GET", "/api/v1/workspaces/acme/audit?recent=-1", None, Vec::new(), 422, "validation_failed"),
        ("GET", "/api/v1/audit/events?recent=-5", None, Vec::new(), 422, "validation_failed"),
        json_case(playbooks, json!({"name": "p", "steps": []})),
        json_case(playbooks, json!({"name": "p", "steps": [{"type": "reboot"}]})),
        json_case(playbooks, json!({"name": "123", "steps": [{"type": "create_task", "title": "t"}]})),
        json_case(playbooks, json!({"name": "p", "steps": [{"type": "create_task", "title": "x".repeat(5000)}]})),
        json_case(playbooks, json!({"name": "p", "steps": [{"type": "notify", "integration": "i", "message": "{{ unclosed"}]})),
        json_case(
            "/api/v1/workspaces/acme/playbooks/p1/run",
            json!({"input": {"blob": "x".repeat(20_000)}}),
        ),
        json_case(
            "/api/v1/workspaces/acme/integrations",
            json!({"name": "i", "adapter": "no_such_adapter", "config": {}}),
        ),
        json_case(
            "/api/v1/workspaces/acme/certificates",
            json!({"pem": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}),
        ),
    ]);
    for (method, path, ct, body, status, code) in cases {
        let body =
            (!body.is_empty() || method != "GET" && method != "DELETE").then_some(body.as_slice());
        let r = admin.raw(method, path, ct, body);
        assert_eq!(r.status, status, "{method} {path}: {}", r.text);
        assert_eq!(r.code(), code, "{method} {path}: {}", r.text);
        assert!(
            r.json["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            r.text
        );
        assert_eq!(
            state(&server),
            before,
            "{method} {path} changed stored data"
        );
    }

    // An oversized body is refused from its Content-Length, before it is read.
    // (Raw TCP: the server answers before the client could finish sending.)
    // Only the bulk invite upload may be larger (16 MiB); the other member
    // and invite routes, and accepting an invite without a token, keep 2 MiB.
    for (path, token) in [
        ("/api/v1/workspaces", server.admin_token.as_str()),
        (
            "/api/v1/workspaces/acme/invites",
            server.admin_token.as_str(),
        ),
        ("/api/v1/workspaces/acme/roles", server.admin_token.as_str()),
        ("/api/v1/invites/vgi_unknown/accept", ""),
    ] {
        let oversized = raw_post_oversized(&server.url, path, token, 3 * 1024 * 1024);
        assert!(oversized.starts_with("HTTP/1.1 413"), "{path}: {oversized}");
        assert!(
            oversized.contains("payload_too_large"),
            "{path}: {oversized}"
        );
        assert_eq!(state(&server), before);
    }
    // The bulk upload's own limit answers in the same JSON shape.
    let oversized = raw_post_oversized(
        &server.url,
        "/api/v1/workspaces/acme/invites/bulk",
        &server.admin_token,
        17 * 1024 * 1024,
    );
    assert!(oversized.starts_with("HTTP/1.1 413"), "{oversized}");
    assert!(oversized.contains("payload_too_large"), "{oversized}");
    assert_eq!(state(&server), before);

    // A 422 for a NUL character names the field, nested ones by their path.
    for (body, field) in [
        (
            json!({"kind": "task", "title": "t", "description": "\u{0}"}),
            "description",
        ),
        (
            json!({"kind": "task", "title": "t", "fields": {"risk": ["a", "\u{0}"]}}),
            "fields.risk[1]",
        ),
    ] {
        let r = admin.post(items, body);
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(r.json["error"]["field"], field, "{}", r.text);
    }
    let r = admin.get("/api/v1/workspaces/acme/audit?actor=x%00");
    assert_eq!(r.json["error"]["field"], "actor", "{}", r.text);

    // Messages speak of JSON and of the request's fields, never of the
    // server's types.
    for (method, path, body) in [
        ("POST", items, json!(["task", "t"]).to_string()),
        ("POST", items, json!({"kind": 1, "title": "t"}).to_string()),
        (
            "POST",
            items,
            json!({"kind": "task", "title": "t", "fields": []}).to_string(),
        ),
        (
            "POST",
            "/api/v1/workspaces/acme/playbooks",
            json!({"name": "p", "steps": [["create_task", "t"]]}).to_string(),
        ),
        (
            "GET",
            "/api/v1/workspaces/acme/audit?limit=abc",
            String::new(),
        ),
        (
            "GET",
            "/api/v1/workspaces/acme/audit?wait=-1",
            String::new(),
        ),
        ("DELETE", "/api/v1/tokens/abc", String::new()),
        ("GET", "/api/v1/workspaces/acme/items/abc", String::new()),
    ] {
        let body = (!body.is_empty()).then_some(body.as_bytes());
        let r = admin.raw(method, path, body.map(|_| "application/json"), body);
        assert!(
            r.status == 400 || r.status == 422,
            "{method} {path}: {}",
            r.text
        );
        let message = r.json["error"]["message"].as_str().unwrap_or_default();
        for rusty in ["struct ", "i64", "u64", "sequence", "::", "Failed to"] {
            assert!(!message.contains(rusty), "{method} {path}: {message}");
        }
    }
    let r = admin.get("/api/v1/workspaces/acme/audit?limit=abc");
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`limit` must be a whole number"),
        "{}",
        r.text
    );
    assert_eq!(state(&server), before);

    // The wrong CSV header names the expected columns.
    let r = admin.raw(
        "POST",
        "/api/v1/workspaces/acme/invites/bulk",
        Some("text/csv"),
        Some(b"mail,level\n"),
    );
    assert!(
        r.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email,role,custom_role_name"),
        "{}",
        r.text
    );
    // A 422 names the field.
    let r = admin.post(
        "/api/v1/workspaces",
        json!({"name": "A", "slug": "-x", "region": "us"}),
    );
    assert_eq!(r.json["error"]["field"], "slug");
}

on_both_databases!(bad_requests_change_nothing, web_forms_refuse_nul);

fn raw_post_oversized(url: &str, path: &str, token: &str, length: usize) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let auth = if token.is_empty() {
        String::new()
    } else {
        format!("Authorization: Bearer {token}\r\n")
    };
    let path = path.to_string();
    // Send the whole body from another thread, ignoring a broken pipe: the
    // server may answer and close before it has all been sent.
    let sender = std::thread::spawn(move || {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
        );
        let _ = writer.write_all(head.as_bytes());
        let chunk = vec![b' '; 64 * 1024];
        let mut sent = 0;
        while sent < length {
            let n = chunk.len().min(length - sent);
            if writer.write_all(&chunk[..n]).is_err() {
                break;
            }
            sent += n;
        }
    });
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let _ = sender.join();
    String::from_utf8_lossy(&response).into_owned()
}

/// Sends `head` (a request without its final blank line) over raw TCP and
/// returns the whole answer.
fn raw_request(url: &str, head: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    let _ = stream.write_all(format!("{head}Host: {addr}\r\nConnection: close\r\n\r\n").as_bytes());
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    String::from_utf8_lossy(&response).into_owned()
}

/// The JSON error body of a raw answer, and its head.
fn error_of(answer: &str) -> (String, serde_json::Value) {
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((answer, ""));
    (
        head.to_ascii_lowercase(),
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn every_error_has_the_error_shape() {
    let server = TestServer::start(TestDb::sqlite());
    // 405 keeps its Allow header.
    let (head, body) = error_of(&raw_request(
        &server.url,
        "DELETE /api/v1/workspaces HTTP/1.1\r\n",
    ));
    assert!(head.starts_with("http/1.1 405"), "{head}");
    assert!(head.contains("\r\nallow: "), "{head}");
    assert_eq!(body["error"]["code"], "method_not_allowed", "{head}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("DELETE"),
        "{head} {body}"
    );

    // A URI that is too long.
    let long = "a".repeat(70 * 1024);
    let (head, body) = error_of(&raw_request(
        &server.url,
        &format!("GET /api/v1/workspaces/{long} HTTP/1.1\r\n"),
    ));
    assert!(head.starts_with("http/1.1 414"), "{head}");
    assert_eq!(body["error"]["code"], "uri_too_long", "{head}");

    // Headers that are too large, or too many.
    let big = "b".repeat(512 * 1024);
    let (head, body) = error_of(&raw_request(
        &server.url,
        &format!("GET /api/v1/workspaces HTTP/1.1\r\nX-Big: {big}\r\n"),
    ));
    assert!(head.starts_with("http/1.1 431"), "{head}");
    assert_eq!(body["error"]["code"], "headers_too_large", "{head}");
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let (head, body) = error_of(&raw_request(
        &server.url,
        &format!("GET /api/v1/workspaces HTTP/1.1\r\n{many}"),
    ));
    assert!(head.starts_with("http/1.1 431"), "{head}");
    assert_eq!(body["error"]["code"], "headers_too_large", "{head}");
}

/// The web app's forms and addresses follow the same rule as the API: no
/// NUL character in any text.
fn web_forms_refuse_nul(db: TestDb) {
    let server = TestServer::start(db);
    let web = server.anonymous();
    let r = web.raw(
        "POST",
        "/login",
        Some("application/x-www-form-urlencoded"),
        Some(b"email=admin%00%40example.com&password=x&form_token=t&next=%2F"),
    );
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("NUL character"), "{}", r.text);
    assert!(
        r.content_type.starts_with("text/html"),
        "{}",
        r.content_type
    );
    let r = web.raw("GET", "/login?next=%2F%00", None, None);
    assert_eq!(r.status, 422, "{}", r.text);
    let r = web.raw("GET", "/w/ac%00me", None, None);
    assert_eq!(r.status, 422, "{}", r.text);
}
