//! `vigilo cert ...`: the certificate inventory.

use std::path::PathBuf;

use anyhow::Result;
use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::{exit, workspace_path, Failure};
use crate::context::Ctx;
use crate::output::{self, field, list, text, Table};

/// `vigilo cert ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum CertCmd {
    /// Upload a certificate or a chain (PEM, leaf first)
    Add {
        /// The PEM file
        #[arg(long, value_name = "FILE")]
        pem: PathBuf,
        /// Display name (default: the certificate's common name)
        #[arg(long)]
        name: Option<String>,
    },
    /// List certificates, soonest expiry first
    List {
        /// Only those expiring within DAYS (expired ones included)
        #[arg(long, value_name = "DAYS")]
        expiring_within: Option<u32>,
        /// Exit with status 10 when anything is listed (for cron alerts)
        #[arg(long)]
        fail_if_any: bool,
    },
    /// Show one certificate with its PEM text
    Show { id: i64 },
    /// Remove a certificate from the inventory
    Remove { id: i64 },
}

/// `12 days`, `today`, or `EXPIRED 3 days ago`.
fn expiry(cert: &Value) -> String {
    let days = field(cert, "days_left").as_i64().unwrap_or(0);
    if field(cert, "expired").as_bool().unwrap_or(false) {
        match -days - 1 {
            ago if ago <= 0 => "EXPIRED today".to_owned(),
            1 => "EXPIRED 1 day ago".to_owned(),
            ago => format!("EXPIRED {ago} days ago"),
        }
    } else if days == 1 {
        "1 day".to_owned()
    } else {
        format!("{days} days")
    }
}

/// Run one `vigilo cert` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: CertCmd) -> Result<u8> {
    let client = ctx.client()?;
    let slug = ctx.workspace()?;
    let base = format!("{}/certificates", workspace_path(slug));
    match cmd {
        CertCmd::Add { pem, name } => {
            let text_pem = std::fs::read_to_string(&pem).map_err(|e| {
                Failure::new(
                    exit::UNEXPECTED,
                    format!("cannot read {}: {e}", pem.display()),
                )
            })?;
            let cert = client.create(&base, &json!({"pem": text_pem, "name": name}))?;
            if ctx.json {
                return output::json(&cert).map(|()| exit::OK);
            }
            output::line(format!(
                "Added certificate {} ({}), id {}, expires {} ({}).",
                text(&cert, "name"),
                text(&cert, "subject"),
                text(&cert, "id"),
                text(&cert, "not_after"),
                expiry(&cert)
            ))?;
        }
        CertCmd::List {
            expiring_within,
            fail_if_any,
        } => {
            let path = match expiring_within {
                Some(days) => format!("{base}?expiring_within={days}"),
                None => base.clone(),
            };
            let response = client.get(&path)?;
            let certs = list(&response, "certificates")?;
            let mut table = Table::new(&["id", "name", "expires", "left", "subject", "sans"]);
            for c in certs {
                table.row(vec![
                    text(c, "id"),
                    text(c, "name"),
                    text(c, "not_after"),
                    expiry(c),
                    text(c, "subject"),
                    text(c, "sans"),
                ]);
            }
            output::list_or_table(ctx.json, certs, &table)?;
            if fail_if_any && !certs.is_empty() {
                return Ok(exit::CERTIFICATES_MATCHED);
            }
        }
        CertCmd::Show { id } => {
            let cert = client.get(&format!("{base}/{id}"))?;
            if ctx.json {
                return output::json(&cert).map(|()| exit::OK);
            }
            output::key_values(&[
                ("id", text(&cert, "id")),
                ("name", text(&cert, "name")),
                ("subject", text(&cert, "subject")),
                ("issuer", text(&cert, "issuer")),
                ("serial", text(&cert, "serial")),
                ("sans", text(&cert, "sans")),
                ("not before", text(&cert, "not_before")),
                ("not after", text(&cert, "not_after")),
                ("left", expiry(&cert)),
                ("sha256", text(&cert, "fingerprint_sha256")),
                ("chain", text(&cert, "chain_length")),
            ])?;
            output::emit(&text(&cert, "pem"))?;
        }
        CertCmd::Remove { id } => {
            client.delete(&format!("{base}/{id}"))?;
            if ctx.json {
                return output::json(&json!({"removed": id})).map(|()| exit::OK);
            }
            output::line(format!("Removed certificate {id} from workspace {slug}."))?;
        }
    }
    Ok(exit::OK)
}
