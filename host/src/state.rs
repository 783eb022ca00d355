//! `AppState`: what every request handler can reach.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::audit::checkpoint::Signer;
use crate::config::Config;
use crate::integrations::Integrations;
use crate::plugins::Plugins;
use crate::store::Store;

/// Shared server state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// The configuration the server started with.
    pub config: Arc<Config>,
    /// Base URL for links sent to users, without a trailing slash.
    pub public_url: String,
    /// Woken when mail is queued, so the mailer sends it promptly.
    pub mail_queued: Arc<Notify>,
    /// Signs audit checkpoints.
    pub signer: Arc<Signer>,
    /// The plugin registry.
    pub plugins: Arc<Plugins>,
    /// Integration adapters' runtime.
    pub integrations: Integrations,
    /// The periodic task scheduler.
    pub scheduler: Arc<crate::scheduler::Scheduler>,
    /// Seals secrets kept in the database (integration settings, queued
    /// mail).
    pub secrets: Arc<crate::secretbox::SecretBox>,
    /// Becomes `true` when the server begins to shut down: long polls end
    /// at once instead of holding the process open.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

impl AppState {
    /// The state of a server over `store` and `plugins`: builds the
    /// integrations runtime and the scheduler (which the caller runs, or
    /// not: tests of the domain layer use the state without a server).
    pub fn assemble(
        config: Config,
        store: Store,
        plugins: Arc<Plugins>,
        signer: Arc<Signer>,
        secrets: Arc<crate::secretbox::SecretBox>,
        public_url: String,
    ) -> Self {
        let integrations = Integrations::new(
            store.clone(),
            plugins.clone(),
            secrets.clone(),
            crate::outbound::Policy::from_config(&config),
        );
        let scheduler = Arc::new(crate::scheduler::Scheduler::new(
            store.clone(),
            plugins.clone(),
            signer.clone(),
            integrations.clone(),
            &config,
        ));
        AppState {
            store,
            integrations,
            scheduler,
            public_url,
            config: Arc::new(config),
            mail_queued: Arc::new(Notify::new()),
            signer,
            plugins,
            secrets,
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
        }
    }

    /// Whether the server has begun to shut down.
    pub fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    /// Resolves once the server begins to shut down (at once if it has).
    pub async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|stopping| *stopping).await;
    }
}
