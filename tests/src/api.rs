//! An HTTP client for the API, and what it answers.

use std::time::Duration;

use serde_json::{json, Value};

/// An HTTP response, read whole.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Body parsed as JSON (Null when empty or not JSON).
    pub json: Value,
    /// Raw body.
    pub text: String,
    /// The `Content-Type` header.
    pub content_type: String,
    /// Every header, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl Response {
    /// The `error.code` of an error body.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A small blocking JSON client.
#[derive(Clone)]
pub struct Api {
    base: String,
    token: Option<String>,
    agent: ureq::Agent,
}

impl Api {
    /// A client for `base` with an optional bearer token.
    pub fn new(base: &str, token: Option<&str>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            token: token.map(str::to_string),
            agent: ureq::AgentBuilder::new()
                .timeout(Duration::from_secs(60))
                .build(),
        }
    }

    /// The same client, waiting up to `limit` for each answer (60 s by
    /// default): for a request that is slow by design, such as a bulk
    /// invite of 50,000 rows on a machine busy with other tests.
    pub fn patient(mut self, limit: Duration) -> Self {
        self.agent = ureq::AgentBuilder::new().timeout(limit).build();
        self
    }

    /// Sends a request with an optional raw body and content type.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Response {
        self.raw_with(method, path, &[], content_type, body)
    }

    /// POSTs JSON with an `Idempotency-Key` header.
    pub fn post_keyed(&self, path: &str, key: &str, body: &Value) -> Response {
        self.raw_with(
            "POST",
            path,
            &[("Idempotency-Key", key)],
            Some("application/json"),
            Some(body.to_string().as_bytes()),
        )
    }

    /// [`Api::raw`] with extra request headers.
    pub fn raw_with(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        content_type: Option<&str>,
        body: Option<&[u8]>,
    ) -> Response {
        let mut req = self.agent.request(method, &format!("{}{path}", self.base));
        for (name, value) in headers {
            req = req.set(name, value);
        }
        if let Some(t) = &self.token {
            req = req.set("Authorization", &format!("Bearer {t}"));
        }
        if let Some(ct) = content_type {
            req = req.set("Content-Type", ct);
        }
        let result = match body {
            Some(b) => req.send_bytes(b),
            None => req.call(),
        };
        let resp = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{method} {path}: transport error {e}"),
        };
        let status = resp.status();
        let content_type = resp.header("content-type").unwrap_or("").to_string();
        let headers = resp
            .headers_names()
            .into_iter()
            .map(|name| {
                let value = resp.header(&name).unwrap_or("").to_string();
                (name.to_ascii_lowercase(), value)
            })
            .collect();
        // Not `into_string`, which stops at 10 MB (a 50,000-row bulk
        // invite's report is larger).
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut resp.into_reader(), &mut text);
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Response {
            status,
            json,
            text,
            content_type,
            headers,
        }
    }

    /// GET.
    pub fn get(&self, path: &str) -> Response {
        self.raw("GET", path, None, None)
    }

    /// DELETE.
    pub fn delete(&self, path: &str) -> Response {
        self.raw("DELETE", path, None, None)
    }

    /// POST JSON.
    pub fn post(&self, path: &str, body: Value) -> Response {
        self.raw(
            "POST",
            path,
            Some("application/json"),
            Some(body.to_string().as_bytes()),
        )
    }

    /// POSTs JSON that creates something: asserts 201 Created (printing the
    /// body otherwise) and returns the created resource.
    #[track_caller]
    pub fn create(&self, path: &str, body: Value) -> Value {
        expect(&self.post(path, body), 201).clone()
    }

    /// Saves `snapshot` (a workspace export) as template `template`, then
    /// creates workspace `slug`, named `name`, in `region` from it.
    #[track_caller]
    pub fn copy_through_template(
        &self,
        snapshot: Value,
        template: &str,
        (name, slug, region): (&str, &str, &str),
    ) -> Value {
        self.create(
            "/api/v1/templates",
            json!({"name": template, "snapshot": snapshot}),
        );
        self.create(
            "/api/v1/workspaces",
            json!({"name": name, "slug": slug, "region": region, "template": template}),
        )
    }

    /// PUT JSON.
    pub fn put(&self, path: &str, body: Value) -> Response {
        self.raw(
            "PUT",
            path,
            Some("application/json"),
            Some(body.to_string().as_bytes()),
        )
    }

    /// PATCH with a JSON body.
    pub fn patch(&self, path: &str, body: Value) -> Response {
        self.raw(
            "PATCH",
            path,
            Some("application/json"),
            Some(body.to_string().as_bytes()),
        )
    }
}

/// Asserts a status, printing the body on failure.
#[track_caller]
pub fn expect(resp: &Response, status: u16) -> &Value {
    assert_eq!(
        resp.status, status,
        "unexpected status; body: {}",
        resp.text
    );
    &resp.json
}
