//! `AppState`: what every request handler can reach — the domain's
//! [`Context`] (which it dereferences to, so a handler hands `&state` to a
//! domain function) and the scheduler.

use std::ops::Deref;
use std::sync::Arc;

use crate::domain::Context;
use crate::plugins::Plugins;
use crate::scheduler::Scheduler;
use crate::store::Store;

/// Shared server state. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    /// What the domain's functions work with.
    pub domain: Context,
    /// The periodic task scheduler.
    pub scheduler: Arc<Scheduler>,
}

impl Deref for AppState {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.domain
    }
}

impl AppState {
    /// The state of a server over the domain's context: plugins'
    /// work-item calls go through the domain's rules, and the scheduler is
    /// built (the caller runs it, or not: tests of the domain layer use the
    /// state without a server).
    pub fn assemble(domain: Context) -> Self {
        domain.integrations.attach_workplace(Arc::new(
            crate::domain::plugin_calls::DomainWork::new(
                domain.store.clone(),
                domain.plugins.clone(),
            ),
        ));
        let scheduler = Arc::new(Scheduler::new(
            domain.store.clone(),
            domain.plugins.clone(),
            domain.signer.clone(),
            domain.integrations.clone(),
            &domain.config,
        ));
        AppState { domain, scheduler }
    }
}

impl crate::domain::Reach for AppState {
    fn store(&self) -> &Store {
        &self.domain.store
    }

    fn plugins(&self) -> &Arc<Plugins> {
        &self.domain.plugins
    }
}
