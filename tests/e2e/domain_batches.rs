//! Work item creates written in batches, called on the domain directly (no
//! HTTP), on both databases: creates that arrive together, with and without
//! an `Idempotency-Key`.

use serde_json::{json, Map};
use vigilo_host::model::workflow::{Kind, Status};
use vigilo_tests::domain::World;
use vigilo_tests::{block_on, on_both_databases, TestDb};

on_both_databases!(
    creates_arriving_together_are_written_together,
    keyed_creates_join_the_batch_with_their_answers,
);

/// A write of `access`'s workspace chain, open: it holds the writer
/// (SQLite) or the chain's head (PostgreSQL) until it commits.
async fn hold_the_chain(
    store: &vigilo_host::store::Store,
    access: &vigilo_host::domain::authz::Access,
) -> vigilo_host::store::WriteTx {
    use vigilo_host::audit::NewEvent;
    use vigilo_host::store::audit;
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
            kind: Kind::Task,
            title: title.clone(),
            description: String::new(),
            status: Status::Todo,
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
    use vigilo_host::store::{Clash, IdempotencyClaim, ItemCreate, KeyOutcome, StoreError};

    block_on(async {
        let world = World::new(&db).await;
        world.workspace("ops").await;
        let access = world.admin_in("ops").await;
        let store = world.state.store.clone();
        let create = |title: &str| ItemCreate {
            workspace_id: access.workspace.id,
            kind: Kind::Task,
            title: title.into(),
            description: String::new(),
            status: Status::Todo,
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
            Err(StoreError::Conflict(clash)) => assert_eq!(clash, Clash::KeyTaken),
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
