//! The domain layer's rules, called directly (no HTTP): the rules with the
//! most cases, on a real store on both databases, with the real reference
//! plugins loaded from their `.so` files.

use serde_json::{json, Map, Value};
use vigilo_host::domain::fields::{self, FieldDefinition};
use vigilo_host::domain::invites::{self, RowOutcome};
use vigilo_host::domain::paging::PageQuery;
use vigilo_host::domain::roles::{self, NewRole};
use vigilo_host::domain::sessions::{self, SignIn};
use vigilo_host::domain::work_items::{self, NewItem};
use vigilo_host::domain::{workspaces, DomainError, PluginFailure};
use vigilo_host::plugins::Reason;
use vigilo_tests::domain::World;
use vigilo_tests::{block_on, on_both_databases, TestDb};

on_both_databases!(
    workflow_moves_and_approval,
    field_values_are_checked_by_their_type_and_plugin,
    bulk_invite_rows_each_get_their_outcome,
    nobody_grants_what_they_do_not_hold,
    failed_sign_ins_are_slowed_then_refused,
    sessions_end_when_signed_out_or_idle,
    creates_arriving_together_are_written_together,
    keyed_creates_join_the_batch_with_their_answers,
);

fn change(title: &str) -> NewItem {
    NewItem {
        kind: "change".into(),
        title: title.into(),
        ..NewItem::default()
    }
}

#[track_caller]
fn forbidden_missing(result: Result<impl std::fmt::Debug, DomainError>) -> String {
    match result {
        Err(DomainError::Forbidden { missing, .. }) => missing,
        other => panic!("expected a missing permission, got {other:?}"),
    }
}

#[track_caller]
fn invalid_field(result: Result<impl std::fmt::Debug, DomainError>) -> (String, String) {
    match result {
        Err(DomainError::Invalid {
            field: Some(field),
            message,
        }) => (field, message),
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

fn workflow_moves_and_approval(db: TestDb) {
    block_on(async {
        let world = World::new(&db).await;
        world.workspace("ops").await;
        let engineer = world.member("ops", "eng@example.com", "engineer").await;
        let approver = world.member("ops", "appr@example.com", "approver").await;
        let viewer = world.member("ops", "view@example.com", "viewer").await;
        let state = &world.state;

        assert_eq!(
            forbidden_missing(work_items::create(state, &viewer, change("x")).await),
            "item.write"
        );
        let item = work_items::create(state, &engineer, change("Rotate keys"))
            .await
            .unwrap();
        assert_eq!(item.status, "draft");

        // A move the workflow does not allow names the moves it does.
        match work_items::transition(state, &engineer, item.id, "approved", "").await {
            Err(DomainError::Conflict(message)) => {
                assert!(
                    message.contains("can move to: pending_approval"),
                    "{message}"
                )
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        let (field, _) =
            invalid_field(work_items::transition(state, &engineer, item.id, "shipped", "").await);
        assert_eq!(field, "status");

        let item = work_items::transition(state, &engineer, item.id, "pending_approval", "ready")
            .await
            .unwrap();
        // An engineer may send a change back, but not decide it.
        assert_eq!(
            work_items::allowed_moves(&engineer, &item),
            vec!["draft"],
            "an engineer is offered only the moves they may make"
        );
        assert_eq!(
            work_items::allowed_moves(&approver, &item),
            vec!["draft", "approved", "rejected"]
        );
        assert_eq!(
            forbidden_missing(
                work_items::transition(state, &engineer, item.id, "approved", "").await
            ),
            "change.approve"
        );
        let item = work_items::transition(state, &approver, item.id, "approved", "looks safe")
            .await
            .unwrap();
        assert_eq!(item.status, "approved");
        // Nothing the refused moves tried was stored or audited.
        let events = world
            .state
            .store
            .audit_events(approver.workspace.id, 0, 100)
            .await
            .unwrap();
        let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions
                .iter()
                .filter(|a| a.starts_with("change."))
                .copied()
                .collect::<Vec<_>>(),
            ["change.create", "change.transition", "change.approve"]
        );
        let approval = events
            .iter()
            .find(|e| e.action == "change.approve")
            .unwrap();
        assert_eq!(approval.actor.label, "appr@example.com");
        assert_eq!(approval.details["comment"], "looks safe");

        // Tasks and incidents follow their own workflows.
        let task = work_items::create(
            state,
            &engineer,
            NewItem {
                kind: "task".into(),
                title: "t".into(),
                ..NewItem::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(task.status, "todo");
        assert_eq!(work_items::next_statuses(&task), vec!["doing"]);
        let (field, message) = invalid_field(
            work_items::create(
                state,
                &engineer,
                NewItem {
                    kind: "epic".into(),
                    title: "t".into(),
                    ..NewItem::default()
                },
            )
            .await,
        );
        assert_eq!(field, "kind");
        assert!(message.contains("change, incident or task"), "{message}");
    });
}

fn field_values_are_checked_by_their_type_and_plugin(db: TestDb) {
    block_on(async {
        let world = World::new(&db).await;
        world.workspace("ops").await;
        let owner = world.member("ops", "own@example.com", "owner").await;
        let state = &world.state;
        workspaces::write_setting(
            state,
            &owner,
            "holidays",
            Some(json!(["2026-12-24", "2026-12-25"])),
        )
        .await
        .unwrap();
        let define = |key: &str, field_type: &str, required: bool| FieldDefinition {
            key: key.into(),
            label: key.to_uppercase(),
            applies_to: vec!["change".into()],
            field_type: field_type.into(),
            required,
            options: Vec::new(),
        };
        // Only built-in types and loaded plugins' types can be chosen.
        let (field, message) =
            invalid_field(fields::create(state, &owner, &define("x", "colour", false)).await);
        assert_eq!(field, "type");
        assert!(message.contains("holiday_aware_date"), "{message}");
        fields::create(state, &owner, &define("window", "holiday_aware_date", true))
            .await
            .unwrap();
        fields::create(state, &owner, &define("risk", "number", false))
            .await
            .unwrap();
        let with = |values: Value| NewItem {
            fields: values.as_object().cloned().unwrap_or_default(),
            ..change("Deploy")
        };
        // Access is resolved per request: this one sees the holidays.
        let access = world.admin_in("ops").await;
        let cases: [(Value, &str, &str); 5] = [
            (json!({}), "fields.window", "is required"),
            (
                json!({"window": "2026-12-25"}),
                "fields.window",
                "2026-12-25 is a holiday in this workspace",
            ),
            (
                json!({"window": "2026-12-26"}),
                "fields.window",
                "2026-12-26 is a Saturday",
            ),
            (
                json!({"window": "2026-12-28", "risk": "high"}),
                "fields.risk",
                "expected a number",
            ),
            (
                json!({"window": "2026-12-28", "color": 1}),
                "fields.color",
                "no custom field `color`",
            ),
        ];
        for (values, want_field, want_reason) in cases {
            let (field, message) =
                invalid_field(work_items::create(state, &access, with(values.clone())).await);
            assert_eq!(field, want_field, "{values}");
            assert!(message.contains(want_reason), "{values}: {message}");
        }
        assert!(
            state
                .store
                .list_work_items(access.workspace.id, &Default::default(), None, 10)
                .await
                .unwrap()
                .is_empty(),
            "no refused item was stored"
        );
        let item = work_items::create(
            state,
            &access,
            with(json!({"window": " 2026-12-28 ", "risk": 3})),
        )
        .await
        .unwrap();
        assert_eq!(
            item.fields["window"], "2026-12-28",
            "the plugin normalises the value"
        );
        assert_eq!(item.fields["risk"], 3);

        // A required value cannot be removed; an optional one can.
        let remove = |key: &str| work_items::ItemChanges {
            fields: Map::from_iter([(key.to_owned(), Value::Null)]),
            ..Default::default()
        };
        let (field, _) =
            invalid_field(work_items::update(state, &access, item.id, remove("window")).await);
        assert_eq!(field, "fields.window");
        let item = work_items::update(state, &access, item.id, remove("risk"))
            .await
            .unwrap();
        assert!(!item.fields.contains_key("risk"));

        // With its plugin disabled, the type cannot be checked: the value is
        // refused as unavailable, not stored unchecked.
        let plugin = state.plugins.loaded("datepicker_with_holidays").unwrap();
        state
            .plugins
            .disable_quietly(&plugin, Reason::DisabledByAdmin, "test".into());
        match work_items::create(state, &access, with(json!({"window": "2026-12-28"}))).await {
            Err(DomainError::Plugin {
                failure: PluginFailure::Unavailable,
                message,
                field,
            }) => {
                assert_eq!(field.as_deref(), Some("fields.window"));
                assert!(message.contains("holiday_aware_date"), "{message}")
            }
            other => panic!("expected the plugin to be unavailable, got {other:?}"),
        }
    });
}

fn bulk_invite_rows_each_get_their_outcome(db: TestDb) {
    block_on(async {
        let world = World::new(&db).await;
        world.workspace("ops").await;
        let state = &world.state;
        let admin = world.admin_in("ops").await;
        roles::create(
            state,
            &admin,
            &NewRole {
                name: "auditor".into(),
                base_role: "viewer".into(),
                add: vec!["audit.read".into()],
                remove: Vec::new(),
            },
        )
        .await
        .unwrap();
        world.member("ops", "member@example.com", "viewer").await;
        invites::create(
            state,
            &admin,
            &invites::NewInvite {
                email: "pending@example.com".into(),
                role: Some("viewer".into()),
                custom_role: None,
            },
        )
        .await
        .unwrap();
        let file = "email,role,custom_role_name\n\
                    good@example.com,engineer,\n\
                    not-an-email,viewer,\n\
                    role@example.com,emperor,\n\
                    custom@example.com,,no_such_role\n\
                    auditor@example.com,,auditor\n\
                    good@example.com,viewer,\n\
                    member@example.com,viewer,\n\
                    pending@example.com,viewer,\n\
                    short@example.com\n";
        let rows = invites::parse_csv(file.as_bytes()).unwrap();
        let outcome = |report: &invites::BulkReport, email: &str, line: u64| {
            let row = report
                .rows
                .iter()
                .find(|r| r.row == line)
                .unwrap_or_else(|| panic!("no row {line}"));
            assert!(
                row.email.contains(email.split('@').next().unwrap()),
                "{row:?}"
            );
            (row.outcome, row.reason.clone().unwrap_or_default())
        };

        let invites_before = invites::list(state, &admin, PageQuery::default())
            .await
            .unwrap()
            .total;
        let preview = invites::bulk(state, &admin, rows.clone(), true)
            .await
            .unwrap();
        assert_eq!(
            invites::list(state, &admin, PageQuery::default())
                .await
                .unwrap()
                .total,
            invites_before,
            "a preview invites nobody"
        );
        assert_eq!(
            (preview.invited, preview.skipped, preview.failed),
            (2, 2, 5)
        );
        assert_eq!(outcome(&preview, "good@", 2).0, RowOutcome::WouldInvite);
        let (o, why) = outcome(&preview, "not-an-email", 3);
        assert_eq!(o, RowOutcome::Failed);
        assert!(why.starts_with("malformed email"), "{why}");
        let (_, why) = outcome(&preview, "role@", 4);
        assert!(why.contains("unknown role `emperor`"), "{why}");
        let (_, why) = outcome(&preview, "custom@", 5);
        assert!(why.contains("unknown custom role `no_such_role`"), "{why}");
        assert_eq!(outcome(&preview, "auditor@", 6).0, RowOutcome::WouldInvite);
        let (_, why) = outcome(&preview, "good@", 7);
        assert_eq!(why, "duplicate of row 2 in this file");
        assert_eq!(
            outcome(&preview, "member@", 8),
            (RowOutcome::Skipped, "already a member".into())
        );
        assert_eq!(
            outcome(&preview, "pending@", 9),
            (RowOutcome::Skipped, "already invited".into())
        );
        let (_, why) = outcome(&preview, "short@", 10);
        assert_eq!(why, "expected 3 columns, found 1");

        // The failed rows come back as a file ready to fix and upload.
        let failed = preview.failed_rows_csv();
        let lines: Vec<&str> = failed.lines().collect();
        assert_eq!(lines[0], "email,role,custom_role_name");
        assert_eq!(
            &lines[1..],
            [
                "not-an-email,viewer,",
                "role@example.com,emperor,",
                "custom@example.com,,no_such_role",
                "good@example.com,viewer,",
                "short@example.com,,",
            ]
        );

        let report = invites::bulk(state, &admin, rows.clone(), false)
            .await
            .unwrap();
        assert_eq!((report.invited, report.skipped, report.failed), (2, 2, 5));
        assert_eq!(outcome(&report, "good@", 2).0, RowOutcome::Invited);
        let invited = invites::list(state, &admin, PageQuery::default())
            .await
            .unwrap();
        let emails: Vec<String> = invited.rows.into_iter().map(|i| i.email).collect();
        assert!(emails.contains(&"good@example.com".to_owned()));
        assert!(emails.contains(&"auditor@example.com".to_owned()));
        assert_eq!(invited.total, invites_before + 2);
        // The same file again invites nobody twice.
        let again = invites::bulk(state, &admin, rows, false).await.unwrap();
        assert_eq!(again.invited, 0);
        assert_eq!(
            outcome(&again, "good@", 2),
            (RowOutcome::Skipped, "already invited".into())
        );

        // A file with the wrong header is refused as a whole.
        match invites::parse_csv(b"mail,role\nx@example.com,viewer\n") {
            Err(DomainError::Unreadable { code, message }) => {
                assert_eq!(code, "invalid_csv");
                assert!(message.contains("email,role,custom_role_name"), "{message}");
            }
            other => panic!("expected the file to be refused, got {other:?}"),
        }
    });
}

fn nobody_grants_what_they_do_not_hold(db: TestDb) {
    block_on(async {
        let world = World::new(&db).await;
        world.workspace("ops").await;
        let state = &world.state;
        let admin = world.admin_in("ops").await;
        // A custom role that may manage roles and invite, but holds little else.
        roles::create(
            state,
            &admin,
            &NewRole {
                name: "recruiter".into(),
                base_role: "viewer".into(),
                add: vec!["role.manage".into(), "member.invite".into()],
                remove: Vec::new(),
            },
        )
        .await
        .unwrap();
        let created = invites::create(
            state,
            &admin,
            &invites::NewInvite {
                email: "rec@example.com".into(),
                role: None,
                custom_role: Some("recruiter".into()),
            },
        )
        .await
        .unwrap();
        let accepted = invites::accept(
            state,
            None,
            &invites::Acceptance {
                token: created.accept_token,
                name: "Rec".into(),
                password: None,
                first_token: true,
            },
        )
        .await
        .unwrap();
        assert_eq!(accepted.custom_role.as_deref(), Some("recruiter"));
        let recruiter = vigilo_host::domain::authz::Caller {
            user: accepted.user,
            token_id: None,
            session_id: None,
            plugin: None,
        }
        .access(&state.store, "ops")
        .await
        .unwrap();

        let role = |name: &str, base: &str, add: &[&str], remove: &[&str]| NewRole {
            name: name.into(),
            base_role: base.into(),
            add: add.iter().map(|s| s.to_string()).collect(),
            remove: remove.iter().map(|s| s.to_string()).collect(),
        };
        // Based on a role with more than the recruiter holds: refused,
        // naming the first permission they lack.
        let missing = forbidden_missing(
            roles::create(state, &recruiter, &role("helper", "engineer", &[], &[])).await,
        );
        assert_eq!(missing, "item.write");
        // The same role minus what they lack is fine.
        let trimmed = roles::create(
            state,
            &recruiter,
            &role(
                "helper",
                "engineer",
                &[],
                &[
                    "item.write",
                    "dashboard.edit",
                    "cert.manage",
                    "playbook.edit",
                    "playbook.run",
                ],
            ),
        )
        .await
        .unwrap();
        assert!(!trimmed
            .permissions
            .contains(vigilo_host::domain::authz::Permission::ItemWrite));
        // Invites follow the same rule.
        let missing = forbidden_missing(
            invites::create(
                state,
                &recruiter,
                &invites::NewInvite {
                    email: "boss@example.com".into(),
                    role: Some("owner".into()),
                    custom_role: None,
                },
            )
            .await,
        );
        assert_eq!(missing, "workspace.settings");
        invites::create(
            state,
            &recruiter,
            &invites::NewInvite {
                email: "peer@example.com".into(),
                role: None,
                custom_role: Some("helper".into()),
            },
        )
        .await
        .unwrap();
        // Names and inputs are checked before anything else.
        let (field, _) =
            invalid_field(roles::create(state, &admin, &role("owner", "viewer", &[], &[])).await);
        assert_eq!(field, "name");
        let (field, message) = invalid_field(
            roles::create(state, &admin, &role("x", "viewer", &["all.things"], &[])).await,
        );
        assert_eq!(field, "add");
        assert!(
            message.contains("unknown permission `all.things`"),
            "{message}"
        );
        // A role someone holds cannot be deleted.
        assert!(matches!(
            roles::delete(state, &admin, "recruiter").await,
            Err(DomainError::Conflict(_))
        ));
    });
}

const PASSWORD: &str = "tram-ladle-quince-42";

/// Runs `f` on a thread of its own: the test database's direct statements
/// bring their own runtime, which may not start inside the test's.
fn outside<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(f).join().expect("the statement ran"))
}

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

/// A write of `access`'s workspace chain, open: it holds the writer
/// (SQLite) or the chain's head (PostgreSQL) until it commits.
async fn hold_the_chain(
    store: &vigilo_host::store::Store,
    access: &vigilo_host::domain::authz::Access,
) -> vigilo_host::store::WriteTx {
    use vigilo_host::audit::{self, NewEvent};
    let mut hold = store.begin_write().await.unwrap();
    let event = NewEvent::new(
        Some(access.workspace.id),
        "workspace.update",
        "ops",
        json!({}),
    );
    audit::append(&mut hold, &access.actor(), event)
        .await
        .unwrap();
    hold
}

fn creates_arriving_together_are_written_together(db: TestDb) {
    use vigilo_host::audit::Actor;
    use vigilo_host::store::ItemCreate;

    block_on(async {
        let world = World::new(&db).await;
        world.workspace("ops").await;
        let access = world.admin_in("ops").await;
        let store = world.state.store.clone();
        let create = |title: String, user_id: Option<i64>| ItemCreate {
            workspace_id: access.workspace.id,
            kind: "task",
            title: title.clone(),
            description: String::new(),
            status: "todo",
            fields: Map::new(),
            created_by_plugin: None,
            actor: Actor {
                user_id,
                token_id: None,
                label: "admin@example.com".into(),
            },
            action: "task.create",
            details: json!({"kind": "task", "title": title}),
        };
        // A write of the workspace's chain holds the writer (SQLite) or the
        // chain's head (PostgreSQL) while ten creates queue: the first is
        // written alone, the other nine together once it commits. One of
        // them names a creator who does not exist, which the database
        // refuses.
        let hold = hold_the_chain(&store, &access).await;
        let mut creates = Vec::new();
        for i in 0..10 {
            let user = if i == 7 {
                Some(999_999)
            } else {
                access.actor().user_id
            };
            let store = store.clone();
            let item = create(format!("queued {i}"), user);
            creates.push(tokio::spawn(
                async move { store.create_work_item(item).await },
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            creates.iter().all(|c| !c.is_finished()),
            "no create may finish while the chain is held"
        );
        hold.commit().await.unwrap();
        let mut ids = Vec::new();
        for (i, created) in creates.into_iter().enumerate() {
            match created.await.unwrap() {
                Ok(item) => {
                    assert_eq!(item.title, format!("queued {i}"));
                    assert_eq!(item.created_by.as_deref(), Some("admin@example.com"));
                    assert_eq!(item.status, "todo");
                    ids.push(item.id);
                }
                Err(e) => assert_eq!(i, 7, "create {i} failed: {e}"),
            }
        }
        // Nine items, each with its own id, each stored as answered, each
        // with its audit event, and the chain intact.
        assert_eq!(ids.len(), 9);
        let mut unique = ids.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), 9);
        for id in &ids {
            let stored = store.work_item(access.workspace.id, *id).await.unwrap();
            assert!(stored.title.starts_with("queued "));
            assert_eq!(stored.created_by.as_deref(), Some("admin@example.com"));
        }
        let events = store
            .audit_events(access.workspace.id, 0, 1000)
            .await
            .unwrap();
        let mut created: Vec<i64> = events
            .iter()
            .filter(|e| e.action == "task.create")
            .map(|e| e.target.parse().unwrap())
            .collect();
        created.sort_unstable();
        assert_eq!(created, unique);
        let report = vigilo_host::domain::audit::verify(&world.state, &access, true)
            .await
            .unwrap();
        assert!(report.intact, "{report:?}");
    });
}

fn keyed_creates_join_the_batch_with_their_answers(db: TestDb) {
    use std::time::{Duration, Instant};
    use vigilo_host::store::{IdempotencyClaim, ItemCreate, KeyOutcome, StoreError, KEY_TAKEN};

    block_on(async {
        let world = World::new(&db).await;
        world.workspace("ops").await;
        let access = world.admin_in("ops").await;
        let store = world.state.store.clone();
        let create = |title: &str| ItemCreate {
            workspace_id: access.workspace.id,
            kind: "task",
            title: title.into(),
            description: String::new(),
            status: "todo",
            fields: Map::new(),
            created_by_plugin: None,
            actor: access.actor(),
            action: "task.create",
            details: json!({"kind": "task", "title": title}),
        };
        let claim =
            |key: &str| IdempotencyClaim::new("token".into(), key.into(), format!("{key}-request"));
        // A key recorded earlier, with its answer.
        let earlier = claim("taken");
        let first = earlier
            .run(store.create_work_item(create("earlier")))
            .await
            .unwrap();
        let kept = earlier
            .finish(&store, 201, "earlier answer", true)
            .await
            .unwrap();
        assert_eq!(kept, KeyOutcome::Kept);

        // The chain is held while creates with and without keys queue.
        let hold = hold_the_chain(&store, &access).await;
        let leader = tokio::spawn({
            let store = store.clone();
            let item = create("leader");
            async move { store.create_work_item(item).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut plain = Vec::new();
        for title in ["plain a", "plain b"] {
            let store = store.clone();
            let item = create(title);
            plain.push(tokio::spawn(
                async move { store.create_work_item(item).await },
            ));
        }
        // A keyed request answers as soon as it has its item, and checks
        // that nothing of it is visible before that answer is kept.
        // One request says beforehand how it answers (as the API's create
        // does): the batch keeps that answer with the change.
        let keyed = |key: &'static str, title: &str, answers: bool, prepared: bool| {
            let store = store.clone();
            let item = create(title);
            let claim = claim(key);
            if prepared {
                claim.answer_creates_with(|item| Some((201, format!("prepared {}", item.id))));
            }
            let workspace_id = access.workspace.id;
            tokio::spawn(async move {
                let created = claim.run(store.create_work_item(item)).await;
                let handed = Instant::now();
                let visible = match &created {
                    Ok(item) => Some(store.work_item(workspace_id, item.id).await.is_ok()),
                    Err(_) => None,
                };
                let checked_in_time = handed.elapsed() < Duration::from_millis(50);
                if !answers {
                    // This request is slow to answer: the batch commits
                    // without it, and its answer is kept afterwards.
                    tokio::time::sleep(Duration::from_millis(400)).await;
                }
                let outcome = match &created {
                    Ok(item) => Some(
                        claim
                            .finish(&store, 201, &format!("answer {}", item.id), true)
                            .await
                            .unwrap(),
                    ),
                    Err(_) => None,
                };
                (created, visible, checked_in_time, outcome, claim.lost())
            })
        };
        let k1 = keyed("k1", "keyed 1", true, false);
        let k2 = keyed("k2", "keyed 2", true, true);
        let slow = keyed("slow", "keyed slow", false, false);
        let taken = keyed("taken", "keyed again", true, false);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !leader.is_finished()
                && plain.iter().all(|c| !c.is_finished())
                && !k1.is_finished()
                && !taken.is_finished(),
            "no create may finish while the chain is held"
        );
        hold.commit().await.unwrap();
        assert_eq!(leader.await.unwrap().unwrap().title, "leader");

        let mut ids = Vec::new();
        for (task, title) in [(k1, "keyed 1"), (k2, "keyed 2"), (slow, "keyed slow")] {
            let (created, visible, in_time, outcome, lost) = task.await.unwrap();
            let item = created.unwrap_or_else(|e| panic!("{title}: {e}"));
            assert_eq!(item.title, title);
            if title == "keyed 2" {
                // Answered after the commit, with its answer already kept.
                assert_eq!(visible, Some(true), "{title} is answered once committed");
            } else if in_time {
                assert_eq!(
                    visible,
                    Some(false),
                    "{title} must not be visible before its answer is kept"
                );
            }
            assert_eq!(outcome, Some(KeyOutcome::Kept), "{title}");
            assert!(!lost);
            ids.push(item.id);
        }
        for task in plain {
            ids.push(task.await.unwrap().unwrap().id);
        }
        // The key recorded earlier wins: the create carrying it again fails
        // alone, and writes nothing.
        let (created, _, _, outcome, lost) = taken.await.unwrap();
        match created {
            Err(StoreError::Conflict(message)) => assert_eq!(message, KEY_TAKEN),
            other => panic!("a taken key must fail its create, got {other:?}"),
        }
        assert!(lost && outcome.is_none());

        // Each key holds its own request's answer, the earlier one too.
        for (key, id, kept) in [
            ("k1", ids[0], "answer"),
            ("k2", ids[1], "prepared"),
            ("slow", ids[2], "answer"),
        ] {
            let stored = store.idempotency_key("token", key).await.unwrap().unwrap();
            assert_eq!(stored.request_hash, format!("{key}-request"));
            assert_eq!(stored.status, Some(201));
            assert_eq!(stored.response.unwrap(), format!("{kept} {id}"));
        }
        let stored = store
            .idempotency_key("token", "taken")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.response.as_deref(), Some("earlier answer"));

        // Every item once, each with its audit event, and the chain intact.
        let events = store
            .audit_events(access.workspace.id, 0, 1000)
            .await
            .unwrap();
        let titles: Vec<String> = events
            .iter()
            .filter(|e| e.action == "task.create")
            .map(|e| e.details["title"].as_str().unwrap_or_default().to_owned())
            .collect();
        let mut sorted = titles.clone();
        sorted.sort();
        assert_eq!(
            sorted,
            [
                "earlier",
                "keyed 1",
                "keyed 2",
                "keyed slow",
                "leader",
                "plain a",
                "plain b"
            ]
        );
        assert_ne!(first.id, ids[0]);
        let report = vigilo_host::domain::audit::verify(&world.state, &access, true)
            .await
            .unwrap();
        assert!(report.intact, "{report:?}");
    });
}
