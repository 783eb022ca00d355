//! Sign-in throttling through the real web form, on both databases (on
//! PostgreSQL with two servers sharing the database): concurrent wrong
//! passwords are each counted, exactly as many are checked as the lock
//! allows, and the account's owner still gets in from a browser they
//! signed in with before, or with a platform admin's unlock link from
//! `vigilo-server unlock-sign-in`.

use std::sync::{Arc, Barrier};

use tempfile::TempDir;
use vigilo_host::domain::sessions::LOCK_AFTER;
use vigilo_tests::process::{replica_of, server_command};
use vigilo_tests::{on_both_databases, set_cookie, Backend, SignInForm, TestDb, TestServer};

use crate::web::PASSWORD;

on_both_databases!(concurrent_failures_are_counted_exactly_and_the_owner_gets_back_in);

const EMAIL: &str = "admin@example.com";

/// What the sign-in form answered.
#[derive(Debug, Default, PartialEq, Eq)]
struct Answers {
    /// "The email or password is not right".
    wrong: usize,
    /// "Too many failed sign-ins".
    locked: usize,
}

/// `n` wrong passwords for `EMAIL` sent at once, spread over `urls`.
fn guess_at_once(urls: &[String], n: usize) -> Answers {
    let forms: Vec<SignInForm> = (0..n)
        .map(|i| SignInForm::open(&urls[i % urls.len()]))
        .collect();
    let start = Arc::new(Barrier::new(n));
    let threads: Vec<_> = forms
        .into_iter()
        .enumerate()
        .map(|(i, form)| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let response = form.submit(EMAIL, &format!("wrong guess {i}"), &[]);
                assert_eq!(response.status(), 401);
                response.into_string().unwrap()
            })
        })
        .collect();
    let mut answers = Answers::default();
    for thread in threads {
        let page = thread.join().unwrap();
        if page.contains("The email or password is not right") {
            answers.wrong += 1;
        } else if page.contains("Too many failed sign-ins") {
            answers.locked += 1;
        } else {
            panic!("an unexpected answer: {page}");
        }
    }
    answers
}

fn failures_counted(server: &TestServer) -> i64 {
    server
        .db
        .number("SELECT failures FROM sign_in_failures WHERE scope = 'account:admin@example.com'")
}

fn checked_and_failed(server: &TestServer) -> i64 {
    server
        .db
        .number("SELECT COUNT(*) FROM audit_events WHERE action = 'session.failed'")
}

fn concurrent_failures_are_counted_exactly_and_the_owner_gets_back_in(db: TestDb) {
    let backend = db.backend;
    let server = TestServer::start(db);
    vigilo_tests::block_on(vigilo_host::create_admin_with_password(
        &server.config,
        EMAIL,
        None,
        Some(PASSWORD),
    ))
    .unwrap();
    let dir = TempDir::new().unwrap();
    let mut urls = vec![server.url.clone()];
    let replica = (backend == Backend::Postgres).then(|| replica_of(&server, dir.path()));
    if let Some(replica) = &replica {
        urls.push(replica.url().to_owned());
    }

    // The owner signs in once from their browser, which becomes a known
    // device of the account.
    let owner = SignInForm::open(&urls[0]);
    let signed_in = owner.submit(EMAIL, PASSWORD, &[]);
    assert_eq!(signed_in.status(), 303);
    let device = set_cookie(&signed_in, "vigilo_device").expect("a known-device cookie");

    // 24 wrong passwords at once, from the same address, over both
    // servers: each is counted before its password is checked (those that
    // arrive once the lock is recorded are refused without a count), only
    // the first LOCK_AFTER reach the password check, and exactly
    // LOCK_AFTER - 1 are told "not right" (the one that locks says so).
    let n = 24;
    let answers = guess_at_once(&urls, n);
    let allowed = LOCK_AFTER as usize;
    assert_eq!(
        answers,
        Answers {
            wrong: allowed - 1,
            locked: n - (allowed - 1),
        }
    );
    let counted = failures_counted(&server);
    assert!((LOCK_AFTER..=n as i64).contains(&counted), "{counted}");
    assert_eq!(checked_and_failed(&server), LOCK_AFTER);

    // Now the right password is refused from a new browser (the account
    // and the address are both locked)...
    let stranger = SignInForm::open(urls.last().unwrap());
    let refused = stranger.submit(EMAIL, PASSWORD, &[]);
    assert_eq!(refused.status(), 401);
    assert!(set_cookie(&refused, "vigilo_session").is_none());
    assert!(refused
        .into_string()
        .unwrap()
        .contains("sign in from a browser you have signed in with before"));
    // ...but the owner's browser, a known device, signs in, on either
    // server, and its failures are its own.
    for url in &urls {
        let form = SignInForm::open(url);
        let wrong = form.submit(EMAIL, "not the password", &[&device]);
        assert!(wrong
            .into_string()
            .unwrap()
            .contains("The email or password is not right"));
        let ok = form.submit(EMAIL, PASSWORD, &[&device]);
        assert_eq!(ok.status(), 303, "{url}");
        assert!(set_cookie(&ok, "vigilo_session").is_some());
        assert!(
            set_cookie(&ok, "vigilo_device").is_none(),
            "a good known-device cookie is kept as it is"
        );
    }
    assert_eq!(
        failures_counted(&server),
        counted,
        "the known device's attempts do not count against the account"
    );
    assert_eq!(checked_and_failed(&server), LOCK_AFTER + urls.len() as i64);

    // On a new browser the owner asks a platform admin, who runs
    // `vigilo-server unlock-sign-in`: the account's count is cleared
    // (not the attacker's address), and the link it prints makes the
    // browser that opens it a known device, even while the attacker
    // keeps the account locked.
    let config = dir.path().join("vigilo.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\ndatabase_url = \"{}\"\npublic_url = \"{}\"\n",
            server.config.data_dir.display(),
            server.db.url,
            server.url,
        ),
    )
    .unwrap();
    let out = server_command(&config)
        .args(["unlock-sign-in", "--email", "Admin@Example.com"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("admin@example.com"), "{stderr}");
    let link = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        link.starts_with(&format!("{}/login/device/", server.url)),
        "{link}"
    );
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM sign_in_failures WHERE scope LIKE 'account:%'"),
        0
    );
    assert_eq!(
        server
            .db
            .number("SELECT COUNT(*) FROM audit_events WHERE action = 'session.unlock'"),
        1
    );
    // The attacker keeps at it (here from the address that is still
    // locked, so nothing new is checked).
    let again = guess_at_once(&urls, allowed);
    assert_eq!(again.locked, allowed);

    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let opened = agent.get(&link).call().unwrap();
    assert_eq!(opened.status(), 303);
    assert_eq!(
        opened.header("location"),
        Some("/login?device=known"),
        "the link leads to the sign-in page"
    );
    let new_device = set_cookie(&opened, "vigilo_device").expect("the link's known-device cookie");
    let new_browser = SignInForm::open(urls.last().unwrap());
    assert_eq!(
        new_browser.submit(EMAIL, PASSWORD, &[]).status(),
        401,
        "still locked without the link's cookie"
    );
    let ok = new_browser.submit(EMAIL, PASSWORD, &[&new_device]);
    assert_eq!(ok.status(), 303);
    assert!(set_cookie(&ok, "vigilo_session").is_some());

    // A damaged or foreign link does nothing.
    let broken = agent.get(&format!("{link}0")).call();
    match broken {
        Err(ureq::Error::Status(404, r)) => {
            assert!(set_cookie(&r, "vigilo_device").is_none());
            assert!(r
                .into_string()
                .unwrap()
                .contains("not valid or has expired"));
        }
        other => panic!("a damaged link: {other:?}"),
    }
    // Nor does a known-device cookie of one account help with another.
    vigilo_tests::block_on(vigilo_host::create_admin_with_password(
        &server.config,
        "other@example.com",
        None,
        Some(PASSWORD),
    ))
    .unwrap();
    let other = SignInForm::open(&urls[0]);
    let refused = other.submit("other@example.com", PASSWORD, &[&device]);
    assert_eq!(
        refused.status(),
        401,
        "the attacker's address is locked for other accounts"
    );
    drop(replica);
}
