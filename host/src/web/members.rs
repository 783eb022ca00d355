//! `/w/{slug}/members`: who is in the workspace and with which role (a
//! page of [`PAGE_ROWS`] at a time, with the count), changing roles and
//! removing people (owners), inviting one person, the invites with their
//! status (resend, revoke; paged the same way), and inviting many from a CSV
//! file: the file is checked and previewed row by row before anything is
//! sent, then the per-row report offers the failed rows as a CSV file to fix
//! and upload again.

use crate::store::invites::InviteStatus;
use crate::web::extract::{need, Member, MemberForm};
use crate::web::urls::Workspace;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;

use super::items::{when, when_text, When};
use super::{render_status, see_other, Done, Frame, PageError};
use crate::domain::authz::{Access, Permission, Role};
use crate::domain::invites::{self, InviteCreated, NewInvite};
use crate::domain::paging::PageQuery;
use crate::domain::sessions::Current;
use crate::domain::{members, roles, DomainError};
use crate::state::AppState;
use crate::store::workspaces::CustomRole;

mod bulk;

pub use bulk::{bulk_confirm, bulk_preview};

/// A role in a picker: `owner`, or `custom:<name>` for a custom role.
pub struct RoleOption {
    value: String,
    label: String,
}

fn role_options(customs: &[CustomRole]) -> Vec<RoleOption> {
    Role::ALL
        .iter()
        .map(|r| RoleOption {
            value: r.name().to_owned(),
            label: super::items::humanise(r.name()),
        })
        .chain(customs.iter().map(|c| RoleOption {
            value: format!("custom:{}", c.name),
            label: format!("{} (custom, based on {})", c.name, c.base_role),
        }))
        .collect()
}

/// A picker's value as (built-in role, custom role).
fn split_role(value: &str) -> (Option<&str>, Option<&str>) {
    match value.strip_prefix("custom:") {
        Some(custom) => (None, Some(custom)),
        None => (Some(value), None),
    }
}

fn role_label(role: Role, custom: Option<&str>) -> String {
    match custom {
        Some(c) => format!("{c} (custom)"),
        None => super::items::humanise(role.name()),
    }
}

/// A member in the list.
pub struct MemberRow {
    email: String,
    name: String,
    role: String,
    role_value: String,
    joined: When,
    is_me: bool,
}

/// An invite in the list.
pub struct InviteRow {
    id: i64,
    email: String,
    role: String,
    status: InviteStatus,
    sent: When,
    expires: When,
    invited_by: String,
}

impl MembersPage {
    fn when(&self, time: &str) -> String {
        when_text(time)
    }
}

impl InviteRow {
    fn can_resend(&self) -> bool {
        matches!(self.status, InviteStatus::Pending | InviteStatus::Expired)
    }
}

/// Rows of each list on the page.
pub const PAGE_ROWS: i64 = 50;

/// Which page of each list is shown: `?after=`/`?before=` an email for the
/// members, `?invites_before=`/`?invites_after=` an invite id for the
/// invites (see [`crate::domain::paging`]).
#[derive(Debug, Deserialize, Default, Clone)]
pub struct Paging {
    after: Option<String>,
    before: Option<String>,
    invites_before: Option<String>,
    invites_after: Option<String>,
}

impl Paging {
    /// The query string of these positions (empty ones left out), each
    /// pair preceded by `&`.
    fn query(&self) -> String {
        [
            ("after", &self.after),
            ("before", &self.before),
            ("invites_before", &self.invites_before),
            ("invites_after", &self.invites_after),
        ]
        .iter()
        .filter_map(|(name, value)| {
            value
                .as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| format!("&{name}={}", super::session::urlencode(v)))
        })
        .collect()
    }

    /// The link to the page with these positions, at `anchor`.
    fn url(&self, slug: &str, anchor: &str) -> String {
        let query = self.query();
        let query = query.strip_prefix('&').unwrap_or("");
        let page = Workspace(slug).members();
        if query.is_empty() {
            format!("{page}#{anchor}")
        } else {
            format!("{page}?{query}#{anchor}")
        }
    }

    fn members(&self) -> PageQuery<String> {
        let given = |v: &Option<String>| v.clone().filter(|v| !v.is_empty());
        PageQuery {
            after: given(&self.after),
            before: given(&self.before),
            limit: Some(PAGE_ROWS),
        }
    }

    fn invites(&self) -> PageQuery<i64> {
        let id = |v: &Option<String>| v.as_deref().and_then(|v| v.trim().parse().ok());
        PageQuery {
            after: id(&self.invites_after),
            before: id(&self.invites_before),
            limit: Some(PAGE_ROWS),
        }
    }
}

impl Paging {
    /// The pager of the members list: `total` and `shown` rows, and the
    /// emails that end the page on either side, when more lie beyond.
    fn members_pager(
        &self,
        slug: &str,
        (total, shown): (i64, usize),
        prev: Option<String>,
        next: Option<String>,
    ) -> Pager {
        Pager {
            total,
            shown,
            prev: prev.map(|email| {
                Paging {
                    after: None,
                    before: Some(email),
                    ..self.clone()
                }
                .url(slug, "members-h")
            }),
            next: next.map(|email| {
                Paging {
                    after: Some(email),
                    before: None,
                    ..self.clone()
                }
                .url(slug, "members-h")
            }),
        }
    }

    /// The pager of the invites list (newest first), like
    /// [`Paging::members_pager`] with invite ids.
    fn invites_pager(
        &self,
        slug: &str,
        (total, shown): (i64, usize),
        prev: Option<i64>,
        next: Option<i64>,
    ) -> Pager {
        Pager {
            total,
            shown,
            prev: prev.map(|id| {
                Paging {
                    invites_after: Some(id.to_string()),
                    invites_before: None,
                    ..self.clone()
                }
                .url(slug, "invites-h")
            }),
            next: next.map(|id| {
                Paging {
                    invites_before: Some(id.to_string()),
                    invites_after: None,
                    ..self.clone()
                }
                .url(slug, "invites-h")
            }),
        }
    }
}

/// A list's count and the links to its neighbouring pages.
pub struct Pager {
    total: i64,
    shown: usize,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "members/page.html")]
struct MembersPage {
    frame: Frame,
    slug: String,
    members: Vec<MemberRow>,
    members_pager: Pager,
    invites: Vec<InviteRow>,
    invites_pager: Pager,
    roles: Vec<RoleOption>,
    can_roles: bool,
    can_remove: bool,
    can_invite: bool,
    created: Option<InviteCreated>,
    email: String,
    role: String,
    error: Option<String>,
    bulk_error: Option<String>,
    /// Whether the server mails invites (SMTP is configured).
    mails: bool,
}

/// What the page shows besides the lists.
#[derive(Default)]
struct Shown {
    created: Option<InviteCreated>,
    email: String,
    role: String,
    error: Option<String>,
    bulk_error: Option<String>,
    notice: Option<String>,
    paging: Paging,
}

async fn page_with(
    state: &AppState,
    current: &Current,
    access: &Access,
    shown: Shown,
    status: StatusCode,
) -> Result<Response, PageError> {
    let me = &current.caller.user.email;
    let slug = &access.workspace.slug;
    let paging = &shown.paging;
    let members = members::list(state, access, paging.members()).await?;
    let members_pager = paging.members_pager(
        slug,
        (members.total, members.rows.len()),
        members.prev.clone(),
        members.next.clone(),
    );
    let invites = invites::list(state, access, paging.invites()).await?;
    let invites_pager = paging.invites_pager(
        slug,
        (invites.total, invites.rows.len()),
        invites.prev,
        invites.next,
    );
    let members = members
        .rows
        .into_iter()
        .map(|m| MemberRow {
            role: role_label(m.role, m.custom_role.as_deref()),
            role_value: match &m.custom_role {
                Some(c) => format!("custom:{c}"),
                None => m.role.name().to_owned(),
            },
            joined: when(&m.joined_at),
            is_me: &m.email == me,
            name: m.name,
            email: m.email,
        })
        .collect();
    let invites = invites
        .rows
        .into_iter()
        .map(|i| InviteRow {
            id: i.id,
            role: role_label(i.role, i.custom_role.as_deref()),
            status: i.status,
            sent: when(&i.created_at),
            expires: when(&i.expires_at),
            invited_by: i.invited_by,
            email: i.email,
        })
        .collect();
    let customs = roles::custom_roles(state, access).await?;
    let frame = Frame::workspace(state, current, access, "members", "Members")
        .await?
        .with_notice(shown.notice);
    let mut response = render_status(
        status,
        &MembersPage {
            frame,
            slug: access.workspace.slug.clone(),
            members,
            members_pager,
            invites,
            invites_pager,
            roles: role_options(&customs),
            can_roles: access.can(Permission::RoleManage),
            can_remove: access.can(Permission::MemberRemove),
            can_invite: access.can(Permission::MemberInvite),
            created: shown.created,
            email: shown.email,
            role: if shown.role.is_empty() {
                "engineer".into()
            } else {
                shown.role
            },
            error: shown.error,
            bulk_error: shown.bulk_error,
            mails: state.config.smtp.is_some(),
        },
    );
    // A page that may show an invite link is never stored.
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// `GET /w/{slug}/members`.
pub async fn page(
    State(state): State<AppState>,
    Member {
        current, access, ..
    }: Member<need::MemberRead>,
    Query(done): Query<Done>,
    Query(paging): Query<Paging>,
) -> Result<Response, PageError> {
    let about = done.about.clone().unwrap_or_default();
    let notice = done
        .notice(&[
            ("role", "The role was changed."),
            ("removed", "The member was removed from the workspace."),
            (
                "revoked",
                "The invite was revoked; its link no longer works.",
            ),
        ])
        .map(|text| {
            if about.is_empty() {
                text
            } else {
                format!("{about}: {text}")
            }
        });
    page_with(
        &state,
        &current,
        &access,
        Shown {
            notice,
            paging,
            ..Shown::default()
        },
        StatusCode::OK,
    )
    .await
}

fn members_url(slug: &str, done: &str, about: &str) -> String {
    format!(
        "/w/{slug}/members?done={done}&about={}",
        super::session::urlencode(about)
    )
}

/// The change-role form.
#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

/// `POST /w/{slug}/members/{email}/role`.
pub async fn set_role(
    State(state): State<AppState>,
    Path((slug, email)): Path<(String, String)>,
    MemberForm {
        current,
        access,
        form,
        ..
    }: MemberForm<need::RoleManage, RoleForm>,
) -> Result<Response, PageError> {
    let (role, custom) = split_role(&form.role);
    match members::set_role(&state, &access, &email, role, custom).await {
        Ok(member) => Ok(see_other(&members_url(&slug, "role", &member.email))),
        Err(e @ (DomainError::Conflict(_) | DomainError::Invalid { .. })) => {
            page_with(
                &state,
                &current,
                &access,
                Shown {
                    error: Some(format!("{email}: {e}")),
                    ..Shown::default()
                },
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /w/{slug}/members/{email}/remove`.
pub async fn remove(
    State(state): State<AppState>,
    Path((slug, email)): Path<(String, String)>,
    MemberForm {
        current, access, ..
    }: MemberForm<need::MemberRemove>,
) -> Result<Response, PageError> {
    match members::remove(&state, &access, &email).await {
        Ok(member) => Ok(see_other(&members_url(&slug, "removed", &member.email))),
        Err(e @ DomainError::Conflict(_)) => {
            page_with(
                &state,
                &current,
                &access,
                Shown {
                    error: Some(e.to_string()),
                    ..Shown::default()
                },
                StatusCode::CONFLICT,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// The invite form.
#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// `POST /w/{slug}/invites`: invites one person and shows their link once.
pub async fn invite(
    State(state): State<AppState>,
    MemberForm {
        current,
        access,
        form,
        ..
    }: MemberForm<need::MemberInvite, InviteForm>,
) -> Result<Response, PageError> {
    let (role, custom) = split_role(&form.role);
    let new = NewInvite {
        email: form.email.clone(),
        role: role.map(str::to_owned),
        custom_role: custom.map(str::to_owned),
    };
    match invites::create(&state, &access, &new).await {
        Ok(created) => {
            page_with(
                &state,
                &current,
                &access,
                Shown {
                    created: Some(created),
                    ..Shown::default()
                },
                StatusCode::CREATED,
            )
            .await
        }
        Err(e @ (DomainError::Invalid { .. } | DomainError::Conflict(_))) => {
            let status = super::error::status_of(&e);
            page_with(
                &state,
                &current,
                &access,
                Shown {
                    email: form.email,
                    role: form.role,
                    error: Some(e.to_string()),
                    ..Shown::default()
                },
                status,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /w/{slug}/invites/{id}/resend`: a new link, shown once.
pub async fn resend(
    State(state): State<AppState>,
    Path((_slug, id)): Path<(String, i64)>,
    MemberForm {
        current, access, ..
    }: MemberForm<need::MemberInvite>,
) -> Result<Response, PageError> {
    let created = invites::resend(&state, &access, id).await?;
    page_with(
        &state,
        &current,
        &access,
        Shown {
            created: Some(created),
            ..Shown::default()
        },
        StatusCode::CREATED,
    )
    .await
}

/// `POST /w/{slug}/invites/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Path((slug, id)): Path<(String, i64)>,
    MemberForm { access, .. }: MemberForm<need::MemberInvite>,
) -> Result<Response, PageError> {
    let invite = invites::revoke(&state, &access, id).await?;
    Ok(see_other(&members_url(&slug, "revoked", &invite.email)))
}

/// The routes of these pages.
pub(super) fn routes() -> axum::Router<crate::state::AppState> {
    use axum::extract::DefaultBodyLimit;
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/w/{slug}/members", get(page))
        .route("/w/{slug}/members/{email}/role", post(set_role))
        .route("/w/{slug}/members/{email}/remove", post(remove))
        .route("/w/{slug}/invites", post(invite))
        .route("/w/{slug}/invites/{id}/resend", post(resend))
        .route("/w/{slug}/invites/{id}/revoke", post(revoke))
        .route(
            "/w/{slug}/invites/bulk",
            post(bulk_preview).layer(DefaultBodyLimit::max(8 * 1024 * 1024)),
        )
        .route(
            "/w/{slug}/invites/bulk/confirm",
            post(bulk_confirm).layer(DefaultBodyLimit::max(20 * 1024 * 1024)),
        )
}
