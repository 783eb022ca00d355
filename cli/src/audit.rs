//! `vigilo audit`: list, tail (follow), verify, checkpoints.
//!
//! `verify` remembers, per server and chain, the last head it found intact
//! (in `~/.vigilo/audit-witness.json`) and reports tampering when the
//! server's chain no longer contains that head, even if the database was
//! rewritten consistently and its checkpoints deleted.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, Result};
use clap::Subcommand;
use serde_json::{json, Value};

use crate::client::{exit, exit_code, query, workspace_path, Client, Failure};
use crate::context::Ctx;
use crate::output::{self, field, list, text, when, Table};

/// `vigilo audit ...`: its subcommands and their arguments.
#[derive(Subcommand)]
pub enum AuditCmd {
    /// List audit events of the active workspace
    List {
        /// Only events with a sequence number greater than SEQ
        #[arg(long, value_name = "SEQ")]
        after: Option<u64>,
        /// Maximum number of events
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
    },
    /// Print recent events, then follow new ones until interrupted
    Tail {
        /// Every chain, the installation's and every workspace's (platform admins)
        #[arg(long)]
        all: bool,
        /// Only matching events: action=, actor= or target=; a trailing * matches
        /// a prefix (action=member.*); several filters must all match
        #[arg(long, value_name = "KEY=VALUE")]
        filter: Vec<String>,
        /// Start at this time: RFC 3339, or a duration ago such as 30m, 2h, 7d
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// How many recent events to start with (without --since)
        #[arg(long, value_name = "N", default_value_t = 20)]
        recent: u32,
        /// Print what is there now and exit instead of following
        #[arg(long)]
        no_follow: bool,
    },
    /// Verify the active workspace's chain (or every chain with --all)
    #[command(after_help = VERIFY_EXIT)]
    Verify {
        /// Every chain (platform admins)
        #[arg(long)]
        all: bool,
        /// Re-read whole chains instead of starting at the newest good checkpoint
        #[arg(long)]
        full: bool,
    },
    /// Sign the head of the active workspace's chain now (every chain with --all)
    Checkpoint {
        /// Every chain (platform admins)
        #[arg(long)]
        all: bool,
    },
    /// Export signed checkpoints with the public key, for independent checking
    Checkpoints {
        /// Every chain (platform admins)
        #[arg(long)]
        all: bool,
    },
    /// Print the public key that signs checkpoints
    PublicKey,
}

/// The exit codes of `vigilo audit verify`, shown in its help.
const VERIFY_EXIT: &str = "\
Exit codes for cron:
  0  every chain verified is intact
  9  tampering found: at least one break, or a chain no longer contains the
     head this machine verified last
  (3, 4, 7 and the other codes of `vigilo --help` when verification could not run)";

/// Run one `vigilo audit` subcommand; returns the exit code.
pub fn run(ctx: &Ctx, cmd: AuditCmd) -> Result<u8> {
    let client = ctx.client()?;
    match cmd {
        AuditCmd::List { after, limit } => {
            let slug = ctx.workspace()?;
            let mut params = Vec::new();
            if let Some(after) = after {
                params.push(("after", after.to_string()));
            }
            if let Some(limit) = limit {
                params.push(("limit", limit.to_string()));
            }
            let response =
                client.get(&format!("{}/audit{}", workspace_path(slug), query(&params)))?;
            let events = list(&response, "events")?;
            let mut table = Table::new(&["seq", "time", "actor", "action", "target"]);
            for e in events {
                table.row(vec![
                    text(e, "seq"),
                    when(e, "time"),
                    text(field(e, "actor"), "label"),
                    text(e, "action"),
                    text(e, "target"),
                ]);
            }
            output::list_or_table(ctx.json, events, &table)?;
            Ok(exit::OK)
        }
        AuditCmd::Tail {
            all,
            filter,
            since,
            recent,
            no_follow,
        } => tail(
            ctx,
            &client,
            all,
            &filter,
            since.as_deref(),
            recent,
            no_follow,
        ),
        AuditCmd::Verify { all, full } => verify(ctx, &client, all, full),
        AuditCmd::Checkpoint { all } => {
            let path = if all {
                "/api/v1/audit/checkpoints".to_string()
            } else {
                format!("{}/audit/checkpoints", workspace_path(ctx.workspace()?))
            };
            let response = client.post(&path, &json!({}))?;
            print_checkpoints(ctx, &response)?;
            Ok(exit::OK)
        }
        AuditCmd::Checkpoints { all } => {
            let path = if all {
                "/api/v1/audit/checkpoints".to_string()
            } else {
                format!("{}/audit/checkpoints", workspace_path(ctx.workspace()?))
            };
            // An export: always the full JSON document.
            output::json(&client.get(&path)?)?;
            Ok(exit::OK)
        }
        AuditCmd::PublicKey => {
            let key = client.get("/api/v1/audit/public-key")?;
            if ctx.json {
                output::json(&key)?;
            } else {
                output::line(format!(
                    "{} {} (key id {})",
                    text(&key, "algorithm"),
                    text(&key, "public_key"),
                    text(&key, "key_id")
                ))?;
            }
            Ok(exit::OK)
        }
    }
}

fn print_checkpoints(ctx: &Ctx, response: &Value) -> Result<()> {
    if ctx.json {
        return output::json(response);
    }
    let mut table = Table::new(&["chain", "seq", "hash", "signed at"]);
    for cp in list(response, "checkpoints")? {
        table.row(vec![
            text(cp, "chain_id"),
            text(cp, "seq"),
            text(cp, "hash"),
            when(cp, "signed_at"),
        ]);
    }
    table.print()
}

/// Parses `key=value` filters into query parameters.
fn filter_params(filters: &[String]) -> Result<Vec<(&'static str, String)>> {
    let mut out = Vec::new();
    for f in filters {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                format!("bad filter `{f}`: use action=, actor= or target="),
            )
        })?;
        let key = match k.trim() {
            "action" => "action",
            "actor" => "actor",
            "target" => "target",
            other => {
                return Err(Failure::new(
                    exit::USAGE,
                    format!("unknown filter `{other}`: use action=, actor= or target="),
                )
                .into())
            }
        };
        if out.iter().any(|(k, _)| *k == key) {
            return Err(Failure::new(exit::USAGE, format!("filter `{key}` given twice")).into());
        }
        out.push((key, v.trim().to_string()));
    }
    Ok(out)
}

/// `--since`: RFC 3339 as is, or `<n>s|m|h|d|w` ago.
fn since_time(since: &str) -> Result<String> {
    if since.contains('T') {
        return Ok(since.to_string());
    }
    let bad = || {
        Failure::new(
            exit::USAGE,
            format!("bad --since `{since}`: use RFC 3339 or a duration such as 30m, 2h, 7d"),
        )
    };
    // The unit is the last character, whatever its width.
    let unit = since.chars().next_back().ok_or_else(bad)?;
    let n: u64 = since[..since.len() - unit.len_utf8()]
        .parse()
        .map_err(|_| bad())?;
    let scale: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        'w' => 7 * 86_400,
        _ => {
            return Err(Failure::new(
                exit::USAGE,
                format!("bad --since `{since}`: unit must be s, m, h, d or w"),
            )
            .into())
        }
    };
    let secs = n.checked_mul(scale).ok_or_else(bad)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| anyhow!("{e}"))?
        .as_secs();
    Ok(rfc3339(now.saturating_sub(secs)))
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn print_event(ctx: &Ctx, e: &Value) -> Result<()> {
    if ctx.json {
        output::line(serde_json::to_string(e)?)?;
    } else {
        let ws = e
            .get("workspace")
            .and_then(Value::as_str)
            .unwrap_or("(installation)");
        output::line(format!(
            "{}  {}  #{}  {}  {}  {}",
            when(e, "time"),
            ws,
            text(e, "seq"),
            text(field(e, "actor"), "label"),
            text(e, "action"),
            text(e, "target")
        ))?;
    }
    std::io::stdout().flush()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn tail(
    ctx: &Ctx,
    client: &Client,
    all: bool,
    filters: &[String],
    since: Option<&str>,
    recent: u32,
    no_follow: bool,
) -> Result<u8> {
    let mut params = filter_params(filters)?;
    let base = if all {
        "/api/v1/audit/events".to_string()
    } else {
        format!("{}/audit", workspace_path(ctx.workspace()?))
    };
    // The first request says where to start; later ones continue from the
    // position the server returned, so a dropped connection loses nothing.
    let mut position: Option<String> = None;
    let mut first = true;
    let mut warned = false;
    loop {
        let mut p = params.clone();
        match &position {
            Some(pos) if all => p.push(("cursor", pos.clone())),
            Some(pos) => p.push(("after", pos.clone())),
            None => match since {
                Some(s) => p.push(("since", since_time(s)?)),
                None => p.push(("recent", recent.to_string())),
            },
        }
        p.push(("limit", "500".into()));
        if !first && !no_follow {
            p.push(("wait", "25".into()));
        }
        match client.get(&format!("{base}{}", query(&p))) {
            Ok(page) => {
                if warned {
                    eprintln!("vigilo: reconnected; resuming");
                    warned = false;
                }
                for e in list(&page, "events")? {
                    print_event(ctx, e)?;
                }
                let next = if all {
                    text(&page, "cursor")
                } else {
                    text(&page, "next_after")
                };
                let caught_up =
                    list(&page, "events")?.is_empty() && position.as_deref() == Some(next.as_str());
                position = Some(next);
                if no_follow && (caught_up || !first) {
                    return Ok(exit::OK);
                }
                first = false;
            }
            Err(e) if exit_code(&e) == exit::UNAVAILABLE => {
                if !warned {
                    eprintln!("vigilo: {e:#}; retrying");
                    warned = true;
                }
                std::thread::sleep(Duration::from_secs(2));
            }
            Err(e) => return Err(e),
        }
        params = filter_params(filters)?;
    }
}

fn witness_path() -> Result<PathBuf> {
    Ok(crate::config::config_path()?.with_file_name("audit-witness.json"))
}

type Witness = BTreeMap<String, BTreeMap<String, Value>>;

fn load_witness() -> Witness {
    witness_path()
        .ok()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default()
}

fn save_witness(w: &Witness) -> Result<()> {
    let path = witness_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(w)?)?;
    std::fs::rename(&tmp, &path)?;
    Ok(())
}

/// Checks that the chain still holds the head this machine verified last.
fn check_witness(client: &Client, chain: &Value, remembered: &Value) -> Result<Option<Value>> {
    let chain_id = chain["chain_id"].as_i64().unwrap_or(0);
    let seq = remembered["seq"].as_i64().unwrap_or(0);
    let hash = remembered["hash"].as_str().unwrap_or("");
    if seq == 0 {
        return Ok(None);
    }
    let path = match chain["workspace"].as_str() {
        Some(slug) => format!(
            "{}/audit{}",
            workspace_path(slug),
            query(&[("after", (seq - 1).to_string()), ("limit", "1".into())])
        ),
        None => format!(
            "/api/v1/audit/events{}",
            query(&[
                ("cursor", format!("{chain_id}:{}", seq - 1)),
                ("limit", "1".into()),
                ("chain", chain_id.to_string())
            ])
        ),
    };
    let page = client.get(&path)?;
    let found = list(&page, "events")?
        .iter()
        .find(|e| e["chain_id"].as_i64() == Some(chain_id) && e["seq"].as_i64() == Some(seq))
        .cloned();
    Ok(match found {
        None => Some(json!({"seq": seq, "class": "truncated",
            "message": format!("this machine verified the chain up to seq {seq}, which the server no longer has")})),
        Some(e) if e["hash"].as_str() != Some(hash) => {
            Some(json!({"seq": seq, "class": "rewritten",
            "message": format!("this machine verified seq {seq} with hash {hash}; the server now has {}", text(&e, "hash"))}))
        }
        Some(_) => None,
    })
}

fn verify(ctx: &Ctx, client: &Client, all: bool, full: bool) -> Result<u8> {
    let full_q = query(&[("full", full.to_string())]);
    let from_start = if full { " from its start" } else { "" };
    let spinner = ctx.spinner(if all {
        format!("Verifying every audit chain{from_start}")
    } else {
        format!(
            "Verifying the audit chain of {}{from_start}",
            ctx.workspace()?
        )
    });
    let mut chains: Vec<Value> = if all {
        let report = client.get(&format!("/api/v1/audit/verify{full_q}"))?;
        list(&report, "chains")?.to_vec()
    } else {
        vec![client.get(&format!(
            "{}/audit/verify{full_q}",
            workspace_path(ctx.workspace()?)
        ))?]
    };
    let mut witness = load_witness();
    let server = client.base().to_string();
    let count = chains.len();
    for (done, chain) in chains.iter_mut().enumerate() {
        spinner.set_message(format!(
            "Checking chain {} of {count} against the head this machine verified last",
            done + 1
        ));
        let key = chain["chain_id"].to_string();
        if let Some(remembered) = witness.get(&server).and_then(|w| w.get(&key)).cloned() {
            if let Some(b) = check_witness(client, chain, &remembered)? {
                if let Some(list) = chain["breaks"].as_array_mut() {
                    list.push(b);
                }
                chain["intact"] = json!(false);
            }
        }
        if chain["intact"] == json!(true) && chain["head_seq"].as_i64().unwrap_or(0) > 0 {
            witness.entry(server.clone()).or_default().insert(
                key,
                json!({"seq": chain["head_seq"], "hash": chain["head_hash"]}),
            );
        }
    }
    save_witness(&witness)?;
    drop(spinner);
    let intact = chains.iter().all(|c| c["intact"] == json!(true));
    if ctx.json {
        output::json(&json!({"intact": intact, "chains": chains}))?;
    } else {
        for c in &chains {
            let name = c["workspace"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| "(installation)".into());
            let breaks = c["breaks"].as_array().cloned().unwrap_or_default();
            if breaks.is_empty() {
                output::line(format!(
                    "{name}: intact — {} events checked ({} from seq {}), head seq {}, {} checkpoints",
                    text(c, "events_checked"),
                    text(c, "mode"),
                    text(c, "from_seq"),
                    text(c, "head_seq"),
                    text(c, "checkpoints_checked")
                ))?;
            } else {
                output::line(format!("{name}: BROKEN — {} break(s)", breaks.len()))?;
                for b in &breaks {
                    output::line(format!(
                        "  seq {}  {}  {}",
                        text(b, "seq"),
                        text(b, "class"),
                        text(b, "message")
                    ))?;
                }
            }
        }
    }
    Ok(if intact { exit::OK } else { exit::TAMPERED })
}

#[cfg(test)]
mod tests {
    use super::since_time;

    #[test]
    fn since_takes_durations_and_refuses_nonsense_without_panicking() {
        assert!(since_time("2026-01-01T00:00:00Z").is_ok());
        for good in ["30s", "15m", "2h", "7d", "1w"] {
            assert!(since_time(good).unwrap().ends_with('Z'), "{good}");
        }
        for bad in [
            "",
            "3д",
            "д",
            "x7d",
            "7y",
            "99999999999999999999d",
            "18446744073709551615w",
        ] {
            assert!(since_time(bad).is_err(), "{bad}");
        }
    }
}
