//! `/w/{slug}/settings/roles`: the permission matrix of the built-in roles
//! and the workspace's custom roles, and (with `role.manage`) creating a
//! custom role from a built-in one with permissions ticked, and deleting
//! one nobody holds.

use crate::web::extract::{need, Member, MemberForm};
use crate::web::urls::Workspace;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::items::humanise;
use super::{render_status, see_other, Done, Frame, PageError};
use crate::domain::authz::{Access, Permission, PermissionSet, Role};
use crate::domain::roles::{self, NewRole};
use crate::domain::sessions::Current;
use crate::domain::DomainError;
use crate::state::AppState;

/// A column of the matrix: a built-in or custom role.
pub struct Column {
    name: String,
    custom: bool,
    base: String,
    holds: PermissionSet,
}

/// A row of the matrix: one permission.
pub struct PermissionRow {
    name: &'static str,
    description: &'static str,
    permission: Permission,
}

#[derive(Template)]
#[template(path = "settings/roles.html")]
struct RolesPage {
    frame: Frame,
    slug: String,
    columns: Vec<Column>,
    rows: Vec<PermissionRow>,
    can_manage: bool,
    form: RoleForm,
    error: Option<String>,
}

impl RolesPage {
    fn ticked(&self, permission: &str) -> bool {
        self.form.permissions.iter().any(|p| p == permission)
    }
    fn custom_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.custom)
    }
    fn builtins(&self) -> [&'static str; 4] {
        Role::ALL.map(Role::name)
    }
    /// The permissions the built-in role `name` holds, space-separated.
    fn held_by(&self, name: &str) -> String {
        name.parse::<Role>()
            .map(|r| r.permissions().names().join(" "))
            .unwrap_or_default()
    }
}

impl Column {
    fn has(&self, p: &Permission) -> bool {
        self.holds.contains(*p)
    }
}

/// The new-role form.
#[derive(Debug, Default, Clone)]
pub struct RoleForm {
    name: String,
    base_role: String,
    permissions: Vec<String>,
}

async fn page_with(
    state: &AppState,
    current: &Current,
    access: &Access,
    form: RoleForm,
    error: Option<String>,
    notice: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let customs = roles::custom_roles(state, access).await?;
    let columns = Role::ALL
        .iter()
        .map(|r| Column {
            name: humanise(r.name()),
            custom: false,
            base: String::new(),
            holds: r.permissions(),
        })
        .chain(customs.into_iter().map(|c| Column {
            name: c.name,
            custom: true,
            base: c.base_role.name().to_owned(),
            holds: c.permissions,
        }))
        .collect();
    let frame = Frame::workspace(state, current, access, "settings", "Roles")
        .await?
        .with_notice(notice);
    Ok(render_status(
        status,
        &RolesPage {
            frame,
            slug: access.workspace.slug.clone(),
            columns,
            rows: Permission::ALL
                .iter()
                .map(|p| PermissionRow {
                    name: p.name(),
                    description: p.description(),
                    permission: *p,
                })
                .collect(),
            can_manage: access.can(Permission::RoleManage),
            form,
            error,
        },
    ))
}

/// `GET /w/{slug}/settings/roles`.
pub async fn page(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::WorkspaceRead>,
    Query(done): Query<Done>,
) -> Result<Response, PageError> {
    let notice = done.notice(&[
        ("created", "The custom role was created."),
        ("deleted", "The custom role was deleted."),
    ]);
    let form = RoleForm {
        base_role: "viewer".into(),
        permissions: Role::Viewer.permissions().names(),
        ..RoleForm::default()
    };
    page_with(
        &state,
        &current,
        &access,
        form,
        None,
        notice,
        StatusCode::OK,
    )
    .await
}

/// `POST /w/{slug}/settings/roles`: the ticked permissions become the role's,
/// expressed as what it adds to and removes from its base role.
pub async fn create(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    MemberForm {
        current,
        access,
        form: pairs,
        ..
    }: MemberForm<need::RoleManage, Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let mut form = RoleForm::default();
    for (key, value) in pairs {
        match key.as_str() {
            "name" => form.name = value,
            "base_role" => form.base_role = value,
            "permissions" => form.permissions.push(value),
            _ => {}
        }
    }
    let base: Option<Role> = form.base_role.parse().ok();
    let base_names = base.map(|b| b.permissions().names()).unwrap_or_default();
    let new = NewRole {
        name: form.name.clone(),
        base_role: form.base_role.clone(),
        add: form
            .permissions
            .iter()
            .filter(|p| !base_names.contains(p))
            .cloned()
            .collect(),
        remove: base_names
            .iter()
            .filter(|p| !form.permissions.contains(p))
            .cloned()
            .collect(),
    };
    match roles::create(&state, &access, &new).await {
        Ok(_) => Ok(see_other(&Workspace(&slug).roles().done("created"))),
        Err(
            e @ (DomainError::Invalid { .. }
            | DomainError::Conflict(_)
            | DomainError::Forbidden { .. }),
        ) => {
            let status = super::error::status_of(&e);
            page_with(
                &state,
                &current,
                &access,
                form,
                Some(e.to_string()),
                None,
                status,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /w/{slug}/settings/roles/{name}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    Path((slug, name)): Path<(String, String)>,
    MemberForm {
        current, access, ..
    }: MemberForm<need::RoleManage>,
) -> Result<Response, PageError> {
    match roles::delete(&state, &access, &name).await {
        Ok(_) => Ok(see_other(&Workspace(&slug).roles().done("deleted"))),
        Err(e @ DomainError::Conflict(_)) => {
            page_with(
                &state,
                &current,
                &access,
                RoleForm {
                    base_role: "viewer".into(),
                    ..RoleForm::default()
                },
                Some(e.to_string()),
                None,
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/w/{slug}/settings/roles", get(page).post(create))
        .route("/w/{slug}/settings/roles/{name}/delete", post(delete))
}
