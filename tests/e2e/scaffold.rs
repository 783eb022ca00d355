//! A vendor's first hour: `vigilo-plugin new` writes a crate of each kind
//! that builds, passes its own tests and loads into a real server (and, for
//! the two kinds with a frontend half, draws its element in a real browser
//! with a clean console); `vigilo-plugin dev` keeps a scratch server in step
//! with the crate as it is edited.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use tempfile::TempDir;
use vigilo_host::config::InstalledPlugin;
use vigilo_tests::browser::Browser;
use vigilo_tests::plugins::library_file_name;
use vigilo_tests::process::free_port;
use vigilo_tests::{bin_dir, cargo_bin, expect, Api, TestDb, TestServer};

use crate::{create_workspace, root_with_password, web::PASSWORD};

const KINDS: [&str; 4] = [
    "field_type",
    "dashboard_widget",
    "integration_adapter",
    "celery_task",
];

/// One target directory for every crate a vendor would create, kept
/// between runs (and shared with the guide's crates) so their
/// dependencies build once.
pub(crate) fn vendor_target() -> PathBuf {
    bin_dir().join("guide-plugins")
}

/// `cargo` for a crate outside this workspace: none of this test run's
/// Cargo settings leak into it, and it builds into [`vendor_target`].
pub(crate) fn vendor_cargo(dir: &Path) -> Command {
    let mut cargo = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" {
            cargo.env_remove(&key);
        }
    }
    cargo
        .env("CARGO_TARGET_DIR", vendor_target())
        .current_dir(dir);
    cargo
}

#[track_caller]
fn new_plugin(vendor: &Path, name: &str, kind: &str) -> PathBuf {
    let dir = vendor.join(name);
    let output = Command::new(cargo_bin("vigilo-plugin"))
        .args(["new", name, "--kind", kind, "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("created the {kind} plugin {name}")),
        "{stdout}"
    );
    assert!(stdout.contains("vigilo-plugin dev"), "{stdout}");
    dir
}

#[test]
fn a_new_plugin_of_each_kind_builds_passes_its_tests_and_loads() {
    let vendor = TempDir::new().unwrap();
    let mut libraries = Vec::new();
    for kind in KINDS {
        let name = format!("scaffold_{kind}");
        let dir = new_plugin(vendor.path(), &name, kind);
        assert_eq!(
            dir.join("frontend").join(format!("{name}.js")).exists(),
            matches!(kind, "field_type" | "dashboard_widget"),
            "{kind}"
        );
        let formatted = vendor_cargo(&dir)
            .args(["fmt", "--check"])
            .output()
            .unwrap();
        assert!(
            formatted.status.success(),
            "{kind} is not laid out as rustfmt would: {}",
            String::from_utf8_lossy(&formatted.stdout)
        );
        // Its own tests: the harness in process, and the server's check of
        // the library the tests built.
        let tests = vendor_cargo(&dir)
            .args(["test", "--quiet", "-p", &name])
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&tests.stdout),
            String::from_utf8_lossy(&tests.stderr)
        );
        assert!(tests.status.success(), "{kind}: {said}");
        assert!(
            said.contains("a_server_accepts_the_built_library") || said.contains("test result: ok"),
            "{said}"
        );
        let build = vendor_cargo(&dir)
            .args(["build", "--quiet", "--lib", "-p", &name])
            .status()
            .unwrap();
        assert!(build.success(), "{kind} does not build");
        let built = vendor_target().join("debug").join(library_file_name(&name));
        // The packager's own check says a server would take it.
        let checked = Command::new(cargo_bin("vigilo-plugin"))
            .arg("check")
            .arg(&built)
            .output()
            .unwrap();
        assert!(
            checked.status.success(),
            "{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        libraries.push(InstalledPlugin::from(built));
    }
    // A second `new` into the same place refuses and leaves it alone.
    let again = Command::new(cargo_bin("vigilo-plugin"))
        .args([
            "new",
            "scaffold_celery_task",
            "--kind",
            "celery_task",
            "--dir",
        ])
        .arg(vendor.path().join("scaffold_celery_task"))
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let server = TestServer::start_with(TestDb::sqlite(), move |config| {
        config.installed_plugins = libraries;
    });
    let admin = server.admin();
    let listed = expect(&admin.get("/api/v1/plugins?all=true"), 200).clone();
    let summary: Vec<(String, String)> = listed["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("?").to_owned(),
                p["state"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = KINDS
        .iter()
        .map(|kind| (format!("scaffold_{kind}"), "loaded".to_owned()))
        .collect();
    assert_eq!(summary, expected, "{listed:#}");

    // The field type and the widget work through the API.
    create_workspace(&admin, "ops");
    admin.create(
        "/api/v1/workspaces/ops/fields",
        json!({"key": "ticket", "label": "Ticket", "type": "scaffold_field_type", "applies_to": ["task"]}),
    );
    let refused = admin.post(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "t", "fields": {"ticket": "no spaces"}}),
    );
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert!(
        refused.text.contains("letters, digits and hyphens"),
        "{}",
        refused.text
    );
    let item = admin.create(
        "/api/v1/workspaces/ops/items",
        json!({"kind": "task", "title": "Rotate keys", "fields": {"ticket": "ops-42"}}),
    );
    assert_eq!(item["fields"]["ticket"], "OPS-42", "{item:#}");
    admin.create(
        "/api/v1/workspaces/ops/dashboard/widgets",
        json!({"widget": "scaffold_dashboard_widget"}),
    );
    let dashboard = expect(&admin.get("/api/v1/workspaces/ops/dashboard"), 200).clone();
    assert_eq!(
        dashboard["widgets"][0]["data"],
        json!({"open": 1, "kind": "all"}),
        "{dashboard:#}"
    );
    // An ordinary server has no dev loop.
    assert_eq!(Api::new(&server.url, None).get("/dev/reload").status, 404);

    // In the browser, both frontend halves draw, with a clean console.
    let Some(browser) = Browser::start(&server.url) else {
        return;
    };
    root_with_password(&server);
    browser.sign_in("root@example.com", PASSWORD);
    browser.goto("/w/ops");
    browser.wait_for(
        "the scaffolded tile",
        "const tile = document.querySelector('scaffold_dashboard_widget-tile');
         return !!tile && tile.shadowRoot.querySelector('.count').textContent === '1';",
    );
    assert!(!browser.has("body[data-dev-reload]"));
    browser.assert_clean(&[]);
    browser.goto("/w/ops/tasks/new");
    browser.wait_for(
        "the scaffolded editor",
        "return !!document.querySelector('scaffold_field_type-editor') \
         && customElements.get('scaffold_field_type-editor') !== undefined;",
    );
    browser.assert_clean(&[]);
    browser.fill("#title", "Renew certificates");
    browser.script(
        "const editor = document.querySelector('scaffold_field_type-editor');
         const input = editor.shadowRoot.querySelector('input');
         input.value = 'chg-7';
         input.dispatchEvent(new Event('input'));
         return null;",
    );
    browser.click("form.form button[type=submit].primary");
    browser.wait_for(
        "the new task's page",
        "return /^\\/w\\/ops\\/tasks\\/\\d+$/.test(location.pathname);",
    );
    assert!(
        browser.text("main").contains("CHG-7"),
        "{}",
        browser.text("main")
    );
    browser.assert_clean(&[]);
}

/// `vigilo-plugin dev`, its process group killed when the test ends.
struct DevLoop {
    child: Child,
    output: PathBuf,
}

impl DevLoop {
    fn said(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    #[track_caller]
    fn wait_for(&self, what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
        let start = Instant::now();
        while !done() {
            assert!(
                start.elapsed() < limit,
                "{what}: not within {limit:?}; vigilo-plugin dev said:\n{}",
                self.said()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for DevLoop {
    fn drop(&mut self) {
        // The server is in the same process group: both stop.
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_dev_loop_rebuilds_reinstalls_and_reloads() {
    use std::os::unix::process::CommandExt as _;

    let vendor = TempDir::new().unwrap();
    let dir = new_plugin(vendor.path(), "devloop_tile", "dashboard_widget");
    let port = free_port();
    let output = vendor.path().join("dev.log");
    let log = std::fs::File::create(&output).unwrap();
    let mut dev = Command::new(cargo_bin("vigilo-plugin"));
    // The cargo it runs sees none of this test run's Cargo settings.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CARGO_") && key != "CARGO_HOME" {
            dev.env_remove(key);
        }
    }
    dev.args(["dev", "--port", &port.to_string(), "--server"])
        .arg(cargo_bin("vigilo-server"))
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", vendor_target())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .process_group(0);
    let dev = DevLoop {
        child: dev.spawn().unwrap(),
        output,
    };
    let url = format!("http://127.0.0.1:{port}");
    dev.wait_for("the scratch server", Duration::from_secs(300), || {
        dev.said().contains("Press Ctrl-C to stop.")
    });
    let said = dev.said();
    let token = said
        .lines()
        .find_map(|line| line.trim().strip_prefix("API token: "))
        .unwrap_or_else(|| panic!("no token in:\n{said}"))
        .to_owned();
    let password = said
        .lines()
        .find_map(|line| line.split("with the password ").nth(1))
        .unwrap_or_else(|| panic!("no password in:\n{said}"))
        .trim()
        .to_owned();
    let api = Api::new(&url, Some(&token));
    let plugin = |api: &Api| api.get("/api/v1/plugins/devloop_tile");
    // Until the plugin is loaded the server may answer 404, or (while the
    // dev loop brings it up) not answer at all: both mean "not yet".
    dev.wait_for("the plugin loaded", Duration::from_secs(30), || {
        ureq::get(&format!("{url}/api/v1/plugins/devloop_tile"))
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .is_ok()
    });
    let first = expect(&plugin(&api), 200).clone();
    assert_eq!(first["state"], "loaded", "{first:#}");
    let fingerprint = |api: &Api| expect_text(&api.get("/dev/reload"));
    let before = fingerprint(&api);

    // A browser on the dashboard, to see it reload.
    let browser = Browser::start(&url);
    if let Some(browser) = &browser {
        browser.sign_in("dev@example.com", &password);
        create_workspace(&api, "ops");
        api.create(
            "/api/v1/workspaces/ops/dashboard/widgets",
            json!({"widget": "devloop_tile"}),
        );
        browser.goto("/w/ops");
        assert!(browser.has("body[data-dev-reload]"));
        browser.wait_for(
            "the tile",
            "return !!document.querySelector('devloop_tile-tile')?.shadowRoot.querySelector('.count');",
        );
        browser.script("window.__notReloaded = true; return null;");
        browser.wait_for(
            "the page's first look at the server",
            "return document.body.dataset.devSeen !== undefined;",
        );
    }

    // A frontend edit: served from disk at once, no rebuild.
    let module = dir.join("frontend/devloop_tile.js");
    let edited = std::fs::read_to_string(&module)
        .unwrap()
        .replace("open work items", "unfinished work items");
    std::fs::write(&module, edited).unwrap();
    let asset = Api::new(&url, None).get("/plugins/devloop_tile/v/any/devloop_tile.js");
    assert_eq!(asset.status, 200, "{}", asset.text);
    assert!(asset.text.contains("unfinished work items"));
    assert_eq!(asset.header("cache-control"), Some("no-store"));
    assert_ne!(fingerprint(&api), before, "the pages are told to reload");
    if let Some(browser) = &browser {
        browser.wait_for(
            "the page reloaded with the new element",
            "return window.__notReloaded === undefined && \
             document.querySelector('devloop_tile-tile')?.shadowRoot.querySelector('.what')?.textContent === 'unfinished work items';",
        );
        browser.assert_clean(&[]);
        browser.script("window.__notReloaded = true; return null;");
        browser.wait_for(
            "the page's first look at the server",
            "return document.body.dataset.devSeen !== undefined;",
        );
    }
    assert_eq!(
        expect(&plugin(&api), 200)["sha256"],
        first["sha256"],
        "a frontend edit needs no build"
    );

    // A Rust edit: rebuilt, reinstalled, replaced in the running server.
    let lib = dir.join("src/lib.rs");
    let edited = std::fs::read_to_string(&lib)
        .unwrap()
        .replace("\"Devloop tile\"", "\"Unfinished work\"");
    assert!(edited.contains("Unfinished work"));
    std::fs::write(&lib, edited).unwrap();
    dev.wait_for("the rebuilt plugin", Duration::from_secs(300), || {
        let now = plugin(&api);
        now.status == 200 && now.json["sha256"] != first["sha256"] && now.json["state"] == "loaded"
    });
    let widgets = expect(&api.get("/api/v1/widgets"), 200).clone();
    assert!(
        widgets.to_string().contains("Unfinished work"),
        "{widgets:#}"
    );
    assert!(dev.said().contains("reinstalled"), "{}", dev.said());
    if let Some(browser) = &browser {
        browser.wait_for(
            "the page reloaded after the rebuild",
            "return window.__notReloaded === undefined && !!document.querySelector('devloop_tile-tile');",
        );
        browser.assert_clean(&[]);
    }
}

#[track_caller]
fn expect_text(response: &vigilo_tests::Response) -> String {
    assert_eq!(response.status, 200, "{}", response.text);
    response.text.clone()
}
