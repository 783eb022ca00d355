//! A real browser for the web app's tests: Debian's Chromium, driven
//! through `chromedriver` (WebDriver) with `fantoccini`, headless.
//!
//! Browser tests run one at a time (a lock): each Chromium is a few hundred
//! megabytes and the machine has two cores. Every page a test visits can be
//! checked for console errors and Content-Security-Policy violations
//! ([`Browser::assert_clean`]), run through axe-core for accessibility
//! ([`Browser::assert_accessible`]), and photographed
//! ([`Browser::screenshot`], into `target/screenshots/`).
//!
//! Without `chromedriver` on the PATH the tests say so and pass, unless
//! `VIGILO_REQUIRE_BROWSER` is set (as CI does), when they fail. axe-core
//! comes from npm (`tests/a11y`, installed by `scripts/test`); without it
//! the accessibility checks are skipped with a note, or fail under
//! `VIGILO_REQUIRE_BROWSER`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Set to make missing Chromium or axe-core a failure, not a skip.
pub const REQUIRE_ENV: &str = "VIGILO_REQUIRE_BROWSER";

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Records every CSP violation on every page, before any script of the
/// page runs.
const CSP_RECORDER: &str = "window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolations.push(
  {directive: e.effectiveDirective, blocked: e.blockedURI, source: e.sourceFile, line: e.lineNumber}));";

/// A WebDriver command fantoccini has no method for.
#[derive(Debug)]
struct Raw {
    path: &'static str,
    body: Value,
}

impl WebDriverCompatibleCommand for Raw {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/{}", session.unwrap_or(""), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

/// A headless Chromium on its own profile, and the server it looks at.
pub struct Browser {
    runtime: tokio::runtime::Runtime,
    client: Client,
    driver: Child,
    base: String,
    shots: PathBuf,
    _profile: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

fn required() -> bool {
    std::env::var_os(REQUIRE_ENV).is_some()
}

/// Starts chromedriver on a port of its choosing: the process and its port,
/// or what it said before it exited.
fn start_driver(path: &Path) -> Result<(Child, u16), String> {
    let mut driver = Command::new(path)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromedriver");
    let stdout = driver.stdout.take().expect("chromedriver stdout");
    let mut stderr = driver.stderr.take().expect("chromedriver stderr");
    let mut lines = BufReader::new(stdout).lines();
    let mut said = Vec::new();
    let port = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.split("started successfully on port ").nth(1) {
                    break rest.trim_end_matches('.').trim().parse::<u16>().ok();
                }
                said.push(line);
            }
            _ => break None,
        }
    };
    let Some(port) = port else {
        let _ = driver.kill();
        let _ = driver.wait();
        let mut errors = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut errors);
        said.push(errors.trim().to_owned());
        return Err(said.join("; "));
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    Ok((driver, port))
}

fn find_driver() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromedriver"))
            .find(|candidate| candidate.is_file())
    })
}

impl Browser {
    /// A browser for the server at `base` (`http://127.0.0.1:PORT`), or
    /// None when there is no chromedriver here (a failure instead under
    /// `VIGILO_REQUIRE_BROWSER`).
    pub fn start(base: &str) -> Option<Self> {
        let Some(driver_path) = find_driver() else {
            assert!(
                !required(),
                "{REQUIRE_ENV} is set but chromedriver is not on the PATH (apt-get install chromium chromium-driver)"
            );
            eprintln!("skipped: chromedriver is not on the PATH, so the browser tests did not run");
            return None;
        };
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let profile = tempfile::TempDir::new().expect("profile dir");
        // chromedriver now and then exits at start (seen once in a few
        // hundred starts on a loaded machine); it is started again, and
        // what it said is shown if it never comes up.
        let mut failures = Vec::new();
        let (driver, port) = loop {
            match start_driver(&driver_path) {
                Ok(started) => break started,
                Err(said) if failures.len() < 2 => {
                    failures.push(said);
                    std::thread::sleep(std::time::Duration::from_millis(300));
                }
                Err(said) => {
                    failures.push(said);
                    panic!(
                        "chromedriver exited before saying its port, three times: {}",
                        failures.join(" | ")
                    );
                }
            }
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let binary = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("/usr/bin/chromium");
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--disable-extensions", "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let client = runtime
            .block_on(
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("open a Chromium session");
        runtime
            .block_on(client.issue_cmd(Raw {
                path: "goog/cdp/execute",
                body: json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": CSP_RECORDER}}),
            }))
            .expect("install the CSP recorder");
        let shots = crate::bin_dir()
            .parent()
            .expect("target dir")
            .join("screenshots");
        std::fs::create_dir_all(&shots).expect("screenshots dir");
        Some(Browser {
            runtime,
            client,
            driver,
            base: base.trim_end_matches('/').to_owned(),
            shots,
            _profile: profile,
            _turn: turn,
        })
    }

    /// Runs a WebDriver future to its end.
    pub fn run<T>(&self, future: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    /// The fantoccini client, for what the helpers here do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `path` on the server.
    #[track_caller]
    pub fn goto(&self, path: &str) {
        let url = format!("{}{path}", self.base);
        self.run(self.client.goto(&url))
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// The current path (and query).
    pub fn path(&self) -> String {
        let url = self.run(self.client.current_url()).expect("current url");
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Resizes the window (a phone: 390 × 844).
    pub fn resize(&self, width: u32, height: u32) {
        self.run(self.client.set_window_size(width, height))
            .expect("resize");
    }

    /// Types `text` into the element `css`, after clearing it.
    #[track_caller]
    pub fn fill(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.run(element.clear()).expect("clear");
        self.run(element.send_keys(text)).expect("type");
    }

    /// Clicks the element `css`.
    #[track_caller]
    pub fn click(&self, css: &str) {
        let element = self.find(css);
        self.run(element.click())
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// The element `css`, waiting up to 10 s for it.
    #[track_caller]
    pub fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.run(
            self.client
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css(css)),
        )
        .unwrap_or_else(|e| {
            let body = self.text("body");
            panic!("no element {css} on {}: {e}\n{body}", self.path())
        })
    }

    /// The text of the element `css`, waiting up to 10 s for it to appear
    /// (after a form is submitted, say).
    #[track_caller]
    pub fn text_of(&self, css: &str) -> String {
        let element = self.find(css);
        self.run(element.text()).unwrap_or_default()
    }

    /// Whether an element `css` is on the page now.
    pub fn has(&self, css: &str) -> bool {
        self.run(self.client.find(Locator::Css(css))).is_ok()
    }

    /// The text of the element `css`.
    #[track_caller]
    pub fn text(&self, css: &str) -> String {
        match self.run(self.client.find(Locator::Css(css))) {
            Ok(element) => self.run(element.text()).unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Runs `script` in the page and returns what it returns.
    #[track_caller]
    pub fn script(&self, script: &str) -> Value {
        self.run(self.client.execute(script, vec![]))
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits (up to 10 s) until `script` returns true.
    #[track_caller]
    pub fn wait_for(&self, what: &str, script: &str) {
        for _ in 0..100 {
            if self.script(script) == Value::Bool(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("waited 10 s for {what} on {}", self.path());
    }

    /// Waits up to `limit` until `script` returns true; returns how long it
    /// took, or None if it never did.
    pub fn wait_at_most(&self, limit: Duration, script: &str) -> Option<Duration> {
        let start = std::time::Instant::now();
        while start.elapsed() < limit {
            if self.script(script) == Value::Bool(true) {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// Chooses the file `path` in the file input `css`.
    #[track_caller]
    pub fn upload(&self, css: &str, path: &std::path::Path) {
        let element = self.find(css);
        self.run(element.send_keys(&path.display().to_string()))
            .unwrap_or_else(|e| panic!("choose {} in {css}: {e}", path.display()));
    }

    /// Submits a form from the page with `fetch`, as a forged or hand-made
    /// request would, with the session's cookie and its CSRF token; returns
    /// the response's status. `body` is url-encoded fields without `csrf`.
    pub fn post_form(&self, action: &str, body: &str) -> u16 {
        let status = self.run(self.client.execute_async(
            "const [action, body, done] = [arguments[0], arguments[1], arguments[arguments.length - 1]];
             const csrf = document.querySelector('form[action=\"/logout\"] input[name=csrf]').value;
             fetch(action, {method: 'POST', redirect: 'manual',
               headers: {'Content-Type': 'application/x-www-form-urlencoded'},
               body: body + (body ? '&' : '') + 'csrf=' + encodeURIComponent(csrf)})
               .then(r => done(r.status));",
            vec![Value::String(action.into()), Value::String(body.into())],
        ));
        status
            .expect("fetch")
            .as_u64()
            .unwrap_or_else(|| panic!("no status from {action}")) as u16
    }

    /// Signs in as `email` with `password` through the sign-in page.
    #[track_caller]
    pub fn sign_in(&self, email: &str, password: &str) {
        self.goto("/login");
        self.fill("#email", email);
        self.fill("#password", password);
        self.click("form button[type=submit]");
        self.wait_for(
            "the sign-in to finish",
            "return !location.pathname.startsWith('/login')",
        );
    }

    /// Signs out through the account menu and waits for the sign-in page,
    /// so the next page is opened without the old session.
    pub fn sign_out(&self) {
        self.click("details.usermenu summary");
        self.click("details.usermenu form button");
        self.wait_for("the sign-in page", "return location.pathname === '/login'");
    }

    /// The session cookie's value (to check its attributes elsewhere).
    pub fn cookies(&self) -> Vec<fantoccini::cookies::Cookie<'static>> {
        self.run(self.client.get_all_cookies()).expect("cookies")
    }

    /// Saves a screenshot of the window as `target/screenshots/NAME.png`.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.run(self.client.screenshot()).expect("screenshot");
        let path = self.shots.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Console errors and CSP violations of the current page since the last
    /// check, in words.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let logs = self
            .run(self.client.issue_cmd(Raw {
                path: "se/log",
                body: json!({"type": "browser"}),
            }))
            .unwrap_or(Value::Null);
        for entry in logs.as_array().into_iter().flatten() {
            let message = entry["message"].as_str().unwrap_or("");
            // A page answered 401, 403, 409 or 422 is a refusal a test asked
            // for (a wrong password, a forbidden page, an invalid form); the
            // files a page loads never answer so.
            let refusal = entry["source"] == "network"
                && ["401", "403", "409", "422"]
                    .iter()
                    .any(|code| message.contains(&format!("status of {code} ")));
            if entry["level"] == "SEVERE" && !refusal {
                problems.push(format!(
                    "console ({}): {}",
                    entry["source"].as_str().unwrap_or("?"),
                    entry["message"].as_str().unwrap_or("?")
                ));
            }
        }
        let violations = self.script("return window.__cspViolations || []");
        for v in violations.as_array().into_iter().flatten() {
            problems.push(format!("CSP violation: {v}"));
        }
        self.script("window.__cspViolations = []");
        problems
    }

    /// Fails if the current page logged a console error or violated the
    /// Content-Security-Policy, ignoring the messages that contain one of
    /// `expected` (an error the test provoked on purpose).
    #[track_caller]
    pub fn assert_clean(&self, expected: &[&str]) {
        let problems: Vec<String> = self
            .problems()
            .into_iter()
            .filter(|p| !expected.iter().any(|e| p.contains(e)))
            .collect();
        assert!(
            problems.is_empty(),
            "{} has problems:\n{}",
            self.path(),
            problems.join("\n")
        );
    }

    /// Makes pages see `prefers-color-scheme: dark` (or light again), as a
    /// system set to dark mode does.
    pub fn prefer_dark(&self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        self.run(self.client.issue_cmd(Raw {
            path: "goog/cdp/execute",
            body: json!({"cmd": "Emulation.setEmulatedMedia",
                         "params": {"features": [{"name": "prefers-color-scheme", "value": value}]}}),
        }))
        .expect("emulate the colour scheme");
    }

    /// Runs axe-core on the current page and fails on any serious or
    /// critical finding.
    #[track_caller]
    pub fn assert_accessible(&self) {
        let Some(axe) = axe_source() else {
            assert!(
                !required(),
                "{REQUIRE_ENV} is set but axe-core is not installed (npm ci --prefix tests/a11y)"
            );
            eprintln!("skipped: axe-core is not installed (npm ci --prefix tests/a11y), so the accessibility check did not run");
            return;
        };
        self.script(&format!("{axe}\n;return true;"));
        let result = self
            .run(self.client.execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, {resultTypes: ['violations']})
                   .then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                     .map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target)}))),
                         e => done([{id: 'axe-error', help: String(e)}]));",
                vec![],
            ))
            .expect("run axe");
        let findings = result.as_array().cloned().unwrap_or_default();
        assert!(
            findings.is_empty(),
            "{} has accessibility findings:\n{}",
            self.path(),
            serde_json::to_string_pretty(&findings).unwrap_or_default()
        );
        // axe may log what it saw; that is not the page's problem.
        let _ = self.problems();
    }

    /// Checks the current page: clean console, no CSP violation, accessible;
    /// and saves its screenshot as `name`.
    #[track_caller]
    pub fn check_page(&self, name: &str) {
        self.assert_clean(&[]);
        self.assert_accessible();
        self.screenshot(name);
    }
}

fn axe_source() -> Option<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("a11y/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(path).ok()
}

impl Drop for Browser {
    fn drop(&mut self) {
        let client = self.client.clone();
        let _ = self.runtime.block_on(client.close());
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
