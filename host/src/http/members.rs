//! Roles, members and invites (single, bulk from CSV, and accepting one).
//!
//! Nobody can grant more than they hold: an invite's role and a new custom
//! role must carry only permissions the caller has.

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::extract::{Access, ApiJson, ApiPath, MaybePrincipal, Principal};
use super::validate;
use crate::audit::{self, Actor, ChainAppender, NewEvent};
use crate::authz::{Permission, PermissionSet, Role};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::secrets;
use crate::state::AppState;
use crate::store::{self, CustomRole, Invite, InviteGrant, Member, TokenCreated, User, WriteTx};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(role_matrix))
        .routes(routes!(list_roles, create_role))
        .routes(routes!(delete_role))
        .routes(routes!(list_members))
        .routes(routes!(remove_member))
        .routes(routes!(list_invites, create_invite))
        .routes(routes!(revoke_invite))
        .routes(routes!(accept_invite))
        .merge(
            // A 10,000-row CSV is about 400 KB; allow generous files, on
            // this route only (the rest keep the server's 2 MiB limit).
            OpenApiRouter::new()
                .routes(routes!(bulk_invite))
                .layer(DefaultBodyLimit::max(16 * 1024 * 1024)),
        )
}

/// One permission, for users.
#[derive(Serialize, ToSchema)]
struct PermissionInfo {
    name: &'static str,
    description: &'static str,
}

/// A role and what it holds.
#[derive(Serialize, ToSchema)]
struct RoleInfo {
    name: String,
    /// True for `owner`, `approver`, `engineer`, `viewer`.
    builtin: bool,
    /// For a custom role: the built-in role it is based on.
    base_role: Option<Role>,
    permissions: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
}

fn builtin_roles() -> Vec<RoleInfo> {
    Role::ALL
        .into_iter()
        .map(|r| RoleInfo {
            name: r.name().into(),
            builtin: true,
            base_role: None,
            permissions: r.permissions().names(),
            created_at: None,
        })
        .collect()
}

fn custom_role_info(c: CustomRole) -> RoleInfo {
    RoleInfo {
        name: c.name,
        builtin: false,
        base_role: Some(c.base_role),
        permissions: c.permissions.names(),
        created_at: Some(c.created_at),
    }
}

#[derive(Serialize, ToSchema)]
struct RoleMatrix {
    permissions: Vec<PermissionInfo>,
    roles: Vec<RoleInfo>,
}

/// The built-in permission matrix.
#[utoipa::path(get, path = "/api/v1/roles", tag = "roles", security(("bearer" = [])),
    responses((status = 200, body = RoleMatrix), (status = 401, body = ErrorBody)))]
async fn role_matrix(_principal: Principal) -> Json<RoleMatrix> {
    Json(RoleMatrix {
        permissions: Permission::ALL
            .into_iter()
            .map(|p| PermissionInfo {
                name: p.name(),
                description: p.description(),
            })
            .collect(),
        roles: builtin_roles(),
    })
}

#[derive(Serialize, ToSchema)]
struct RoleList {
    roles: Vec<RoleInfo>,
}

/// Built-in and custom roles of a workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/roles", tag = "roles", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = RoleList), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_roles(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<RoleList>> {
    let access = principal
        .workspace(&state, &slug, Permission::WorkspaceRead)
        .await?;
    let mut roles = builtin_roles();
    roles.extend(
        state
            .store
            .list_custom_roles(access.workspace.id)
            .await?
            .into_iter()
            .map(custom_role_info),
    );
    Ok(Json(RoleList { roles }))
}

/// A new custom role: the base role's permissions, plus `add`, minus `remove`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateRole {
    /// Name, unique in the workspace (1–64 of letters, digits, `_`, `-`, `.`).
    name: String,
    /// Built-in role to start from.
    base_role: String,
    /// Permissions to add.
    #[serde(default)]
    add: Vec<String>,
    /// Permissions to remove.
    #[serde(default)]
    remove: Vec<String>,
}

fn ensure_grantable(access: &Access, perms: &PermissionSet, what: &str) -> Result<(), ApiError> {
    if let Some(p) = perms.0.iter().find(|p| !access.permissions.contains(**p)) {
        return Err(ApiError::forbidden(
            p.name(),
            format!(
                "{what} would grant `{p}`, which you do not hold in workspace `{}`",
                access.workspace.slug
            ),
        ));
    }
    Ok(())
}

/// Creates a custom role (needs `role.manage`).
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/roles", tag = "roles", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = CreateRole,
    responses((status = 201, body = RoleInfo), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_role(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<CreateRole>, ApiError>,
) -> ApiResult<(StatusCode, Json<RoleInfo>)> {
    let access = principal
        .workspace(&state, &slug, Permission::RoleManage)
        .await?;
    let ApiJson(body) = body?;
    let name = validate::identifier("name", &body.name)?;
    if Role::ALL.iter().any(|r| r.name() == name) {
        return Err(ApiError::invalid(
            "name",
            format!("`{name}` is a built-in role's name"),
        ));
    }
    let base: Role = body
        .base_role
        .parse()
        .map_err(|e| ApiError::invalid("base_role", e))?;
    let add = PermissionSet::parse(body.add.iter().map(String::as_str))
        .map_err(|e| ApiError::invalid("add", e))?;
    let remove = PermissionSet::parse(body.remove.iter().map(String::as_str))
        .map_err(|e| ApiError::invalid("remove", e))?;
    let mut perms = base.permissions();
    perms.0.extend(add.0);
    perms.0.retain(|p| !remove.contains(*p));
    ensure_grantable(&access, &perms, "this role")?;
    let mut tx = state.store.begin_write().await?;
    let role = store::insert_custom_role(&mut tx, access.workspace.id, &name, base, &perms).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "role.create",
            &name,
            json!({"base_role": base, "permissions": perms.names()}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(custom_role_info(role))))
}

/// Deletes a custom role that no member holds and no open invite names.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/roles/{name}", tag = "roles", security(("bearer" = [])),
    params(("slug" = String, Path), ("name" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_role(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, name)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    let access = principal
        .workspace(&state, &slug, Permission::RoleManage)
        .await?;
    let mut tx = state.store.begin_write().await?;
    let role = store::delete_custom_role(&mut tx, access.workspace.id, &name).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "role.delete",
            &name,
            json!({"base_role": role.base_role, "permissions": role.permissions.names()}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct MemberList {
    members: Vec<Member>,
}

/// Members of a workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/members", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = MemberList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_members(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<MemberList>> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberRead)
        .await?;
    Ok(Json(MemberList {
        members: state.store.list_members(access.workspace.id).await?,
    }))
}

/// Removes a member (needs `member.remove`). The last owner cannot be removed.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/members/{email}", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path), ("email" = String, Path)),
    responses((status = 200, body = Member), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn remove_member(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, email)): ApiPath<(String, String)>,
) -> ApiResult<Json<Member>> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberRemove)
        .await?;
    let email = email.trim().to_ascii_lowercase();
    let mut tx = state.store.begin_write().await?;
    let member = store::remove_member(&mut tx, access.workspace.id, &email).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "member.remove",
            &email,
            json!({"role": member.role, "custom_role": member.custom_role}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(member))
}

#[derive(Serialize, ToSchema)]
struct InviteList {
    invites: Vec<Invite>,
}

/// Invites of a workspace, newest first (never their tokens).
#[utoipa::path(get, path = "/api/v1/workspaces/{slug}/invites", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path)),
    responses((status = 200, body = InviteList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_invites(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
) -> ApiResult<Json<InviteList>> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberRead)
        .await?;
    Ok(Json(InviteList {
        invites: state.store.list_invites(access.workspace.id).await?,
    }))
}

/// One invite: a built-in `role` or a `custom_role`, not both.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateInvite {
    email: String,
    role: Option<String>,
    custom_role: Option<String>,
}

/// An invite just created, with its one-time accept token and link.
#[derive(Serialize, ToSchema)]
struct InviteCreated {
    #[serde(flatten)]
    invite: Invite,
    /// The one-time accept token (shown only here).
    accept_token: String,
    /// Link to pass on to the invitee.
    accept_url: String,
}

/// What an invite grants, resolved.
struct Grant {
    role: Role,
    custom: Option<CustomRole>,
}

impl Grant {
    fn permissions(&self) -> PermissionSet {
        match &self.custom {
            Some(c) => c.permissions.clone(),
            None => self.role.permissions(),
        }
    }
}

struct InviteContext<'a> {
    state: &'a AppState,
    access: &'a Access,
    actor: Actor,
    inviter_id: i64,
}

impl InviteContext<'_> {
    /// Creates the invite, queues its mail and audits it, in `tx`.
    async fn invite(
        &self,
        tx: &mut WriteTx,
        chain: &mut ChainAppender,
        email: &str,
        grant: &Grant,
    ) -> ApiResult<InviteCreated> {
        let workspace = &self.access.workspace;
        let created = store::insert_invite(
            tx,
            workspace.id,
            email,
            &InviteGrant {
                role: grant.role,
                custom_role: grant.custom.as_ref().map(|c| (c.id, c.name.as_str())),
                invited_by: self.inviter_id,
                invited_by_email: &self.actor.label,
                ttl_days: self.state.config.invite_ttl_days,
            },
        )
        .await?;
        let accept_url = format!("{}/invites/{}", self.state.public_url, created.accept_token);
        let role_text = grant
            .custom
            .as_ref()
            .map(|c| c.name.as_str())
            .unwrap_or(grant.role.name());
        let body = format!(
            "{} invited you to the Vigilo workspace \"{}\" as {role_text}.\n\n\
             Accept the invite here (the link works once and expires at {}):\n{accept_url}\n\n\
             Or with the CLI:\nvigilo invite accept {} --url {} --name \"Your Name\"\n",
            self.actor.label,
            workspace.name,
            created.invite.expires_at,
            created.accept_token,
            self.state.public_url
        );
        // The body holds the invite token: it is stored sealed, like every
        // other secret, so the database never has it in the clear.
        store::queue_mail(
            tx,
            "invite",
            email,
            &format!("You are invited to {} on Vigilo", workspace.name),
            &self
                .state
                .secrets
                .seal(&crate::mail::sealing_context(email), &body),
        )
        .await?;
        chain
            .append(
            tx,
            &self.actor,
            NewEvent::new(
                Some(workspace.id),
                "member.invite",
                email,
                json!({"invite_id": created.invite.id, "role": grant.role, "custom_role": grant.custom.as_ref().map(|c| &c.name)}),
            ),
        )
        .await?;
        Ok(InviteCreated {
            invite: created.invite,
            accept_url,
            accept_token: created.accept_token,
        })
    }
}

fn resolve_grant(
    role: Option<&str>,
    custom: Option<&str>,
    customs: &[CustomRole],
) -> Result<Grant, (&'static str, String)> {
    match (
        role.filter(|r| !r.is_empty()),
        custom.filter(|c| !c.is_empty()),
    ) {
        (_, Some(name)) => {
            let found = customs
                .iter()
                .find(|c| c.name == name)
                .ok_or_else(|| ("custom_role", format!("unknown custom role `{name}`")))?;
            if let Some(r) = role.filter(|r| !r.is_empty()) {
                r.parse::<Role>().map_err(|e| ("role", e))?;
            }
            Ok(Grant {
                role: found.base_role,
                custom: Some(found.clone()),
            })
        }
        (Some(r), None) => Ok(Grant {
            role: r.parse().map_err(|e| ("role", e))?,
            custom: None,
        }),
        (None, None) => Err((
            "role",
            "give a role (owner, approver, engineer, viewer) or a custom role".into(),
        )),
    }
}

/// Invites one person (needs `member.invite`). The accept link is returned
/// and queued in the outbox (and mailed when SMTP is configured).
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/invites", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path)), request_body = CreateInvite,
    responses((status = 201, body = InviteCreated), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_invite(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    body: Result<ApiJson<CreateInvite>, ApiError>,
) -> ApiResult<(StatusCode, Json<InviteCreated>)> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberInvite)
        .await?;
    let ApiJson(body) = body?;
    let email = validate::email_field("email", &body.email)?;
    if body.role.is_some() && body.custom_role.is_some() {
        return Err(ApiError::invalid(
            "role",
            "give either `role` or `custom_role`, not both",
        ));
    }
    let customs = state.store.list_custom_roles(access.workspace.id).await?;
    let grant = resolve_grant(body.role.as_deref(), body.custom_role.as_deref(), &customs)
        .map_err(|(field, m)| ApiError::invalid(field, m))?;
    ensure_grantable(&access, &grant.permissions(), "this invite")?;
    let mut tx = state.store.begin_write().await?;
    let members = store::list_members_in(&mut tx, access.workspace.id).await?;
    if members.iter().any(|m| m.email == email) {
        return Err(ApiError::Conflict(format!(
            "{email} is already a member of `{slug}`"
        )));
    }
    let ctx = InviteContext {
        state: &state,
        access: &access,
        actor: principal.actor(),
        inviter_id: principal.user.id,
    };
    store::expire_invites(&mut tx, Some(access.workspace.id)).await?;
    let mut chain = ChainAppender::open(&mut tx, Some(access.workspace.id)).await?;
    let created = ctx.invite(&mut tx, &mut chain, &email, &grant).await?;
    tx.commit().await?;
    state.mail_queued.notify_one();
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revokes a pending invite.
#[utoipa::path(delete, path = "/api/v1/workspaces/{slug}/invites/{id}", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path), ("id" = i64, Path)),
    responses((status = 200, body = Invite), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn revoke_invite(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((slug, id)): ApiPath<(String, i64)>,
) -> ApiResult<Json<Invite>> {
    let access = principal
        .workspace(&state, &slug, Permission::MemberInvite)
        .await?;
    let mut tx = state.store.begin_write().await?;
    let invite = store::revoke_invite(&mut tx, access.workspace.id, id).await?;
    audit::append(
        &mut tx,
        &principal.actor(),
        NewEvent::new(
            Some(access.workspace.id),
            "invite.revoke",
            &invite.email,
            json!({"invite_id": id}),
        ),
    )
    .await?;
    tx.commit().await?;
    Ok(Json(invite))
}

/// The columns a bulk-invite CSV must have, in this order.
pub const BULK_COLUMNS: [&str; 3] = ["email", "role", "custom_role_name"];
const MAX_BULK_ROWS: usize = 50_000;

/// One row's outcome.
#[derive(Serialize, ToSchema)]
struct BulkRow {
    /// Line number in the file (the header is line 1).
    row: u64,
    email: String,
    /// `invited`, `skipped` (already a member or already invited) or `failed`.
    outcome: &'static str,
    reason: Option<String>,
    accept_url: Option<String>,
    accept_token: Option<String>,
}

/// The per-row report of a bulk invite.
#[derive(Serialize, ToSchema)]
struct BulkReport {
    invited: usize,
    skipped: usize,
    failed: usize,
    rows: Vec<BulkRow>,
}

/// Invites everyone in a CSV file (`Content-Type: text/csv`, header
/// `email,role,custom_role_name`). Every row is checked; valid rows are
/// invited even when others fail; running the same file again invites
/// nobody twice. A wrong header refuses the whole file.
#[utoipa::path(post, path = "/api/v1/workspaces/{slug}/invites/bulk", tag = "members", security(("bearer" = [])),
    params(("slug" = String, Path)),
    request_body(content = String, content_type = "text/csv", description = "CSV with header email,role,custom_role_name"),
    responses((status = 200, body = BulkReport), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn bulk_invite(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(slug): ApiPath<String>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> ApiResult<Json<BulkReport>> {
    let body = body.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge("the CSV file is larger than 16 MiB".into())
        } else {
            ApiError::bad_request("bad_request", e.body_text())
        }
    })?;
    let access = principal
        .workspace(&state, &slug, Permission::MemberInvite)
        .await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("text/csv") {
        return Err(ApiError::UnsupportedMediaType(
            "send the file with `Content-Type: text/csv`".into(),
        ));
    }
    let text = std::str::from_utf8(&body).map_err(|e| {
        ApiError::bad_request("invalid_csv", format!("the file is not UTF-8 text: {e}"))
    })?;
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| {
            ApiError::bad_request("invalid_csv", format!("cannot read the CSV header: {e}"))
        })?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_ascii_lowercase())
        .collect();
    if header != BULK_COLUMNS {
        return Err(ApiError::bad_request(
            "invalid_csv",
            format!(
                "wrong CSV header `{}`: the first line must be exactly `{}`",
                header.join(","),
                BULK_COLUMNS.join(",")
            ),
        ));
    }
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            ApiError::bad_request("invalid_csv", format!("cannot read the CSV file: {e}"))
        })?;
        if record.iter().all(str::is_empty) {
            continue;
        }
        records.push(record);
        if records.len() > MAX_BULK_ROWS {
            return Err(ApiError::bad_request(
                "invalid_csv",
                format!("the file has more than {MAX_BULK_ROWS} rows; split it"),
            ));
        }
    }

    let customs = state.store.list_custom_roles(access.workspace.id).await?;
    let mut tx = state.store.begin_write().await?;
    let members: HashSet<String> = store::list_members_in(&mut tx, access.workspace.id)
        .await?
        .into_iter()
        .map(|m| m.email)
        .collect();
    store::expire_invites(&mut tx, Some(access.workspace.id)).await?;
    let mut chain = ChainAppender::open(&mut tx, Some(access.workspace.id)).await?;
    let pending: HashSet<String> = store::pending_invite_emails_in(&mut tx, access.workspace.id)
        .await?
        .into_iter()
        .collect();
    let ctx = InviteContext {
        state: &state,
        access: &access,
        actor: principal.actor(),
        inviter_id: principal.user.id,
    };
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut rows = Vec::with_capacity(records.len());
    for record in &records {
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let raw_email = record.get(0).unwrap_or("").to_string();
        let mut row = BulkRow {
            row: line,
            email: raw_email.clone(),
            outcome: "failed",
            reason: None,
            accept_url: None,
            accept_token: None,
        };
        let outcome: Result<Option<InviteCreated>, (&'static str, String)> = async {
            if record.len() != BULK_COLUMNS.len() {
                return Err((
                    "failed",
                    format!(
                        "expected {} columns, found {}",
                        BULK_COLUMNS.len(),
                        record.len()
                    ),
                ));
            }
            let email = validate::email("email", &raw_email)
                .map_err(|m| ("failed", format!("malformed email: {m}")))?;
            let grant = resolve_grant(record.get(1), record.get(2), &customs)
                .map_err(|(_, m)| ("failed", m))?;
            if let Some(first) = seen.get(&email) {
                return Err(("failed", format!("duplicate of row {first} in this file")));
            }
            seen.insert(email.clone(), line);
            if members.contains(&email) {
                return Err(("skipped", "already a member".to_string()));
            }
            if pending.contains(&email) {
                return Err(("skipped", "already invited".to_string()));
            }
            ensure_grantable(&access, &grant.permissions(), "this invite")
                .map_err(|e| ("failed", e.to_string()))?;
            Ok(Some(
                ctx.invite(&mut tx, &mut chain, &email, &grant)
                    .await
                    .map_err(|e| ("failed", e.to_string()))?,
            ))
        }
        .await;
        match outcome {
            Ok(Some(created)) => {
                row.email = created.invite.email.clone();
                row.outcome = "invited";
                row.accept_url = Some(created.accept_url);
                row.accept_token = Some(created.accept_token);
            }
            Ok(None) => {}
            Err((kind, reason)) => {
                row.outcome = if kind == "skipped" {
                    "skipped"
                } else {
                    "failed"
                };
                row.reason = Some(reason);
            }
        }
        rows.push(row);
    }
    tx.commit().await?;
    state.mail_queued.notify_one();
    let count = |o: &str| rows.iter().filter(|r| r.outcome == o).count();
    let report = BulkReport {
        invited: count("invited"),
        skipped: count("skipped"),
        failed: count("failed"),
        rows,
    };
    tracing::info!(workspace = %slug, invited = report.invited, skipped = report.skipped, failed = report.failed, "bulk invite");
    Ok(Json(report))
}

/// Accepting an invite.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AcceptInvite {
    /// The new member's display name (1–100 characters).
    name: String,
}

/// The outcome of accepting an invite.
#[derive(Serialize, ToSchema)]
struct Accepted {
    user: User,
    /// Workspace slug joined.
    workspace: String,
    role: Role,
    custom_role: Option<String>,
    /// The new member's first API token; null when the address already had
    /// an account (which then had to authenticate).
    token: Option<TokenCreated>,
}

/// Accepts an invite with its one-time token. A new address becomes a user
/// and gets its first API token; an address that already has an account
/// must send that account's token.
#[utoipa::path(post, path = "/api/v1/invites/{token}/accept", tag = "members",
    params(("token" = String, Path, description = "the invite's accept token (vgi_...)")), request_body = AcceptInvite,
    responses((status = 201, body = Accepted), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn accept_invite(
    State(state): State<AppState>,
    MaybePrincipal(principal): MaybePrincipal,
    ApiPath(token): ApiPath<String>,
    ApiJson(body): ApiJson<AcceptInvite>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    let name = validate::text("name", &body.name, 100)?;
    let not_found =
        || ApiError::NotFound("no such invite: check the link or ask for a new invite".into());
    if !secrets::well_formed(&token, secrets::INVITE_TOKEN_PREFIX) {
        return Err(not_found());
    }
    let mut tx = state.store.begin_write().await?;
    let record = store::invite_by_token_hash(&mut tx, &secrets::hash(&token))
        .await?
        .ok_or_else(not_found)?;
    let invite = &record.invite;
    if invite.status != "pending" {
        return Err(ApiError::Conflict(format!(
            "this invite is {} and can no longer be accepted",
            invite.status
        )));
    }
    let existing = store::user_by_email(&mut tx, &invite.email).await?;
    let (user, token, actor) = match existing {
        Some(user) => {
            match &principal {
                None => {
                    return Err(ApiError::Unauthorized {
                        code: "unauthenticated",
                        message: format!(
                            "{} already has a Vigilo account: accept the invite with that account's API token",
                            invite.email
                        ),
                    })
                }
                Some(p) if p.user.id != user.id => {
                    return Err(ApiError::forbidden(
                        "invitee",
                        format!("this invite is for {}, not {}", invite.email, p.user.email),
                    ))
                }
                Some(p) => {
                    let actor = p.actor();
                    (user, None, actor)
                }
            }
        }
        None => {
            let user = store::insert_user(&mut tx, &invite.email, &name, false).await?;
            let token = store::insert_token(&mut tx, user.id, "first token", None).await?;
            let actor = Actor {
                user_id: Some(user.id),
                token_id: None,
                label: user.email.clone(),
            };
            (user, Some(token), actor)
        }
    };
    store::insert_membership(
        &mut tx,
        record.workspace_id,
        user.id,
        invite.role,
        record.custom_role_id,
    )
    .await?;
    store::mark_invite_accepted(&mut tx, invite.id).await?;
    let workspace_slug: String = sqlx::query_scalar("SELECT slug FROM workspaces WHERE id = $1")
        .bind(record.workspace_id)
        .fetch_one(&mut *tx)
        .await
        .map_err(store::StoreError::from)?;
    audit::append(
        &mut tx,
        &actor,
        NewEvent::new(
            Some(record.workspace_id),
            "member.join",
            &user.email,
            json!({"invite_id": invite.id, "role": invite.role, "custom_role": invite.custom_role, "new_user": token.is_some()}),
        ),
    )
    .await?;
    tx.commit().await?;
    let custom_role = invite.custom_role.clone();
    let role = invite.role;
    Ok((
        StatusCode::CREATED,
        Json(Accepted {
            user,
            workspace: workspace_slug,
            role,
            custom_role,
            token,
        }),
    ))
}
