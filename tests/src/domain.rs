//! The server's state without a server, for tests of the domain layer: a
//! real store on a fresh database, the real reference plugins loaded from
//! their `.so` files, and callers made the way users are (a platform admin
//! from `create-admin`, members through accepted invites).

use std::sync::Arc;
use std::time::Duration;

use tempfile::TempDir;
use vigilo_host::config::Config;
use vigilo_host::domain::authz::{Access, Caller, Permission};
use vigilo_host::domain::invites::{self, Acceptance, NewInvite};
use vigilo_host::domain::workspaces::{self, NewWorkspace};
use vigilo_host::plugins::{load_file, Plugins};
use vigilo_host::state::AppState;

use crate::plugins::reference_plugin;
use crate::TestDb;

/// A store, the reference plugins and a platform admin. The database
/// outlives it: create the [`TestDb`] outside the runtime the world runs on
/// (dropping a PostgreSQL test database needs a runtime of its own).
pub struct World {
    /// The state every domain function takes.
    pub state: AppState,
    /// The platform admin `admin@example.com`.
    pub admin: Caller,
    _data: TempDir,
}

impl World {
    /// Opens a fresh store on `db`, loads the two reference plugins and
    /// creates the platform admin.
    pub async fn new(db: &TestDb) -> Self {
        let data = TempDir::new().expect("tempdir");
        let config = Config {
            data_dir: data.path().to_path_buf(),
            database_url: db.url.clone(),
            database_max_connections: 4,
            ..Config::default()
        };
        let store = vigilo_host::open_store(&config).await.expect("store");
        let signer = Arc::new(
            vigilo_host::audit::checkpoint::Signer::load_or_create(
                &config.effective_audit_signing_key(),
            )
            .expect("signer"),
        );
        let secrets = Arc::new(
            vigilo_host::secretbox::SecretBox::load_or_create(&config.effective_secrets_key())
                .expect("secrets key"),
        );
        let plugins = Arc::new(Plugins::new(
            vigilo_host::VIGILO_VERSION,
            Duration::from_secs(5),
            3,
            None,
        ));
        for name in ["datepicker_with_holidays", "kanban_overview"] {
            let entry = plugins.add(load_file(
                &reference_plugin(name),
                vigilo_host::VIGILO_VERSION,
            ));
            assert!(
                entry.is_loaded(),
                "{name} did not load: {:?}",
                entry.message()
            );
        }
        let state = AppState::assemble(vigilo_host::domain::Context::new(
            config,
            store.clone(),
            plugins,
            signer,
            secrets,
            "http://vigilo.test".into(),
        ));
        let token =
            vigilo_host::domain::tokens::create_admin(&store, "admin@example.com", Some("Admin"))
                .await
                .expect("create admin");
        let (admin, _) = vigilo_host::domain::tokens::authenticate(&store, &token.token)
            .await
            .expect("the admin's token works");
        World {
            state,
            admin,
            _data: data,
        }
    }

    /// Creates workspace `slug` as the admin.
    pub async fn workspace(&self, slug: &str) {
        workspaces::create(
            &self.state,
            &self.admin,
            &NewWorkspace {
                name: slug.to_uppercase(),
                slug: slug.into(),
                region: "us".into(),
                template: None,
            },
        )
        .await
        .expect("create workspace");
    }

    /// The admin's access to `slug`.
    pub async fn admin_in(&self, slug: &str) -> Access {
        self.admin
            .access(&self.state.store, slug)
            .await
            .expect("admin access")
    }

    /// A new member of `slug` with built-in `role`, invited by the admin
    /// and accepted; returns their access there.
    pub async fn member(&self, slug: &str, email: &str, role: &str) -> Access {
        let created = invites::create(
            &self.state,
            &self.admin_in(slug).await,
            &NewInvite {
                email: email.into(),
                role: Some(role.into()),
                custom_role: None,
            },
        )
        .await
        .expect("invite");
        let accepted = invites::accept(
            &self.state,
            None,
            &Acceptance {
                token: created.accept_token,
                name: email.split('@').next().unwrap_or("someone").into(),
                password: None,
                first_token: true,
            },
        )
        .await
        .expect("accept");
        let caller = Caller {
            user: accepted.user,
            token_id: None,
            session_id: None,
            plugin: None,
        };
        caller
            .workspace(&self.state.store, slug, Permission::WorkspaceRead)
            .await
            .expect("member access")
    }
}

/// Runs `f` on a thread of its own: the test database's direct statements
/// bring their own runtime, which may not start inside the test's.
pub fn outside<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|scope| scope.spawn(f).join().expect("the statement ran"))
}
