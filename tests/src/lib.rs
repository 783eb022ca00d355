//! Test support for Vigilo's end-to-end suite: fresh databases (an SQLite
//! file, or a new PostgreSQL database per test when
//! `VIGILO_TEST_POSTGRES_URL` is set), a real server bound to `127.0.0.1:0`,
//! an HTTP client, and the real `vigilo` and `vigilo-server` binaries.

mod api;
pub mod audit;
pub mod browser;
pub mod capture;
mod cli;
mod database;
pub mod domain;
pub mod json;
pub mod plugins;
pub mod process;
mod server;
pub mod smtp;
mod web;

pub use api::{expect, Api, Response};
pub use cli::{bin_dir, cargo_bin, Cli, CliOutput};
pub use database::{block_on, Backend, TestDb, POSTGRES_ENV};
pub use server::{plugin_isolation, wait_healthy, TestServer, ISOLATION_ENV};
pub use web::{set_cookie, SignInForm, WebSession};
