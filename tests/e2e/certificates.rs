//! The certificate inventory end to end through the CLI, with certificates
//! made during the test.

use rcgen::{CertificateParams, DnType, KeyPair};
use sha2::{Digest, Sha256};
use tempfile::TempDir;
use time::{Duration, OffsetDateTime};
use vigilo_tests::json::strings;
use vigilo_tests::{on_both_databases, Cli, TestDb, TestServer};

use crate::{create_workspace, join};

/// A self-signed certificate for `host`, valid from `from` to `until` days
/// from now; returns (PEM, DER).
pub(crate) fn certificate(host: &str, from: i64, until: i64) -> (String, Vec<u8>) {
    let mut params = CertificateParams::new(vec![host.to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, host);
    let now = OffsetDateTime::now_utc();
    params.not_before = now + Duration::days(from);
    params.not_after = now + Duration::days(until);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().to_vec())
}

fn certificate_inventory(db: TestDb) {
    let server = TestServer::start(db);
    let admin = server.admin();
    create_workspace(&admin, "ops");
    create_workspace(&admin, "other");
    let engineer = join(&server, "ops", "eng@ops.com", "engineer", false);
    let viewer = join(&server, "ops", "view@ops.com", "viewer", false);
    let cli = Cli::with(&server.url, &engineer, Some("ops"));
    let dir = TempDir::new().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };

    let (expired, _) = certificate("old.example.com", -90, -2);
    let (soon, soon_der) = certificate("soon.example.com", -30, 10);
    let (later, _) = certificate("later.example.com", -30, 60);
    for (file, pem) in [
        ("expired.pem", &expired),
        ("soon.pem", &soon),
        ("later.pem", &later),
    ] {
        cli.run(&["cert", "add", "--pem", &write(file, pem)]).ok();
    }
    // A chain expires with its earliest certificate.
    let (leaf, _) = certificate("chain.example.com", -1, 300);
    let (intermediate, _) = certificate("Example Intermediate", -100, 20);
    let chain = cli
        .run(&[
            "cert",
            "add",
            "--pem",
            &write("chain.pem", &format!("{leaf}{intermediate}")),
            "--name",
            "api chain",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(chain["chain_length"], 2);
    assert_eq!(chain["subject"], "CN=chain.example.com");
    assert_eq!(chain["sans"][0], "DNS:chain.example.com");

    // Exactly the expired one and the one due in 10 days (and the chain),
    // soonest first, with days left; the expired one is marked.
    let listed = cli
        .run(&["cert", "list", "--expiring-within", "30", "--json"])
        .ok()
        .json();
    assert_eq!(
        strings(&listed, "name"),
        ["old.example.com", "soon.example.com", "api chain"]
    );
    assert_eq!(listed[0]["expired"], true);
    assert!(listed[0]["days_left"].as_i64().unwrap() < 0);
    assert_eq!(listed[1]["expired"], false);
    assert_eq!(listed[1]["days_left"], 9, "{listed:#}");
    let expected_fingerprint = Sha256::digest(&soon_der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    assert_eq!(
        listed[1]["fingerprint_sha256"],
        expected_fingerprint.as_str()
    );
    let table = cli
        .run(&["cert", "list", "--expiring-within", "30"])
        .ok()
        .stdout
        .clone();
    let rows: Vec<&str> = table.lines().skip(1).collect();
    assert_eq!(rows.len(), 3, "{table}");
    assert!(
        rows[0].contains("old.example.com") && rows[0].contains("EXPIRED"),
        "{table}"
    );
    assert!(
        rows[1].contains("soon.example.com") && rows[1].contains("9 days"),
        "{table}"
    );
    assert!(!table.contains("later.example.com"), "{table}");
    let all = cli.run(&["cert", "list", "--json"]).ok().json();
    assert_eq!(all.as_array().unwrap().len(), 4);

    // For cron: --fail-if-any exits 10 when something is listed, 0 when not.
    let alert = cli.run(&["cert", "list", "--expiring-within", "30", "--fail-if-any"]);
    assert_eq!(alert.code, 10, "{alert:?}");
    let other = Cli::with(&server.url, &server.admin_token, Some("other"));
    let quiet = other.run(&["cert", "list", "--expiring-within", "30", "--fail-if-any"]);
    assert_eq!(quiet.code, 0, "nothing from ops shows in other: {quiet:?}");

    // Garbage and private keys are refused with a reason; nothing is stored.
    cli.run(&[
        "cert",
        "add",
        "--pem",
        &write("garbage.pem", "not a certificate at all\n"),
    ])
    .fails_with(6, "no PEM certificate found");
    cli.run(&[
        "cert",
        "add",
        "--pem",
        &write(
            "broken.pem",
            "-----BEGIN CERTIFICATE-----\nMIIBkzCCATmgAwIBAgIU\n-----END CERTIFICATE-----\n",
        ),
    ])
    .fails_with(6, "not a valid X.509 certificate");
    let key = KeyPair::generate().unwrap().serialize_pem();
    cli.run(&["cert", "add", "--pem", &write("key.pem", &key)])
        .fails_with(6, "not a CERTIFICATE");
    let again = cli.run(&["cert", "add", "--pem", &write("soon-again.pem", &soon)]);
    assert_eq!(again.code, 6, "a duplicate is a conflict: {again:?}");
    assert_eq!(
        cli.run(&["cert", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        4
    );

    // Viewers read, but do not add or remove.
    let view = Cli::with(&server.url, &viewer, Some("ops"));
    assert_eq!(
        view.run(&["cert", "list", "--json"])
            .ok()
            .json()
            .as_array()
            .unwrap()
            .len(),
        4
    );
    view.run(&["cert", "add", "--pem", &write("v.pem", &later)])
        .fails_with(4, "cert.manage");

    // Show and remove.
    let id = listed[1]["id"].to_string();
    let shown = cli.run(&["cert", "show", &id]).ok().stdout.clone();
    assert!(
        shown.contains("-----BEGIN CERTIFICATE-----") && shown.contains("soon.example.com"),
        "{shown}"
    );
    cli.run(&["cert", "remove", &id]).ok();
    let listed = cli
        .run(&["cert", "list", "--expiring-within", "30", "--json"])
        .ok()
        .json();
    assert_eq!(strings(&listed, "name"), ["old.example.com", "api chain"]);
    let audit = admin.workspace_audit("ops", "action=cert.*&limit=100");
    assert_eq!(audit.count("cert.add"), 4, "{:?}", audit.actions());
    assert_eq!(audit.count("cert.remove"), 1, "{:?}", audit.actions());
}

on_both_databases!(certificate_inventory);
