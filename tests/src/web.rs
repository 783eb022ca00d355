//! The web app over HTTP: signing in through the form, and a session's
//! cookie for the pages and forms that follow.

use std::time::Duration;

/// A browser session made without a browser: signs in through `/login` as
/// a form post would, and keeps the session cookie.
pub struct WebSession {
    base: String,
    cookie: String,
    agent: ureq::Agent,
}

/// The sign-in page as a browser holds it: the form's cookie and token,
/// ready to be posted (any number of times).
pub struct SignInForm {
    base: String,
    agent: ureq::Agent,
    form_cookie: String,
    token: String,
}

/// The `name=value` pair of cookie `name` that `response` sets, if any.
pub fn set_cookie(response: &ureq::Response, name: &str) -> Option<String> {
    response.all("set-cookie").into_iter().find_map(|c| {
        c.split(';')
            .next()
            .filter(|pair| pair.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    })
}

/// The response to a request for `path`, whatever its status.
fn answer(path: &str, result: Result<ureq::Response, ureq::Error>) -> ureq::Response {
    match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    }
}

impl SignInForm {
    /// Opens `/login` on the server at `base`.
    pub fn open(base: &str) -> Self {
        let agent = ureq::AgentBuilder::new()
            .redirects(0)
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
            .timeout(Duration::from_secs(60))
            .build();
        let page = agent
            .get(&format!("{base}/login"))
            .call()
            .expect("GET /login");
        let form_cookie = set_cookie(&page, "vigilo_form").expect("the sign-in form's cookie");
        let html = page.into_string().expect("the sign-in page");
        let token = html
            .split("name=\"form_token\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("the sign-in form's token")
            .to_owned();
        SignInForm {
            base: base.to_owned(),
            agent,
            form_cookie,
            token,
        }
    }

    /// Posts `email` and `password`, with the browser's other cookies
    /// (`name=value`, such as a known-device cookie) when given; returns
    /// the answer whatever its status.
    pub fn submit(&self, email: &str, password: &str, cookies: &[&str]) -> ureq::Response {
        let mut cookie = self.form_cookie.clone();
        for extra in cookies {
            cookie.push_str("; ");
            cookie.push_str(extra);
        }
        let result = self
            .agent
            .post(&format!("{}/login", self.base))
            .set("Cookie", &cookie)
            .send_form(&[
                ("email", email),
                ("password", password),
                ("form_token", &self.token),
                ("next", "/"),
            ]);
        answer("/login", result)
    }
}

impl WebSession {
    /// Signs in as `email` with `password` on the server at `base`.
    pub fn sign_in(base: &str, email: &str, password: &str) -> Self {
        let form = SignInForm::open(base);
        let response = form.submit(email, password, &[]);
        let cookie = set_cookie(&response, "vigilo_session")
            .unwrap_or_else(|| panic!("no session after signing in as {email}"));
        WebSession {
            base: base.to_owned(),
            cookie,
            agent: form.agent,
        }
    }

    fn fetch(&self, path: &str) -> ureq::Response {
        answer(
            path,
            self.agent
                .get(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie)
                .call(),
        )
    }

    /// GETs `path` with the session; returns the status and the page.
    pub fn page(&self, path: &str) -> (u16, String) {
        let response = self.fetch(path);
        (response.status(), response.into_string().expect("the page"))
    }

    /// POSTs a form (`application/x-www-form-urlencoded`) with the
    /// session; returns the status and the page.
    pub fn form(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let response = self.post_form(path, fields);
        (response.status(), response.into_string().expect("the page"))
    }

    /// The answer to a form posted with the session, whatever its status.
    fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> ureq::Response {
        answer(
            path,
            self.agent
                .post(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie)
                .send_form(fields),
        )
    }

    /// POSTs a form as [`WebSession::form`] does and, when the answer is a
    /// redirect (post, redirect, get), follows it as a browser would:
    /// returns the status and page of where it led (or of the answer, when
    /// it was no redirect).
    pub fn form_and_follow(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let response = self.post_form(path, fields);
        match (response.status(), response.header("location")) {
            (303, Some(to)) => {
                let to = to.to_owned();
                self.page(&to)
            }
            (status, _) => (status, response.into_string().expect("the page")),
        }
    }

    /// POSTs a form with one file (`multipart/form-data`) and the session's
    /// CSRF token `csrf`; returns the status and the page.
    pub fn upload(
        &self,
        path: &str,
        csrf: &str,
        field: &str,
        file_name: &str,
        file: &[u8],
    ) -> (u16, String) {
        let boundary = "vigilo-test-boundary-7f3a";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n\
             Content-Type: text/csv\r\n\r\n"
        )
        .into_bytes();
        body.extend_from_slice(file);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        let response = answer(
            path,
            self.agent
                .post(&format!("{}{path}", self.base))
                .set("Cookie", &self.cookie)
                .set(
                    "Content-Type",
                    &format!("multipart/form-data; boundary={boundary}"),
                )
                .send_bytes(&body),
        );
        (response.status(), response.into_string().expect("the page"))
    }

    /// The session's `Cookie` header value.
    pub fn cookie(&self) -> &str {
        &self.cookie
    }

    /// Sends `request` with the session; the response, whatever its status.
    fn send(&self, request: ureq::Request, form: Option<&[(&str, &str)]>) -> ureq::Response {
        let what = format!("{} {}", request.method(), request.url());
        let request = request.set("Cookie", &self.cookie);
        let result = match form {
            Some(form) => request.send_form(form),
            None => request.call(),
        };
        match result {
            Ok(r) | Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{what}: {e}"),
        }
    }

    /// Submits the form of the page at `path` as a browser would: `fields`
    /// with the page's CSRF token, posted to `path`. Returns the status
    /// and the HTML of the answer.
    pub fn submit(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
        let (_, html) = self.page(path);
        let csrf = html
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no CSRF token on {path}"))
            .to_owned();
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        let post = self.agent.post(&format!("{}{path}", self.base));
        let response = self.send(post, Some(&form));
        (
            response.status(),
            response.into_string().unwrap_or_default(),
        )
    }

    /// GETs `path` with the session; returns the status and the `Location`
    /// of a redirect.
    pub fn get(&self, path: &str) -> (u16, Option<String>) {
        let response = self.fetch(path);
        (
            response.status(),
            response.header("location").map(str::to_owned),
        )
    }
}
