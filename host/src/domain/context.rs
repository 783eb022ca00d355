//! [`Context`]: what the domain's functions work with, and nothing above
//! them. The server's state holds one and hands it to every domain call;
//! the scheduler and the HTTP and web edges sit above it.

use std::sync::Arc;

use tokio::sync::{watch, Notify};

use crate::audit::checkpoint::Signer;
use crate::config::Config;
use crate::integrations::Integrations;
use crate::plugins::Plugins;
use crate::secretbox::SecretBox;
use crate::store::Store;

/// The store, the plugins, the integrations runtime, the secrets, the
/// checkpoint signer, the mail queue's bell and the settings the rules
/// read. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Context {
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
    /// Seals secrets kept in the database (integration settings, queued
    /// mail).
    pub secrets: Arc<SecretBox>,
    /// Becomes `true` when the server begins to shut down: long polls end
    /// at once instead of holding the process open.
    pub stopping: Arc<watch::Sender<bool>>,
}

impl Context {
    /// The context over `store` and `plugins`, with the integrations
    /// runtime built from them.
    pub fn new(
        config: Config,
        store: Store,
        plugins: Arc<Plugins>,
        signer: Arc<Signer>,
        secrets: Arc<SecretBox>,
        public_url: String,
    ) -> Self {
        let integrations = Integrations::new(
            store.clone(),
            plugins.clone(),
            secrets.clone(),
            crate::outbound::Policy::from_config(&config),
        );
        Context {
            store,
            integrations,
            public_url,
            config: Arc::new(config),
            mail_queued: Arc::new(Notify::new()),
            signer,
            plugins,
            secrets,
            stopping: Arc::new(watch::channel(false).0),
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
