//! The OpenAPI document is generated from the routing code: every handler's
//! `#[utoipa::path]` is in the served document, and no API route is added
//! around the documenting router.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{json, Value};
use vigilo_tests::{expect, Api, TestDb, TestServer};

use crate::{create_workspace, join};

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

/// The values of `schema` (a request's body, parameter or property) that
/// break one of the limits it documents, each with the limit it breaks:
/// one under a `minLength`, `minimum` or `minItems`, one over a
/// `maxLength`, `maximum` or `maxItems`, a repeat where items are unique,
/// one outside an `enum`, one of a `not` set, a time that is not one, and a
/// text its `pattern` refuses.
/// `valid` is an accepted value, which an array's too-many case repeats.
fn breaking_values(doc: &Value, schema: &Value, valid: &Value) -> Vec<(Value, String)> {
    let schema = resolve(doc, schema);
    let mut out = Vec::new();
    let number = |key: &str| schema[key].as_i64();
    if let Some(n) = schema["minLength"].as_u64().filter(|n| *n > 0) {
        out.push((json!("a".repeat(n as usize - 1)), format!("minLength {n}")));
    }
    if let Some(n) = schema["maxLength"].as_u64() {
        out.push((json!("a".repeat(n as usize + 1)), format!("maxLength {n}")));
    }
    if let Some(n) = number("minimum") {
        out.push((json!(n - 1), format!("minimum {n}")));
    }
    if let Some(n) = number("maximum") {
        out.push((json!(n + 1), format!("maximum {n}")));
    }
    if let Some(n) = schema["minItems"].as_u64().filter(|n| *n > 0) {
        let items: Vec<Value> = valid
            .as_array()
            .unwrap()
            .iter()
            .take(n as usize - 1)
            .cloned()
            .collect();
        out.push((json!(items), format!("minItems {n}")));
    }
    if let Some(n) = schema["maxItems"].as_u64() {
        let one = valid[0].clone();
        out.push((json!(vec![one; n as usize + 1]), format!("maxItems {n}")));
    }
    if schema["uniqueItems"] == true {
        let one = valid.get(0).cloned().unwrap_or(json!(1));
        out.push((json!([one.clone(), one]), "uniqueItems".to_owned()));
    }
    if schema["enum"].is_array() && schema["type"] == "string" {
        out.push((json!("no-such-value"), "enum".to_owned()));
    }
    if let Some(first) = schema["not"]["enum"].get(0) {
        out.push((first.clone(), "not enum".to_owned()));
    }
    if schema["type"] == "array" && resolve(doc, &schema["items"])["enum"].is_array() {
        out.push((json!(["no-such-value"]), "items enum".to_owned()));
    }
    if schema["format"] == "date-time" {
        out.push((json!("yesterday"), "date-time".to_owned()));
    }
    if let Some(pattern) = schema["pattern"].as_str() {
        out.push((json!(refused_by(pattern)), format!("pattern {pattern}")));
    }
    out
}

/// A text `pattern` refuses. Lookarounds are dropped to compile it (which
/// only widens what it matches), so what the wider pattern refuses the
/// pattern refuses too.
fn refused_by(pattern: &str) -> String {
    let mut wider = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find("(?!").or_else(|| rest.find("(?=")) {
        wider.push_str(&rest[..start]);
        let end = rest[start..].find(')').unwrap();
        rest = &rest[start + end + 1..];
    }
    wider.push_str(rest);
    let regex = regex_automata::dfa::regex::Regex::new(&wider)
        .unwrap_or_else(|e| panic!("cannot read the pattern {pattern}: {e}"));
    ["a b", " ", "a\u{1}b", "a\u{0}b", "{{"]
        .into_iter()
        .find(|t| !regex.is_match(*t))
        .unwrap_or_else(|| panic!("no sample text breaks {pattern}"))
        .to_owned()
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

/// Every limit the document states on what a request carries is one the
/// server holds to: for each body property, query or path parameter and
/// header with a documented limit, the value just past it is refused with
/// the field named, where the rest of the request is valid.
#[test]
fn every_documented_limit_is_enforced() {
    let server = TestServer::with_plugins_and(TestDb::sqlite(), &["webhook"], |config| {
        config.webhook_allowed_hosts = vec!["127.0.0.1".into()];
    });
    let admin = server.admin();
    create_workspace(&admin, "acme");
    let item = admin.create(
        "/api/v1/workspaces/acme/items",
        json!({"kind": "task", "title": "first"}),
    )["id"]
        .clone();
    admin.create(
        "/api/v1/workspaces/acme/playbooks",
        json!({"name": "p1", "steps": [{"type": "create_task", "title": "t"}]}),
    );
    admin.create(
        "/api/v1/workspaces/acme/integrations",
        json!({"name": "hook", "adapter": "webhook",
               "config": {"url": "http://127.0.0.1:9/hook", "secret": "a-long-random-shared-secret"}}),
    );
    // A member without a password, who may set a first one.
    let member = server.api(&join(&server, "acme", "m@example.com", "viewer", false));
    let task = expect(&admin.get("/api/v1/scheduler/tasks"), 200)["tasks"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    let (pem, _) = crate::certificates::certificate("limits.example", -1, 30);
    let doc = expect(&server.anonymous().get("/api/openapi.json"), 200).clone();
    let concrete = |path: &str| {
        let name = if path.contains("/scheduler/") {
            task.as_str()
        } else {
            "hook"
        };
        path.replace("{slug}", "acme")
            .replace("{id}", &item.to_string())
            .replace("{name}", name)
            .replace("{key}", "k")
            .replace("{path}", "x.js")
            .replace("{playbook}", "p1")
            .replace("{email}", "m%40example.com")
            .replace("{token}", "vgi_no-such-invite")
    };
    // A valid body for each operation whose body has limits, and the caller.
    let snapshot = json!({
        "schema_version": 1, "settings": {}, "policies": {}, "custom_roles": [],
        "custom_fields": [{"key": "k", "label": "L", "applies_to": ["task"], "type": "text"}],
    });
    let steps = json!([{"type": "create_task", "title": "t"}]);
    let anonymous = server.anonymous();
    let bodies: Vec<(&str, &str, Value, &Api)> = vec![
        (
            "post",
            "/api/v1/workspaces",
            json!({"name": "N", "slug": "new-ws", "region": "eu"}),
            &admin,
        ),
        (
            "post",
            "/api/v1/templates",
            json!({"name": "t1", "snapshot": snapshot}),
            &admin,
        ),
        (
            "put",
            "/api/v1/workspaces/{slug}/settings/{key}",
            json!({"value": 1}),
            &admin,
        ),
        ("post", "/api/v1/tokens", json!({"name": "t"}), &admin),
        (
            "put",
            "/api/v1/me/password",
            json!({"password": "correct horse battery"}),
            &member,
        ),
        (
            "post",
            "/api/v1/workspaces/{slug}/roles",
            json!({"name": "r1", "base_role": "viewer"}),
            &admin,
        ),
        (
            "patch",
            "/api/v1/workspaces/{slug}/members/{email}",
            json!({"role": "viewer"}),
            &admin,
        ),
        (
            "post",
            "/api/v1/workspaces/{slug}/invites",
            json!({"email": "n@example.com", "role": "viewer"}),
            &admin,
        ),
        (
            "post",
            "/api/v1/invites/{token}/accept",
            json!({"name": "N"}),
            &anonymous,
        ),
        (
            "post",
            "/api/v1/workspaces/{slug}/items",
            json!({"kind": "task", "title": "t"}),
            &admin,
        ),
        (
            "patch",
            "/api/v1/workspaces/{slug}/items/{id}",
            json!({"title": "t2"}),
            &admin,
        ),
        (
            "post",
            "/api/v1/workspaces/{slug}/items/{id}/transition",
            json!({"status": "doing"}),
            &admin,
        ),
        (
            "post",
            "/api/v1/workspaces/{slug}/fields",
            json!({"key": "k1", "label": "L", "applies_to": ["task"], "type": "text"}),
            &admin,
        ),
        (
            "post",
            "/api/v1/workspaces/{slug}/dashboard/widgets",
            json!({"widget": "w"}),
            &admin,
        ),
        (
            "put",
            "/api/v1/workspaces/{slug}/dashboard/order",
            json!({"ids": []}),
            &admin,
        ),
        (
            "post",
            "/api/v1/workspaces/{slug}/certificates",
            json!({"pem": pem, "name": "c"}),
            &admin,
        ),
        (
            "post",
            "/api/v1/workspaces/{slug}/integrations",
            json!({"name": "hook2", "adapter": "webhook", "config": {}}),
            &admin,
        ),
        (
            "post",
            "/api/v1/workspaces/{slug}/integrations/{name}/test",
            json!({"text": "hi"}),
            &admin,
        ),
        (
            "post",
            "/api/v1/workspaces/{slug}/playbooks",
            json!({"name": "p2", "steps": steps}),
            &admin,
        ),
        (
            "put",
            "/api/v1/plugins/{name}/tier",
            json!({"tier": "config"}),
            &admin,
        ),
        (
            "put",
            "/api/v1/workspaces/{slug}/playbooks/{playbook}",
            json!({"name": "p1", "steps": steps}),
            &admin,
        ),
    ];
    let mut checked = 0;
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let what = format!("{method} {path}");
            let found = bodies.iter().find(|(m, p, _, _)| m == method && p == path);
            let (body, caller) = match found {
                Some((_, _, body, caller)) => (Some(body), *caller),
                None => (None, &admin),
            };
            let send = |url: &str, body: Option<&Value>, headers: &[(&str, &str)]| {
                caller.raw_with(
                    &method.to_uppercase(),
                    url,
                    headers,
                    body.map(|_| "application/json"),
                    body.map(|b| b.to_string().into_bytes()).as_deref(),
                )
            };
            // Body properties, one level into nested objects.
            if let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") {
                let mut fields = vec![];
                let schema = resolve(&doc, schema);
                for (name, prop) in schema["properties"].as_object().into_iter().flatten() {
                    fields.push((name.clone(), prop));
                    let nested = resolve(&doc, prop);
                    for (inner, p) in nested["properties"].as_object().into_iter().flatten() {
                        fields.push((format!("{name}.{inner}"), p));
                    }
                }
                for (field, prop) in fields {
                    let pointer = format!("/{}", field.replace('.', "/"));
                    let valid = body
                        .and_then(|b| b.pointer(&pointer))
                        .cloned()
                        .unwrap_or(Value::Null);
                    for (bad, limit) in breaking_values(&doc, prop, &valid) {
                        let body = body.unwrap_or_else(|| {
                            panic!("{what}: give a valid body to test `{field}` with")
                        });
                        let mut body = body.clone();
                        let (parent, key) = match field.rsplit_once('.') {
                            Some((parent, key)) => (format!("/{parent}"), key.to_owned()),
                            None => (String::new(), field.clone()),
                        };
                        body.pointer_mut(&parent).unwrap()[key] = bad;
                        let resp = send(&concrete(path), Some(&body), &[]);
                        refused(&resp, &field, &format!("{what}, {field} breaking {limit}"));
                        checked += 1;
                    }
                }
            }
            // Query and path parameters, and headers.
            for param in op["parameters"].as_array().into_iter().flatten() {
                let name = param["name"].as_str().unwrap();
                let place = param["in"].as_str().unwrap();
                for (bad, limit) in breaking_values(&doc, &param["schema"], &Value::Null) {
                    let text = match &bad {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    // A NUL character in a path is refused before any route
                    // is chosen, so no field is named: a query shows the rule.
                    if place == "path" && text.contains('\0') {
                        continue;
                    }
                    let encoded: String = text
                        .bytes()
                        .map(|b| match b {
                            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                                char::from(b).to_string()
                            }
                            _ => format!("%{b:02X}"),
                        })
                        .collect();
                    let resp = match place {
                        "query" => send(&format!("{}?{name}={encoded}", concrete(path)), body, &[]),
                        "path" => send(
                            &concrete(&path.replace(&format!("{{{name}}}"), &encoded)),
                            body,
                            &[],
                        ),
                        _ => send(&concrete(path), body, &[(name, text.as_str())]),
                    };
                    refused(
                        &resp,
                        name,
                        &format!("{what}, {place} {name} breaking {limit}"),
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} limits were tried");
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
