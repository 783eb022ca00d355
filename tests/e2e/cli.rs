//! The CLI's own behaviour: `configure` (with and without prompts), where
//! settings come from, output formats, tokens, and the messages and exit
//! codes for 401 and 403.

use std::os::unix::fs::PermissionsExt;

use vigilo_tests::json::strings;
use vigilo_tests::{on_both_databases, Cli, CliOutput, TestDb, TestServer};

use crate::{create_workspace, join};

/// `vigilo configure --url URL --token TOKEN --workspace SLUG`, no prompts.
fn configure(cli: &Cli, url: &str, token: &str, workspace: &str) -> CliOutput {
    cli.run(&[
        "configure",
        "--url",
        url,
        "--token",
        token,
        "--workspace",
        workspace,
    ])
}

fn configure_checks_the_token_and_saves_privately(db: TestDb) {
    let server = TestServer::start(db);
    create_workspace(&server.admin(), "acme");
    let owner = join(&server, "acme", "owner@acme.com", "owner", false);

    // A bad token is refused and nothing is saved.
    let cli = Cli::new();
    let bad = configure(
        &cli,
        &server.url,
        &format!("vgl_{}", "1".repeat(64)),
        "acme",
    );
    assert_eq!(bad.code, 3, "{}", bad.stderr);
    let config = cli.home.path().join(".vigilo/config.toml");
    assert!(!config.exists());

    // A workspace the token cannot see is refused.
    let wrong = configure(&cli, &server.url, &owner, "globex");
    assert_ne!(wrong.code, 0);
    assert!(!config.exists());

    // Without prompts.
    configure(&cli, &server.url, &owner, "acme").ok();
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "config must be readable by its owner only");
    let dir_mode = std::fs::metadata(config.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(saved.contains(&owner) && saved.contains("acme"));
    let members = cli.run(&["--json", "member", "list"]).ok().json();
    assert_eq!(members[0]["email"], "owner@acme.com");

    // Without a terminal nothing is asked: answers piped in are not read,
    // and a missing value is a usage error naming its flag.
    let piped = Cli::new();
    let out = piped.run_with_stdin(&["configure"], &format!("{}\n{owner}\nacme\n", server.url));
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--url"), "{}", out.stderr);
    assert!(
        !piped.home.path().join(".vigilo/config.toml").exists(),
        "nothing is saved"
    );
    // The environment gives the values instead; `-` means no workspace.
    let from_env = Cli::new()
        .env("VIGILO_URL", &server.url)
        .env("VIGILO_TOKEN", &owner)
        .env("VIGILO_WORKSPACE", "-");
    from_env.run(&["configure"]).ok();
    let saved = std::fs::read_to_string(from_env.home.path().join(".vigilo/config.toml")).unwrap();
    assert!(
        saved.contains(&server.url) && saved.contains(&owner),
        "{saved}"
    );
    assert!(!saved.contains("acme"), "`-` saves no workspace: {saved}");

    // VIGILO_* variables override the file.
    let admin_view = cli
        .clone_env_token(&server.admin_token)
        .run(&["--json", "whoami"])
        .ok()
        .json();
    assert_eq!(admin_view["user"]["email"], "admin@example.com");
}

trait CliExt {
    fn clone_env_token(&self, token: &str) -> Cli;
}

impl CliExt for Cli {
    /// A CLI sharing this one's HOME (and so its config file) with VIGILO_TOKEN set.
    fn clone_env_token(&self, token: &str) -> Cli {
        let other = Cli::new().env("VIGILO_TOKEN", token);
        let dir = other.home.path().join(".vigilo");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(
            self.home.path().join(".vigilo/config.toml"),
            dir.join("config.toml"),
        )
        .unwrap();
        std::fs::set_permissions(
            dir.join("config.toml"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        other
    }
}

fn tokens_and_auth_errors_through_the_cli(db: TestDb) {
    let server = TestServer::start(db);
    let admin = Cli::with(&server.url, &server.admin_token, None);
    let created = admin
        .run(&[
            "--json",
            "token",
            "create",
            "--name",
            "nightly",
            "--expires-in",
            "30d",
        ])
        .ok()
        .json();
    let token = created["token"].as_str().unwrap().to_string();
    let expires = created["expires_at"].as_str().unwrap();
    assert!(expires.starts_with("20"), "{expires}");
    let text = admin
        .run(&["token", "create", "--name", "plain"])
        .ok()
        .stdout
        .clone();
    assert!(text.contains("vgl_"), "the token is printed once: {text}");

    let list = admin.run(&["--json", "token", "list"]).ok().json();
    let names = strings(&list, "name");
    assert!(
        names.contains(&"nightly") && names.contains(&"plain"),
        "{names:?}"
    );
    assert!(!list.to_string().contains(&token));
    let table = admin.run(&["token", "list"]).ok().stdout.clone();
    assert!(
        table.contains("nightly") && table.contains("PREFIX"),
        "{table}"
    );

    admin
        .run(&["token", "revoke", &created["id"].to_string()])
        .ok();
    let revoked = Cli::with(&server.url, &token, None).run(&["workspace", "list"]);
    revoked.fails_with(3, "vigilo configure");
    assert!(revoked.stderr.contains("revoked"), "{}", revoked.stderr);

    // 403 names what is missing.
    create_workspace(&server.admin(), "acme");
    let viewer = join(&server, "acme", "viewer@acme.com", "viewer", false);
    let v = Cli::with(&server.url, &viewer, Some("acme"));
    v.run(&["role", "create", "--name", "x", "--base", "viewer"])
        .fails_with(4, "role.manage");

    // Unreachable server: exit 7. Missing workspace: a clear error.
    let down = Cli::with("http://127.0.0.1:9", &viewer, Some("acme")).run(&["member", "list"]);
    assert_eq!(down.code, 7, "{}", down.stderr);
    let no_ws = Cli::with(&server.url, &viewer, None).run(&["member", "list"]);
    assert_ne!(no_ws.code, 0);
    assert!(no_ws.stderr.contains("--workspace"), "{}", no_ws.stderr);
    // Usage errors exit 2.
    assert_eq!(admin.run(&["workspace", "frobnicate"]).code, 2);

    // The role matrix is printed for users.
    let matrix = v.run(&["role", "permissions"]).ok().stdout.clone();
    assert!(
        matrix.contains("member.invite") && matrix.to_lowercase().contains("owner"),
        "{matrix}"
    );
}

on_both_databases!(
    configure_checks_the_token_and_saves_privately,
    tokens_and_auth_errors_through_the_cli
);
