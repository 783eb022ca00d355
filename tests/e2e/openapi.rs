//! The OpenAPI document is generated from the routing code: every handler's
//! `#[utoipa::path]` is in the served document, and no API route is added
//! around the documenting router.

use std::collections::BTreeSet;
use std::path::Path;

use vigilo_tests::{expect, TestDb, TestServer};

/// (method, path) of every `#[utoipa::path(...)]` in the server's HTTP code.
fn annotated_operations() -> BTreeSet<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src/http");
    let mut ops = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for chunk in text.split("#[utoipa::path(").skip(1) {
            let method = chunk.split(',').next().unwrap().trim().to_string();
            let p = chunk
                .split("path = \"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_string();
            ops.insert((method, p));
        }
        // Routes added outside `routes!` would be missing from the document.
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            if line.contains(".route(") {
                let file = path.file_name().unwrap().to_str().unwrap();
                let route = format!("{line}{}", lines.get(n + 1).unwrap_or(&""));
                assert!(
                    file == "mod.rs" && route.contains("\"/api/openapi.json\""),
                    "{file}:{}: an API route added with .route() is not documented; use routes!()",
                    n + 1
                );
            }
        }
    }
    ops
}

#[test]
fn every_routed_endpoint_is_documented() {
    let server = TestServer::start(TestDb::sqlite());
    let doc = expect(&server.anonymous().get("/api/openapi.json"), 200).clone();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let mut documented = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["responses"].is_object(),
                "{method} {path} has no responses"
            );
            documented.insert((method.clone(), path.clone()));
        }
    }
    let annotated = annotated_operations();
    assert!(
        annotated.len() >= 25,
        "found only {} annotated handlers",
        annotated.len()
    );
    assert_eq!(annotated, documented);
    // Every documented operation is actually routed (an unrouted path would
    // hit the fallback's "no such endpoint").
    for (method, path) in &documented {
        let concrete = path
            .replace("{slug}", "acme")
            .replace("{id}", "1")
            .replace("{key}", "k")
            .replace("{name}", "n")
            .replace("{email}", "e%40x.com")
            .replace("{token}", "vgi_x");
        let r = server
            .anonymous()
            .raw(&method.to_uppercase(), &concrete, None, None);
        assert!(
            !r.text.contains("no such endpoint") && r.status != 405,
            "{method} {path} is documented but not routed"
        );
    }
}
