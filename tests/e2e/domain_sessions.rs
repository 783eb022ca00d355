//! Signing in, called on the domain directly (no HTTP), on both databases:
//! failed sign-ins slowed then refused, and sessions that end.

use vigilo_host::domain::sessions::{self, SignIn};
use vigilo_host::domain::DomainError;
use vigilo_tests::domain::{outside, World};
use vigilo_tests::{block_on, on_both_databases, TestDb};

on_both_databases!(
    failed_sign_ins_are_slowed_then_refused,
    sessions_end_when_signed_out_or_idle,
);

const PASSWORD: &str = "tram-ladle-quince-42";

fn attempt(email: &str, password: &str, client: &str) -> SignIn {
    SignIn {
        email: email.into(),
        password: password.into(),
        client: client.into(),
        user_agent: "test".into(),
        device: None,
    }
}

#[track_caller]
fn refusal(result: Result<sessions::Started, DomainError>) -> (&'static str, String) {
    match result {
        Err(DomainError::Unauthenticated { code, message }) => (code, message),
        Err(other) => panic!("expected a refused sign-in, got {other:?}"),
        Ok(_) => panic!("expected a refused sign-in, got a session"),
    }
}

fn failed_sign_ins_are_slowed_then_refused(db: TestDb) {
    block_on(async {
        let world = World::new(&db).await;
        let state = &world.state;
        sessions::set_password(&state.store, &world.admin.user, PASSWORD)
            .await
            .unwrap();
        // An unknown email and a wrong password get the same answer.
        let unknown =
            refusal(sessions::sign_in(state, &attempt("ghost@example.com", "x", "10.0.0.9")).await);
        let wrong =
            refusal(sessions::sign_in(state, &attempt("admin@example.com", "x", "10.0.0.9")).await);
        assert_eq!(unknown, wrong);
        assert_eq!(wrong.0, "sign_in_failed");
        // The right password works, clears the account's count, and makes
        // the browser a known device of the account.
        let started =
            sessions::sign_in(state, &attempt("Admin@Example.com ", PASSWORD, "10.0.0.9"))
                .await
                .expect("the right password signs in");
        let device = started.device.expect("a known-device cookie");
        // From another address, ten wrong passwords lock the account: then
        // even the right one is refused, from anywhere, with the wait named.
        for _ in 0..sessions::LOCK_AFTER - 1 {
            let (code, _) = refusal(
                sessions::sign_in(state, &attempt("admin@example.com", "nope", "10.0.0.1")).await,
            );
            assert_eq!(code, "sign_in_failed");
        }
        let (code, message) = refusal(
            sessions::sign_in(state, &attempt("admin@example.com", "nope", "10.0.0.1")).await,
        );
        assert_eq!(code, "sign_in_locked");
        assert!(message.contains("Try again in"), "{message}");
        let (code, _) = refusal(
            sessions::sign_in(state, &attempt("admin@example.com", PASSWORD, "10.0.0.2")).await,
        );
        assert_eq!(
            code, "sign_in_locked",
            "locked even with the right password"
        );
        // The address that tried is locked for other accounts too.
        let (code, _) =
            refusal(sessions::sign_in(state, &attempt("ghost@example.com", "x", "10.0.0.1")).await);
        assert_eq!(code, "sign_in_locked");
        // The owner's known device still gets in, even from the locked
        // address, and is not handed a new cookie.
        let from_device = SignIn {
            device: Some(device.clone()),
            ..attempt("admin@example.com", PASSWORD, "10.0.0.1")
        };
        let again = sessions::sign_in(state, &from_device)
            .await
            .expect("a known device signs in while the account is locked");
        assert!(again.device.is_none());
        // A known-device cookie is not an unlock link, nor the reverse.
        assert!(sessions::device_from_unlock_link(&state.secrets, &device).is_none());
        // A platform admin's unlock clears the account's count and makes a
        // link for a new browser.
        let unlocked = sessions::unlock(&state.store, &state.secrets, " ADMIN@example.com")
            .await
            .unwrap();
        assert_eq!(unlocked.user.email, "admin@example.com");
        assert_eq!(unlocked.cleared, 1);
        let token = unlocked.link_path.strip_prefix("/login/device/").unwrap();
        let linked = sessions::device_from_unlock_link(&state.secrets, token)
            .expect("the link gives a known-device cookie");
        let from_link = SignIn {
            device: Some(linked),
            ..attempt("admin@example.com", PASSWORD, "10.0.0.1")
        };
        sessions::sign_in(state, &from_link)
            .await
            .expect("the link's browser signs in from the locked address");
        assert!(matches!(
            sessions::unlock(&state.store, &state.secrets, "nobody@example.com").await,
            Err(DomainError::NotFound(_))
        ));
        // Each failure was recorded.
        let failures = state
            .store
            .audit_events(0, 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.action == "session.failed")
            .count();
        assert_eq!(failures, 2 + sessions::LOCK_AFTER as usize);
    });
}

fn sessions_end_when_signed_out_or_idle(db: TestDb) {
    block_on(async {
        let world = World::new(&db).await;
        let state = &world.state;
        sessions::set_password(&state.store, &world.admin.user, PASSWORD)
            .await
            .unwrap();
        let started = sessions::sign_in(state, &attempt("admin@example.com", PASSWORD, "10.0.0.9"))
            .await
            .unwrap();
        assert!(started.secret.starts_with("vgs_"));
        let current = sessions::resolve(&state.store, &state.config, &started.secret)
            .await
            .expect("a live session");
        assert_eq!(current.caller.user.email, "admin@example.com");
        assert_eq!(current.csrf, sessions::csrf_token(&started.secret));
        assert_ne!(current.csrf, started.secret);
        // The database holds only the secret's hash.
        let stored = outside(|| db.rows("SELECT secret_hash FROM sessions"));
        assert!(!format!("{stored:?}").contains(&started.secret[4..]));
        // Idle past the limit: gone.
        let mut strict = (*state.config).clone();
        strict.session_idle_minutes = 1;
        outside(|| db.execute("UPDATE sessions SET last_seen_at = '2000-01-01T00:00:00.000000Z'"));
        match sessions::resolve(&state.store, &strict, &started.secret).await {
            Err(DomainError::Unauthenticated { code, message }) => {
                assert_eq!(code, "session_expired");
                assert!(message.contains("expired"), "{message}");
            }
            other => panic!("an idle session must end, got {other:?}"),
        }
        // Signed out: gone, and audited.
        let again = sessions::sign_in(state, &attempt("admin@example.com", PASSWORD, "10.0.0.9"))
            .await
            .unwrap();
        let current = sessions::resolve(&state.store, &state.config, &again.secret)
            .await
            .unwrap();
        sessions::sign_out(state, &current).await.unwrap();
        assert!(
            sessions::resolve(&state.store, &state.config, &again.secret)
                .await
                .is_err()
        );
        let actions: Vec<String> = state
            .store
            .audit_events(0, 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.action)
            .collect();
        assert_eq!(actions.iter().filter(|a| *a == "session.create").count(), 2);
        assert_eq!(actions.iter().filter(|a| *a == "session.end").count(), 1);
        // A weak password is refused by the rules.
        let weak = sessions::set_password(&state.store, &world.admin.user, "password1234").await;
        assert!(matches!(weak, Err(DomainError::Invalid { .. })), "{weak:?}");
    });
}
