//! Work items as plugins reach them through the host API: the same rules
//! as a person's (workflow, custom field values, limits), with the plugin
//! as the caller, audited as `plugin:NAME` in the workspace's own chain.
//!
//! A plugin holds no role: it may read the workspace it acts in, and write
//! work items when it declared `work_items.write`. It may never approve or
//! reject a change (that needs `change.approve`, which only people hold).

use vigilo_sdk::host::{WorkItem as PluginItem, WorkItemPage};

use super::authz::{Access, Caller, Permission, PermissionSet};
use super::work_items::{self, ItemChanges, ItemQuery, NewItem};
use super::{DomainResult, Reach};
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::plugins::host_api::{ItemsAnswer, ItemsRequest, Refusal, Workplace};
use crate::plugins::Plugins;
use crate::store::work_items::WorkItem;
use crate::store::workspaces::Workspace;
use crate::store::Store;

/// The domain's rules, as the host API reaches them: the store and the
/// plugins (which validate custom field values). Handed to the integrations
/// runtime when the server is assembled
/// ([`crate::integrations::Integrations::attach_workplace`]).
#[derive(Debug)]
pub struct DomainWork {
    store: Store,
    plugins: Arc<Plugins>,
}

impl DomainWork {
    /// Work over `store` and `plugins`.
    pub fn new(store: Store, plugins: Arc<Plugins>) -> Self {
        DomainWork { store, plugins }
    }
}

impl Reach for DomainWork {
    fn store(&self) -> &Store {
        &self.store
    }

    fn plugins(&self) -> &Arc<Plugins> {
        &self.plugins
    }
}

impl Workplace for DomainWork {
    fn work_items<'a>(
        &'a self,
        plugin: &'a str,
        write: bool,
        workspace: Workspace,
        request: ItemsRequest,
    ) -> BoxFuture<'a, Result<ItemsAnswer, Refusal>> {
        Box::pin(async move {
            work_items(self, plugin, write, workspace, request)
                .await
                .map_err(Refusal::from)
        })
    }
}

/// What the domain refused, as a plugin is told it: the sentence of a
/// refusal, or only that the server failed (the detail is logged).
impl From<super::DomainError> for Refusal {
    fn from(e: super::DomainError) -> Self {
        match e {
            super::DomainError::Internal(detail) => Refusal::Server(detail),
            other => Refusal::Asked(other.to_string()),
        }
    }
}

/// Answers a plugin's work-item call in `workspace`.
pub async fn work_items(
    state: &dyn Reach,
    plugin: &str,
    write: bool,
    workspace: Workspace,
    request: ItemsRequest,
) -> DomainResult<ItemsAnswer> {
    let mut held = vec![Permission::WorkspaceRead.name()];
    if write {
        held.push(Permission::ItemWrite.name());
    }
    let permissions = PermissionSet::parse(held)
        .map_err(|e| super::DomainError::Internal(format!("plugin permissions: {e}")))?;
    let access = Access {
        caller: Caller::plugin(plugin),
        workspace,
        membership: None,
        permissions,
    };
    let item = |item: WorkItem| ItemsAnswer::Item(for_plugin(item));
    Ok(match request {
        ItemsRequest::List(query) => {
            let page = work_items::list(
                state,
                &access,
                &ItemQuery {
                    kind: query.kind,
                    status: query.status,
                    text: query.text,
                    mine: false,
                    assignee: None,
                    created_after: query.created_after,
                    created_before: query.created_before,
                    updated_after: query.updated_after,
                    updated_before: query.updated_before,
                    field: query.field.map(|f| (f.key, f.value)),
                    before: query.before,
                    sort: None,
                    after: None,
                    limit: query.limit.map(i64::from),
                },
            )
            .await?;
            ItemsAnswer::Page(WorkItemPage {
                items: page.items.into_iter().map(for_plugin).collect(),
                next_before: page.next_before,
            })
        }
        ItemsRequest::Get(id) => item(work_items::get(state, &access, id).await?),
        ItemsRequest::Create(new) => item(
            work_items::create(
                state,
                &access,
                NewItem {
                    kind: new.kind,
                    title: new.title,
                    description: new.description,
                    fields: new.fields,
                },
            )
            .await?,
        ),
        ItemsRequest::Update(update) => item(
            work_items::update(
                state,
                &access,
                update.id,
                ItemChanges {
                    title: update.title,
                    description: update.description,
                    fields: update.fields,
                    assignee: None,
                },
            )
            .await?,
        ),
        ItemsRequest::Transition(to) => {
            item(work_items::transition(state, &access, to.id, &to.status, &to.comment).await?)
        }
    })
}

/// A stored item in the SDK's shape.
fn for_plugin(item: WorkItem) -> PluginItem {
    PluginItem {
        id: item.id,
        kind: item.kind.to_string(),
        title: item.title,
        description: item.description,
        status: item.status.to_string(),
        fields: item.fields,
        created_by: item.created_by,
        created_at: item.created_at,
        updated_at: item.updated_at,
    }
}
