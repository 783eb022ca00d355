//! What an attacker or a careless client cannot do: hold connections or
//! memory with slow or unauthenticated requests, leave the server
//! unreachable by holding many connections, redirect a person off this
//! origin through `next=`, slip a repeated JSON key past validation, or get
//! an answer without the security headers or in a shape of the framework's.
//! The limits are set short in the tests' config.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;
use vigilo_tests::{expect, on_both_databases, Api, TestDb, TestServer};

use crate::create_workspace;
use crate::web::PASSWORD;

/// A raw connection to `url`'s host.
fn connect(url: &str) -> TcpStream {
    let stream = TcpStream::connect(url.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream
}

/// Reads until the server closes the connection (or 20 s pass); returns
/// what it sent and whether it closed.
fn read_to_close(stream: &mut TcpStream) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return (String::from_utf8_lossy(&got).into_owned(), true)
            }
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

/// `GET /healthz` on a new connection: its status line.
fn health(url: &str) -> String {
    let mut stream = connect(url);
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let (answer, _) = read_to_close(&mut stream);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// Headers, bodies and idle connections that take longer than their
/// timeout are cut off; the body's is answered 408 in the caller's shape.
fn slow_clients_are_cut_off(db: TestDb) {
    let server = TestServer::start_with(db, |config| {
        config.header_read_timeout_secs = 1;
        config.body_read_timeout_secs = 1;
        config.idle_timeout_secs = 1;
    });
    let token = server.admin_token.clone();
    create_workspace(&server.admin(), "ops");

    // Headers sent a byte at a time, never finished.
    let mut headers = connect(&server.url);
    headers.write_all(b"GET /healthz HTTP/1.1\r\nHo").unwrap();
    let (answer, closed) = read_to_close(&mut headers);
    assert!(
        closed,
        "a connection that never finished its headers stayed open"
    );
    assert!(answer.is_empty(), "{answer}");

    // A connection opened and left silent.
    let mut silent = connect(&server.url);
    let (_, closed) = read_to_close(&mut silent);
    assert!(closed, "a silent connection stayed open");

    // An API body that stops arriving: 408 in the API's shape, then closed.
    let mut body = connect(&server.url);
    write!(
        body,
        "POST /api/v1/workspaces/ops/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: 400\r\n\r\n{{\"kind\": \"task\""
    )
    .unwrap();
    let (answer, closed) = read_to_close(&mut body);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("\"request_timeout\""), "{answer}");
    assert!(answer.contains("content-security-policy: "), "{answer}");
    assert!(closed);
    // The same with a key, and with a token that is not one: nothing waits
    // for the body before the token is checked.
    let mut keyed = connect(&server.url);
    write!(
        keyed,
        "POST /api/v1/workspaces/ops/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Idempotency-Key: slow-1\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n{{"
    )
    .unwrap();
    let (answer, _) = read_to_close(&mut keyed);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    let mut forged = connect(&server.url);
    forged
        .write_all(
            b"POST /api/v1/workspaces/ops/items HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer x\r\n\
              Idempotency-Key: k1\r\nContent-Type: application/json\r\nContent-Length: 16777216\r\n\r\n{",
        )
        .unwrap();
    let (answer, closed) = read_to_close(&mut forged);
    assert!(answer.starts_with("HTTP/1.1 401 "), "{answer}");
    // The body was never read: the answer says the connection ends, so no
    // client sends its next request into a connection about to close.
    assert!(answer.contains("connection: close\r\n"), "{answer}");
    assert!(closed);
    // A sign-in form that stops arriving: the app's own page.
    let mut form = connect(&server.url);
    form.write_all(
        b"POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n\
          Content-Length: 200\r\n\r\nemail=a",
    )
    .unwrap();
    let (answer, _) = read_to_close(&mut form);
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("text/html"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");

    // A kept-alive connection is closed once idle; in use, it stays.
    let mut kept = connect(&server.url);
    for _ in 0..3 {
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = kept.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 "));
        std::thread::sleep(Duration::from_millis(300));
    }
    let (_, closed) = read_to_close(&mut kept);
    assert!(closed, "an idle kept-alive connection stayed open");

    // Nothing was created by the cut-off requests.
    assert_eq!(server.db.number("SELECT COUNT(*) FROM work_items"), 0);
}

/// A client holding many connections does not make the server
/// unreachable: idle ones make way for new ones, and when every connection
/// is busy a new one is answered 503 and the server keeps accepting.
fn the_connection_cap_keeps_the_server_answering(db: TestDb) {
    let server = TestServer::start_with(db, |config| {
        config.max_connections = 8;
        config.header_read_timeout_secs = 60;
        config.body_read_timeout_secs = 60;
        config.idle_timeout_secs = 60;
    });
    let token = server.admin_token.clone();
    // Forty silent connections: each new one takes the place of the one
    // idle the longest, and /healthz answers throughout.
    let held: Vec<TcpStream> = (0..40).map(|_| connect(&server.url)).collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(health(&server.url), "HTTP/1.1 200 OK");
    drop(held);

    // Eight uploads in progress fill the server with busy connections. An
    // upload counts as busy once the server has read its headers; on a
    // loaded machine one may not be by the time the next connection comes,
    // and then that upload (still idle) makes way for it. The uploads are
    // started again, waiting longer, when that happened.
    let start_uploads = || -> Vec<TcpStream> {
        (0..8)
            .map(|_| {
                let mut stream = connect(&server.url);
                write!(
                    stream,
                    "POST /api/v1/workspaces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
                     Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n{{\"name\""
                )
                .unwrap();
                stream
            })
            .collect()
    };
    let mut tries = 0;
    let (answer, closed, busy) = loop {
        tries += 1;
        let busy = start_uploads();
        std::thread::sleep(Duration::from_millis(500 * tries));
        let mut refused = connect(&server.url);
        refused
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (answer, closed) = read_to_close(&mut refused);
        if answer.starts_with("HTTP/1.1 200 ") && tries < 4 {
            drop(busy);
            std::thread::sleep(Duration::from_millis(300));
            continue;
        }
        break (answer, closed, busy);
    };
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("\"too_many_connections\""), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("retry-after: 1"),
        "{answer}"
    );
    assert!(closed);
    // Once they end, it answers again.
    drop(busy);
    let start = Instant::now();
    while health(&server.url) != "HTTP/1.1 200 OK" {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the server did not answer again after the busy connections closed"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A redirect after signing in never leaves this origin, whatever `next`
/// carries, and a bad `next` is ignored rather than failing the sign-in.
fn next_only_leads_to_this_origin(db: TestDb) {
    let server = TestServer::start(db);
    crate::root_with_password(&server);
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let answer = |r: Result<ureq::Response, ureq::Error>| match r {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let sessions = || server.db.number("SELECT COUNT(*) FROM sessions");
    for (next, lands) in [
        ("/%09/evil.example/", "/"),
        ("%2F%09%2Fevil.example%2F", "/"),
        ("/%0b/x", "/"),
        ("/%5Cevil.example", "/"),
        ("%2F%2Fevil.example", "/"),
        ("/%2F/evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/admin/workspaces?done=x", "/admin/workspaces?done=x"),
    ] {
        let page = answer(
            agent
                .get(&format!("{}/login?next={next}", server.url))
                .call(),
        );
        assert_eq!(page.status(), 200);
        let form_cookie = page
            .all("set-cookie")
            .into_iter()
            .find_map(|c| c.split(';').next().filter(|c| c.contains("vigilo_form=")))
            .unwrap()
            .to_owned();
        let html = page.into_string().unwrap();
        let form_token = html
            .split("name=\"form_token\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap()
            .to_owned();
        let decoded: String = url::form_urlencoded::parse(format!("n={next}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned();
        let before = sessions();
        let signed_in = answer(
            agent
                .post(&format!("{}/login", server.url))
                .set("Cookie", &form_cookie)
                .send_form(&[
                    ("email", "root@example.com"),
                    ("password", PASSWORD),
                    ("form_token", &form_token),
                    ("next", &decoded),
                ]),
        );
        assert_eq!(signed_in.status(), 303, "next={next}");
        assert_eq!(signed_in.header("location"), Some(lands), "next={next}");
        assert_eq!(sessions(), before + 1);
    }
    // A signed-in person opening a link with a bad `next` stays here too.
    let web = vigilo_tests::WebSession::sign_in(&server.url, "root@example.com", PASSWORD);
    assert_eq!(
        web.get("/login?next=/%09/evil.example/"),
        (303, Some("/".to_owned()))
    );
    assert_eq!(web.get("/login?next=/%0b/x"), (303, Some("/".to_owned())));
}

/// A JSON body that gives a key twice, at any depth, is refused naming the
/// key, and creates nothing.
fn repeated_json_keys_are_refused(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    let send = |body: &str| {
        admin.raw(
            "POST",
            "/api/v1/workspaces/ops/items",
            Some("application/json"),
            Some(body.as_bytes()),
        )
    };
    let top = send(r#"{"kind":"task","kind":"change","title":"dup"}"#);
    assert_eq!(top.status, 422, "{}", top.text);
    assert_eq!(top.json["error"]["field"], "kind");
    assert!(
        top.json["error"]["message"]
            .as_str()
            .unwrap()
            .contains("`kind` is given twice"),
        "{}",
        top.text
    );
    let nested = send(r#"{"kind":"task","title":"dup","fields":{"risk":"low","risk":"high"}}"#);
    assert_eq!(nested.status, 422, "{}", nested.text);
    assert_eq!(nested.json["error"]["field"], "fields.risk");
    let in_list = admin.raw(
        "POST",
        "/api/v1/workspaces/ops/playbooks",
        Some("application/json"),
        Some(
            br#"{"name":"p","steps":[{"type":"create_task","title":"a","title":"b"}]}"#.as_slice(),
        ),
    );
    assert_eq!(in_list.status, 422, "{}", in_list.text);
    assert_eq!(in_list.json["error"]["field"], "steps[0].title");
    assert_eq!(server.db.number("SELECT COUNT(*) FROM work_items"), 0);
    assert_eq!(server.db.number("SELECT COUNT(*) FROM playbooks"), 0);
    // Sent once, the same keys are fine.
    expect(
        &admin.post(
            "/api/v1/workspaces/ops/items",
            json!({"kind": "task", "title": "once"}),
        ),
        201,
    );
}

/// Every answer carries the security headers, API-side errors are JSON in
/// the error shape (plugin files included), and pages never show the
/// framework's words or a Rust type.
fn every_answer_is_shaped_and_guarded(db: TestDb) {
    let server = TestServer::with_plugins(db, &["kanban_overview"]);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    crate::root_with_password(&server);
    let web = vigilo_tests::WebSession::sign_in(&server.url, "root@example.com", PASSWORD);
    let anonymous = Api::new(&server.url, None);
    let guarded = |path: &str, r: &vigilo_tests::Response| {
        for header in [
            "content-security-policy",
            "x-frame-options",
            "x-content-type-options",
            "referrer-policy",
        ] {
            assert!(r.header(header).is_some(), "{path}: no {header}");
        }
    };
    let rusty = [
        "i64",
        "u64",
        "String",
        "Cannot parse",
        "Invalid URL",
        "serde",
    ];
    for (path, status) in [
        ("/no/such/page", 404),
        ("/w/ops/%00", 422),
        ("/w/ops/playbooks/runs/abc", 404),
        ("/w/ops/certificates/abc/remove", 405),
    ] {
        let r = anonymous.raw_with("GET", path, &[("Cookie", web.cookie())], None, None);
        assert_eq!(r.status, status, "{path}: {}", r.text);
        guarded(path, &r);
        assert!(
            r.header("content-type")
                .unwrap_or_default()
                .starts_with("text/html"),
            "{path}"
        );
        for word in rusty {
            assert!(!r.text.contains(word), "{path} shows {word}: {}", r.text);
        }
    }
    for (path, status) in [
        ("/api/v1/no-such-endpoint", 404),
        ("/api/v1/workspaces/ops/items/abc", 400),
        ("/api/v1/workspaces/ops/%00", 422),
        (
            "/plugins/kanban_overview/assets/kanban_overview.js%00.png",
            422,
        ),
        ("/plugins/kanban_overview/assets/", 404),
        ("/plugins/kanban_overview/assets/nothing.js", 404),
    ] {
        let r = admin.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.text);
        guarded(path, &r);
        assert!(
            r.json["error"]["code"].is_string(),
            "{path} is not in the error shape: {}",
            r.text
        );
        for word in rusty {
            assert!(!r.text.contains(word), "{path} shows {word}: {}", r.text);
        }
    }
    let ok = anonymous.get("/healthz");
    guarded("/healthz", &ok);
}

on_both_databases!(
    slow_clients_are_cut_off,
    the_connection_cap_keeps_the_server_answering,
    next_only_leads_to_this_origin,
    repeated_json_keys_are_refused,
    every_answer_is_shaped_and_guarded,
);
