//! The closed sets of words Vigilo's data is made of (roles and their
//! permissions, the kinds and statuses of work items and their workflows):
//! every layer (the store, the domain, the edges, the plugin host) speaks
//! them, so they sit below all of them. Each is an enum, parsed once where
//! a word comes in; its wire name is the word it always was.

pub mod field_types;
pub mod roles;
pub mod words;
pub mod workflow;
