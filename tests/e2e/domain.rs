//! The domain layer's rules, called directly (no HTTP): the rules with the
//! most cases, on a real store on both databases, with the real reference
//! plugins loaded from their `.so` files.

use serde_json::{json, Map, Value};
use vigilo_host::domain::fields::{self, FieldDefinition};
use vigilo_host::domain::invites::{self, RowOutcome};
use vigilo_host::domain::paging::PageQuery;
use vigilo_host::domain::roles::{self, NewRole};
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
