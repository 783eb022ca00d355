//! What every page around its content shows: the header with the
//! workspace switcher, the signed-in person and sign-out, the workspace's
//! navigation, and the asset URLs.

use crate::domain::authz::{Access, Permission};
use crate::domain::sessions::Current;
use crate::domain::workspaces;
use crate::state::AppState;

use super::{assets, PageError};

/// A workspace in the switcher.
#[derive(Debug, Clone)]
pub struct SwitchTo {
    /// Its slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Whether it is the one shown.
    pub current: bool,
}

/// The workspace navigation of a page inside a workspace.
#[derive(Debug, Clone)]
pub struct Nav {
    /// The workspace's slug.
    pub slug: String,
    /// Its name.
    pub name: String,
    /// Which entry is current: `dashboard`, `change`, `incident`, `task`,
    /// `certificates`, `playbooks`, `members`, `audit`, `settings`.
    pub section: &'static str,
    /// Whether the person may change any of its settings (the Settings
    /// entry).
    pub can_settings: bool,
    /// Whether they may read its audit log.
    pub can_audit: bool,
}

/// The page frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The page's `<title>` (before " · Vigilo").
    pub title: String,
    /// The stylesheet's URL.
    pub css: String,
    /// The app module's URL.
    pub app_js: String,
    /// The plugin loader module's URL.
    pub plugins_js: String,
    /// The icon's URL.
    pub icon: String,
    /// The signed-in person's name and email.
    pub user: Option<(String, String)>,
    /// Whether they are a platform admin.
    pub admin: bool,
    /// The workspaces they can switch to.
    pub workspaces: Vec<SwitchTo>,
    /// The current workspace's navigation.
    pub nav: Option<Nav>,
    /// On a platform admin's page, which of its entries is current:
    /// `workspaces`, `plugins`, `tasks`, `audit`.
    pub admin_section: Option<&'static str>,
    /// The session's CSRF token, for the sign-out form and every other.
    pub csrf: String,
    /// A short message to show once (after a redirect).
    pub notice: Option<String>,
    /// Whether the page reloads itself when a plugin changes (the server
    /// runs for `vigilo-plugin dev`).
    pub dev_reload: bool,
    /// The time zone the person chose to read times in (None: their
    /// browser's).
    pub time_zone: Option<String>,
}

impl Frame {
    /// A frame with no one signed in.
    pub fn bare(title: &str) -> Self {
        Frame {
            title: title.to_owned(),
            css: assets::url("app.css"),
            app_js: assets::url("app.js"),
            plugins_js: assets::url("plugins.js"),
            icon: assets::url("icon.svg"),
            user: None,
            admin: false,
            workspaces: Vec::new(),
            nav: None,
            admin_section: None,
            csrf: String::new(),
            notice: None,
            dev_reload: super::dev::enabled(),
            time_zone: None,
        }
    }

    /// A frame for the signed-in person, outside any workspace.
    pub async fn signed_in(
        state: &AppState,
        current: &Current,
        title: &str,
    ) -> Result<Self, PageError> {
        let user = &current.caller.user;
        let visible = workspaces::visible(state, &current.caller).await?;
        Ok(Frame {
            user: Some((user.name.clone(), user.email.clone())),
            admin: user.platform_admin,
            workspaces: visible
                .into_iter()
                .map(|v| SwitchTo {
                    slug: v.workspace.slug,
                    name: v.workspace.name,
                    current: false,
                })
                .collect(),
            csrf: current.csrf.clone(),
            time_zone: user.time_zone.clone(),
            ..Frame::bare(title)
        })
    }

    /// A frame for a page of `access`'s workspace, in `section`.
    pub async fn workspace(
        state: &AppState,
        current: &Current,
        access: &Access,
        section: &'static str,
        title: &str,
    ) -> Result<Self, PageError> {
        let mut frame = Frame::signed_in(state, current, title).await?;
        for w in &mut frame.workspaces {
            w.current = w.slug == access.workspace.slug;
        }
        frame.nav = Some(Nav {
            slug: access.workspace.slug.clone(),
            name: access.workspace.name.clone(),
            section,
            can_settings: [
                Permission::WorkspaceSettings,
                Permission::DashboardEdit,
                Permission::RoleManage,
                Permission::IntegrationManage,
            ]
            .into_iter()
            .any(|p| access.can(p)),
            can_audit: access.can(Permission::AuditRead),
        });
        Ok(frame)
    }

    /// A frame for a platform admin's page in `section`.
    pub async fn admin(
        state: &AppState,
        current: &Current,
        section: &'static str,
        title: &str,
    ) -> Result<Self, PageError> {
        let mut frame = Frame::signed_in(state, current, title).await?;
        frame.admin_section = Some(section);
        Ok(frame)
    }

    /// The same frame with `notice` shown.
    pub fn with_notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice;
        self
    }

    /// The first letter of the signed-in person's name, for the avatar.
    pub fn initial(&self) -> String {
        self.user
            .as_ref()
            .and_then(|(name, _)| name.chars().next())
            .map(|c| c.to_uppercase().collect())
            .unwrap_or_default()
    }

    /// The URL of the web app's own asset `name` (`audit.js`).
    pub fn asset(&self, name: &str) -> String {
        assets::url(name)
    }

    /// Whether `section` is the current workspace section.
    pub fn is(&self, section: &str) -> bool {
        self.nav.as_ref().is_some_and(|n| n.section == section)
    }
}
