//! The OpenAPI document is generated from the routing code: every handler's
//! `#[utoipa::path]` is in the served document, and no API route is added
//! around the documenting router.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};
use vigilo_tests::{expect, Api, TestDb, TestServer};

use crate::{create_workspace, join};

mod limits;

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
    assert_eq!(resolve(&doc, &ws["name"])["maxLength"], 100);
    let title = resolve(&doc, &schemas["CreateItem"]["properties"]["title"]);
    assert_eq!(title["minLength"], 1);
    assert!(title["pattern"].is_string(), "{title}");
    assert_eq!(
        schemas["PlaybookDefinition"]["properties"]["steps"]["minItems"],
        1
    );
    let kinds = resolve(&doc, &schemas["CreateItem"]["properties"]["kind"]);
    assert_eq!(kinds["enum"], json!(["change", "incident", "task"]));
    // Every text a request carries says it holds no NUL character (or is
    // narrower still), and every free-form object says what its values are.
    let mut seen = BTreeSet::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let mut inputs: Vec<&Value> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| &p["schema"])
                .collect();
            inputs.extend(op.pointer("/requestBody/content/application~1json/schema"));
            for schema in inputs {
                texts_are_bounded(&doc, schema, &format!("{method} {path}"), &mut seen);
            }
        }
    }
    assert!(
        seen.contains("Step") && seen.contains("Line100"),
        "{seen:?}"
    );
    // A key is one request's: the document says to make a new one for each.
    let key = doc["paths"]["/api/v1/workspaces"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Idempotency-Key")
        .unwrap();
    assert!(
        key["description"]
            .as_str()
            .unwrap()
            .contains("new key for every new request"),
        "{key}"
    );
}

/// `schema` with a `$ref` followed, and a nullable `oneOf` (null or one
/// schema) read as that schema.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.trim_start_matches("#/components/schemas/");
        return resolve(doc, &doc["components"]["schemas"][name]);
    }
    if let Some(branches) = schema["oneOf"].as_array() {
        let rest: Vec<&Value> = branches.iter().filter(|b| b["type"] != "null").collect();
        if rest.len() == 1 && branches.len() == 2 {
            return resolve(doc, rest[0]);
        }
    }
    schema
}

/// Asserts that every string in `schema` (part of request `what`) has a
/// pattern, a closed set or a format, and every object's values a schema.
fn texts_are_bounded(doc: &Value, schema: &Value, what: &str, seen: &mut BTreeSet<String>) {
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.trim_start_matches("#/components/schemas/");
        if seen.insert(name.to_owned()) {
            texts_are_bounded(doc, &doc["components"]["schemas"][name], what, seen);
        }
        return;
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"string") {
        assert!(
            ["pattern", "enum", "const", "format"]
                .iter()
                .any(|k| schema.get(*k).is_some()),
            "{what}: a text without a pattern: {schema}"
        );
    }
    if types.contains(&"object") && schema.get("properties").is_none() {
        assert!(
            schema["additionalProperties"].is_object() && schema["propertyNames"].is_object(),
            "{what}: a free-form object that does not say what it holds: {schema}"
        );
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        for s in schema[key].as_array().into_iter().flatten() {
            texts_are_bounded(doc, s, what, seen);
        }
    }
    for s in schema["properties"]
        .as_object()
        .into_iter()
        .flat_map(|p| p.values())
    {
        texts_are_bounded(doc, s, what, seen);
    }
    for key in ["items", "additionalProperties"] {
        if schema[key].is_object() {
            texts_are_bounded(doc, &schema[key], what, seen);
        }
    }
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

/// Asserts `resp` refuses the value of `field`: 422 naming it, or (a query
/// value of the wrong type) 400 saying its name.
#[track_caller]
fn refused(resp: &vigilo_tests::Response, field: &str, what: &str) {
    let error = &resp.json["error"];
    let named = error["field"] == field
        || (resp.status == 400
            && error["message"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("`{field}`")));
    assert!(
        (resp.status == 422 || resp.status == 400) && named,
        "{what}: expected a refusal naming `{field}`, got {} {}",
        resp.status,
        resp.text
    );
}

/// The rules the document states between one field and another are the
/// server's: a playbook step takes the settings of its type (others only
/// as null), only a `select` field has options (and needs them), an invite
/// names a built-in role or a custom role (not both).
#[test]
fn rules_between_fields_hold() {
    let server = TestServer::start(TestDb::sqlite());
    let admin = server.admin();
    create_workspace(&admin, "acme");
    let doc = expect(&server.anonymous().get("/api/openapi.json"), 200).clone();
    let schemas = &doc["components"]["schemas"];

    let steps = schemas["Step"]["oneOf"].as_array().unwrap();
    let create_task = steps.iter().find(|s| s["title"] == "create_task").unwrap();
    assert_eq!(create_task["required"], json!(["type", "title"]));
    assert_eq!(create_task["properties"]["url"], json!({"type": "null"}));
    let playbook = |name: &str, step: Value| {
        admin.post(
            "/api/v1/workspaces/acme/playbooks",
            json!({"name": name, "steps": [step]}),
        )
    };
    let refused = |resp: vigilo_tests::Response, field: &str| {
        assert_eq!(resp.status, 422, "{}", resp.text);
        assert_eq!(resp.json["error"]["field"], field, "{}", resp.text);
    };
    refused(
        playbook("a", json!({"type": "notify", "message": "m"})),
        "steps[1].integration",
    );
    refused(
        playbook(
            "b",
            json!({"type": "create_task", "title": "t", "url": "http://x"}),
        ),
        "steps[1].url",
    );
    refused(
        playbook("c", json!({"type": "webhook", "url": "ftp://x"})),
        "steps[1].url",
    );
    refused(
        playbook("d", json!({"type": "create_task", "title": "{{ a b }}"})),
        "steps[1]",
    );
    expect(
        &playbook(
            "e",
            json!({"type": "create_task", "title": "t {{input.x}}", "url": null}),
        ),
        201,
    );

    let field = |body: Value| admin.post("/api/v1/workspaces/acme/fields", body);
    let definition = |key: &str, kind: &str| json!({"key": key, "label": "L", "applies_to": ["task"], "type": kind});
    assert!(schemas["FieldDefinition"]["then"]["required"] == json!(["options"]));
    let mut text = definition("t", "text");
    text["options"] = json!(["a"]);
    refused(field(text), "options");
    refused(field(definition("s", "select")), "options");
    let mut blank = definition("s", "select");
    blank["options"] = json!([" "]);
    refused(field(blank), "options");
    let mut select = definition("s", " select ");
    select["options"] = json!(["a"]);
    expect(&field(select), 201);

    assert_eq!(
        schemas["CreateInvite"]["oneOf"].as_array().unwrap().len(),
        2
    );
    refused(
        admin.post(
            "/api/v1/workspaces/acme/invites",
            json!({"email": "x@example.com", "role": "viewer", "custom_role": "ops"}),
        ),
        "role",
    );
    refused(
        admin.post(
            "/api/v1/workspaces/acme/invites",
            json!({"email": "x@example.com"}),
        ),
        "role",
    );
}
