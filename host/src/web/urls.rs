//! The addresses the web app's handlers send people to, built in one
//! place: a workspace's pages ([`Workspace`]), the administration's
//! ([`admin`]), a person's own ([`profile`]), and the notice a page shows
//! after a change (`?done=…&about=…`, read by [`super::Done`]).
//! A work item's pages are [`super::items::Kind::item_url`] and
//! [`super::items::Kind::list_url`].

use std::fmt;
use std::ops::Deref;

use super::session::urlencode;

/// A page's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url(String);

impl Url {
    fn path(path: String) -> Url {
        Url(path)
    }

    /// The page with `name=value` added to its query.
    pub fn with(mut self, name: &str, value: &str) -> Url {
        let joiner = if self.0.contains('?') { '&' } else { '?' };
        self.0 = format!("{}{joiner}{name}={}", self.0, urlencode(value));
        self
    }

    /// The page, saying that `what` was done (`?done=what`).
    pub fn done(self, what: &str) -> Url {
        self.with("done", what)
    }

    /// The page's notice is about `subject` (`&about=subject`).
    pub fn about(self, subject: &str) -> Url {
        self.with("about", subject)
    }
}

impl Deref for Url {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Url> for String {
    fn from(url: Url) -> String {
        url.0
    }
}

/// The pages of the workspace whose slug this is.
#[derive(Debug, Clone, Copy)]
pub struct Workspace<'a>(pub &'a str);

impl Workspace<'_> {
    fn page(&self, rest: &str) -> Url {
        Url::path(format!("/w/{}{rest}", self.0))
    }

    /// Its dashboard.
    pub fn home(&self) -> Url {
        self.page("")
    }

    /// Its audit log.
    pub fn audit(&self) -> Url {
        self.page("/audit")
    }

    /// Verifying its audit log, and its checkpoints.
    pub fn audit_verify(&self) -> Url {
        self.page("/audit/verify")
    }

    /// Its certificate inventory.
    pub fn certificates(&self) -> Url {
        self.page("/certificates")
    }

    /// Its members and invites.
    pub fn members(&self) -> Url {
        self.page("/members")
    }

    /// Its settings: general ones, and the holidays.
    pub fn general_settings(&self) -> Url {
        self.page("/settings/general")
    }

    /// Its roles and their permissions.
    pub fn roles(&self) -> Url {
        self.page("/settings/roles")
    }

    /// Its custom fields.
    pub fn fields(&self) -> Url {
        self.page("/settings/fields")
    }

    /// Arranging its dashboard.
    pub fn dashboard_settings(&self) -> Url {
        self.page("/settings/dashboard")
    }

    /// Its integrations.
    pub fn integrations(&self) -> Url {
        self.page("/settings/integrations")
    }

    /// One of its integrations.
    pub fn integration(&self, name: &str) -> Url {
        self.page(&format!("/settings/integrations/{}", urlencode(name)))
    }

    /// Its playbooks.
    pub fn playbooks(&self) -> Url {
        self.page("/playbooks")
    }

    /// One of its playbooks.
    pub fn playbook(&self, id: i64) -> Url {
        self.page(&format!("/playbooks/{id}"))
    }

    /// One run of a playbook.
    pub fn playbook_run(&self, id: i64) -> Url {
        self.page(&format!("/playbooks/runs/{id}"))
    }
}

/// The administration's pages (platform admins).
pub mod admin {
    use super::{urlencode, Url};

    /// The workspaces, and the templates to make them from.
    pub fn workspaces() -> Url {
        Url::path("/admin/workspaces".into())
    }

    /// The plugins.
    pub fn plugins() -> Url {
        Url::path("/admin/plugins".into())
    }

    /// Verifying every audit chain, and their checkpoints.
    pub fn audit_verify() -> Url {
        Url::path("/admin/audit/verify".into())
    }

    /// One periodic task and its runs.
    pub fn task(name: &str) -> Url {
        Url::path(format!("/admin/tasks/{}", urlencode(name)))
    }
}

/// The signed-in person's profile.
pub fn profile() -> Url {
    Url::path("/settings/profile".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_added_to_the_query() {
        let acme = Workspace("acme");
        assert_eq!(
            &*acme.roles().done("created"),
            "/w/acme/settings/roles?done=created"
        );
        assert_eq!(
            &*acme.integration("ops/alerts").done("saved"),
            "/w/acme/settings/integrations/ops%2Falerts?done=saved"
        );
        assert_eq!(
            &*admin::workspaces().done("created").about("a&b"),
            "/admin/workspaces?done=created&about=a%26b"
        );
        assert_eq!(
            &*admin::task("digest").with("ran", "7"),
            "/admin/tasks/digest?ran=7"
        );
    }
}
