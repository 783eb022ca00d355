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
            // A wildcard (`{*path}`) is published as a plain parameter.
            ops.insert((method, p.replace("{*", "{")));
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
            .replace("{token}", "vgi_x")
            .replace("{path}", "x.js")
            .replace("{playbook}", "p")
            .replace("{email}", "e%40x.com");
        let r = server
            .anonymous()
            .raw(&method.to_uppercase(), &concrete, None, None);
        assert!(
            !r.text.contains("no such endpoint") && r.status != 405,
            "{method} {path} is documented but not routed"
        );
    }
}

/// The document says what the server does: parameters are where they are
/// sent, each schema describes its own type, and the statuses the request
/// readers answer with are listed.
#[test]
fn the_document_is_true() {
    let server = TestServer::start(TestDb::sqlite());
    let doc = expect(&server.anonymous().get("/api/openapi.json"), 200).clone();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        assert!(
            !path.contains('*'),
            "{path}: OpenAPI has no wildcard parameters"
        );
        for (method, op) in ops.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                if p["in"] == "path" {
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: path parameter `{name}` is not in the path"
                    );
                } else if p["in"] == "header" {
                    assert_eq!(name, "Idempotency-Key", "{method} {path}");
                    assert_eq!(method, "post", "{path}: only POSTs take a key");
                    assert_ne!(p["required"], true, "{method} {path}: {name}");
                } else {
                    assert_eq!(p["in"], "query", "{method} {path}: {name}");
                    assert_ne!(p["required"], true, "{method} {path}: {name}");
                }
            }
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            let mut expected = vec![];
            if op.get("requestBody").is_some() {
                expected.extend(["400", "413", "415", "422"]);
            }
            if op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "path" || p["in"] == "query"))
            {
                expected.extend(["400", "422"]);
            }
            if secured {
                expected.extend(["401", "403"]);
            }
            if secured && method == "post" {
                // Every create made with a token may carry an Idempotency-Key.
                assert!(
                    op["parameters"]
                        .as_array()
                        .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key")),
                    "{method} {path} does not document Idempotency-Key"
                );
                expected.extend(["409", "422"]);
            }
            for status in expected {
                assert!(
                    responses.contains_key(status),
                    "{method} {path} does not document {status}"
                );
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    // Playbook runs and periodic-task runs are different records.
    let playbook_run = &schemas["PlaybookRunView"]["properties"];
    let task_run = &schemas["TaskRun"]["properties"];
    assert!(playbook_run.is_object() && task_run.is_object());
    assert_ne!(playbook_run, task_run);
    assert!(
        playbook_run.get("steps").is_some() || playbook_run.get("playbook").is_some(),
        "{playbook_run}"
    );
    // Values that are not objects are not declared as objects.
    let text = serde_json::to_string(&schemas["Step"]["properties"]["item"]).unwrap();
    assert!(!text.contains("\"object\""), "{text}");
    assert!(schemas["SettingValue"]["properties"]["value"]
        .get("type")
        .is_none());
    let item = &schemas["StepItem"];
    assert!(
        item.to_string().contains("integer") && item.to_string().contains("string"),
        "{item}"
    );
    // Limits the server enforces are in the schemas.
    let ws = &schemas["CreateWorkspace"]["properties"];
    assert!(ws["slug"]["pattern"].is_string(), "{ws}");
    assert_eq!(ws["name"]["maxLength"], 100);
    assert_eq!(schemas["CreateItem"]["properties"]["title"]["minLength"], 1);
    assert_eq!(
        schemas["PlaybookDefinition"]["properties"]["steps"]["minItems"],
        1
    );
}

/// utoipa names a schema after its Rust type: two types of the same name
/// would share one component, and one of them would be described wrongly.
#[test]
fn schema_names_are_unique() {
    fn walk(dir: &Path, names: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, names);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for chunk in text.split("ToSchema").skip(1) {
                let Some(line) = chunk
                    .lines()
                    .skip(1)
                    .find(|l| l.contains("struct ") || l.contains("enum "))
                else {
                    continue;
                };
                let name = line
                    .split_whitespace()
                    .skip_while(|w| *w != "struct" && *w != "enum")
                    .nth(1)
                    .unwrap_or_default()
                    .trim_end_matches(['{', '(', ';'])
                    .split('<')
                    .next()
                    .unwrap()
                    .to_string();
                names.push((name, path.display().to_string()));
            }
        }
    }
    let mut names = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/src"),
        &mut names,
    );
    assert!(names.len() > 40, "{names:?}");
    names.sort();
    for pair in names.windows(2) {
        assert_ne!(pair[0].0, pair[1].0, "{pair:?}");
    }
    // And the two kinds of run lists are told apart in the document.
    let server = TestServer::start(TestDb::sqlite());
    let doc = expect(&server.anonymous().get("/api/openapi.json"), 200).clone();
    let runs = doc["paths"]["/api/v1/workspaces/{slug}/playbook-runs"]["get"]["responses"]["200"]
        .to_string();
    assert!(runs.contains("PlaybookRunList"), "{runs}");
    let runs =
        doc["paths"]["/api/v1/scheduler/tasks/{name}/runs"]["get"]["responses"]["200"].to_string();
    assert!(runs.contains("TaskRunList"), "{runs}");
}
