use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;

use super::*;

/// One request as a test server read it: its head (request line and
/// headers, lower-cased names) and body.
struct Seen {
    head: Vec<String>,
    body: Vec<u8>,
}

impl Seen {
    /// The value of header `name`, if the request had it.
    fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.head
            .iter()
            .find(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_string())
    }
}

/// The requests a test server has read so far (the client call has
/// returned, so any retry has already arrived).
fn received(seen: &mpsc::Receiver<Seen>) -> Vec<Seen> {
    let mut all = Vec::new();
    while let Ok(request) = seen.recv_timeout(Duration::from_millis(300)) {
        all.push(request);
    }
    all
}

fn read_request(stream: &TcpStream) -> Seen {
    let mut reader = BufReader::new(stream);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let line = line.trim_end().to_string();
        if line.is_empty() {
            break;
        }
        head.push(line);
    }
    let length = head
        .iter()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|n| n.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    Seen { head, body }
}

/// A server that handles one connection per entry of `answers`: `None`
/// reads the request and closes the connection without answering,
/// `Some(response)` answers with it. Every request read is sent on the
/// returned channel. Its thread waits for connections until the test
/// process ends.
fn serve(answers: Vec<Option<&'static str>>) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for answer in answers {
            let (mut stream, _) = listener.accept().unwrap();
            let seen = read_request(&stream);
            tx.send(seen).unwrap();
            if let Some(response) = answer {
                stream.write_all(response.as_bytes()).unwrap();
            }
        }
    });
    (url, rx)
}

const CREATED: &str = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n\
                       Content-Length: 8\r\nConnection: close\r\n\r\n{\"id\":1}";
const BROKEN: &str = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\
                      Connection: close\r\n\r\n";

#[test]
fn idempotency_keys_are_fresh_hex() {
    let (a, b) = (new_idempotency_key(), new_idempotency_key());
    assert_eq!(a.len(), 32);
    assert!(a
        .chars()
        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_ne!(a, b);
}

#[test]
fn a_create_is_sent_again_with_the_same_key_after_a_dropped_connection() {
    let (url, seen) = serve(vec![None, Some(CREATED)]);
    let client = Client::new(&url, Some("vgl_test"));
    let created = client.create("/api/v1/tokens", &serde_json::json!({"name": "ci"}));
    assert_eq!(created.unwrap(), serde_json::json!({"id": 1}));
    let (first, second) = (seen.recv().unwrap(), seen.recv().unwrap());
    let key = first
        .header(IDEMPOTENCY_KEY)
        .expect("the first try has a key");
    assert_eq!(key.len(), 32, "{key}");
    assert_eq!(second.header(IDEMPOTENCY_KEY), Some(key));
    assert_eq!(first.body, second.body);
    assert_eq!(first.head[0], "POST /api/v1/tokens HTTP/1.1");
}

#[test]
fn a_raw_create_keeps_its_content_type_on_the_second_try() {
    let (url, seen) = serve(vec![None, Some(CREATED)]);
    let client = Client::new(&url, Some("vgl_test"));
    client.create_raw("/bulk", "text/csv", b"email\n").unwrap();
    let (first, second) = (seen.recv().unwrap(), seen.recv().unwrap());
    assert_eq!(
        first.header(IDEMPOTENCY_KEY),
        second.header(IDEMPOTENCY_KEY)
    );
    assert_eq!(second.header("content-type").as_deref(), Some("text/csv"));
    assert_eq!(second.body, b"email\n");
}

#[test]
fn a_create_is_tried_at_most_twice() {
    let (url, seen) = serve(vec![None, None, Some(CREATED)]);
    let client = Client::new(&url, Some("vgl_test"));
    let err = client.create("/x", &Value::Null).unwrap_err();
    assert_eq!(exit_code(&err), exit::UNAVAILABLE, "{err:#}");
    assert_eq!(received(&seen).len(), 2);
}

#[test]
fn an_error_status_is_never_retried() {
    let (url, seen) = serve(vec![Some(BROKEN), Some(CREATED)]);
    let client = Client::new(&url, Some("vgl_test"));
    let err = client.create("/x", &Value::Null).unwrap_err();
    assert_eq!(http_status(&err), Some(500));
    assert_eq!(received(&seen).len(), 1);
}

#[test]
fn other_posts_carry_no_key_and_are_not_retried() {
    let (url, seen) = serve(vec![None, Some(CREATED)]);
    let client = Client::new(&url, Some("vgl_test"));
    assert!(client.post("/x", &Value::Null).is_err());
    let requests = received(&seen);
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header(IDEMPOTENCY_KEY), None);
}

#[test]
fn encodes_reserved_bytes() {
    assert_eq!(seg("alice@acme.com"), "alice%40acme.com");
    assert_eq!(seg("a b/c?d"), "a%20b%2Fc%3Fd");
    assert_eq!(seg("Az09-._~"), "Az09-._~");
    assert_eq!(seg("é"), "%C3%A9");
}

#[test]
fn builds_queries() {
    assert_eq!(query(&[]), "");
    assert_eq!(
        query(&[("after", "5".into()), ("limit", "10".into())]),
        "?after=5&limit=10"
    );
}

#[test]
fn maps_statuses() {
    assert_eq!(exit_for_status(401), exit::UNAUTHENTICATED);
    assert_eq!(exit_for_status(403), exit::FORBIDDEN);
    assert_eq!(exit_for_status(404), exit::NOT_FOUND);
    for status in [400, 409, 413, 415, 422] {
        assert_eq!(exit_for_status(status), exit::REJECTED);
    }
    assert_eq!(exit_for_status(502), exit::UNAVAILABLE);
}

#[test]
fn formats_forbidden() {
    let body =
        r#"{"error":{"code":"forbidden","message":"nope","missing_permission":"member.invite"}}"#;
    let failure = api_failure(403, "Forbidden", body);
    assert_eq!(failure.code, exit::FORBIDDEN);
    assert_eq!(failure.message, "nope\nmissing permission: member.invite");
}

#[test]
fn formats_validation_field() {
    let body = r#"{"error":{"code":"validation_failed","message":"bad slug","field":"slug"}}"#;
    let failure = api_failure(422, "Unprocessable Entity", body);
    assert_eq!(failure.code, exit::REJECTED);
    assert_eq!(failure.message, "bad slug (field: slug)");
}
