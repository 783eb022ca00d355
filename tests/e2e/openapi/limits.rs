//! Every limit the OpenAPI document states is enforced: values just past it
//! are refused, naming the field.

use super::*;

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
            .replace("{comment}", "1")
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
            "/api/v1/workspaces/{slug}/items/transitions",
            json!({"kind": "task", "ids": [item], "status": "doing", "comment": "c"}),
            &admin,
        ),
        (
            "post",
            "/api/v1/workspaces/{slug}/items/{id}/comments",
            json!({"body": "hi"}),
            &admin,
        ),
        (
            "patch",
            "/api/v1/workspaces/{slug}/items/{id}/comments/{comment}",
            json!({"body": "hi"}),
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
