//! The closed sets of words Vigilo's data is made of (roles and their
//! permissions, the work item workflows): every layer (the store, the
//! domain, the edges, the plugin host) speaks them, so they sit below all
//! of them.

pub mod roles;
pub mod workflow;
