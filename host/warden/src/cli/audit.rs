//! `warden audit tail|query|export|verify|checkpoint|prune`, and [`record`], which the
//! management commands call to put what they did on record.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Subcommand;
use warden::audit::{
    self, Audit, AuditOptions, Checkpoint, Durability, Event, Filter, Outcome, Record,
};
use warden::exit;
use warden::grant::Grant;
use warden::home::Home;

use super::{CliResult, Failure};

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Show the newest records.
    Tail {
        /// Keep showing records as they are written.
        #[arg(short, long)]
        follow: bool,
        /// How many records.
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: usize,
        /// One JSON record a line.
        #[arg(long)]
        json: bool,
    },
    /// Show the records that match every filter given.
    Query {
        /// Only this plugin.
        #[arg(long)]
        plugin: Option<String>,
        /// Only this tool.
        #[arg(long)]
        tool: Option<String>,
        /// Only this kind: tool.call, capability.denied, plugin.add, grant.set, …
        #[arg(long)]
        kind: Option<String>,
        /// Only this principal, e.g. local:alice.
        #[arg(long)]
        principal: Option<String>,
        /// Only this outcome: ok, error or denied.
        #[arg(long)]
        outcome: Option<Outcome>,
        /// At or after this time (2026-11-26, 2026-11-26T10:00:00Z, or an age: 2h, 7d).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Before this time (same forms as --since).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// One JSON record a line.
        #[arg(long)]
        json: bool,
    },
    /// Write every record as JSON Lines, with its hashes (verify it with `verify --file`).
    Export {
        /// Write here instead of stdout (refuses to overwrite).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Recompute the hash chain; exit 0 and a count when intact, exit 1 and the first
    /// bad record otherwise.
    Verify {
        /// Verify an export (JSON Lines) instead of the home's log.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Also prove the log still holds the record this checkpoint signed (catches a
        /// truncated tail).
        #[arg(long, value_name = "FILE")]
        checkpoint: Option<PathBuf>,
    },
    /// Print the newest signed checkpoint as JSON (signing one of the head first if the
    /// chain verifies and the newest is older); keep it to check the log later.
    Checkpoint,
    /// Remove the records written before DATE, leaving an anchor so the rest verifies.
    Prune {
        /// e.g. 2026-01-01, or an age: 90d.
        #[arg(long, value_name = "DATE")]
        before: String,
    },
    /// Count records by kind, outcome and plugin/tool (calls, errors, denials) over a
    /// period; show the chain's head and the latest checkpoint.
    Stats {
        /// At or after this time (2026-11-26, 2026-11-26T10:00:00Z, or an age: 2h, 7d).
        #[arg(long, value_name = "TIME")]
        since: Option<String>,
        /// Before this time (same forms as --since).
        #[arg(long, value_name = "TIME")]
        until: Option<String>,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Calls PLUGIN/TOOL again and again from several tasks, with the arguments
    /// `{"text": "TEXT <n>"}`, and prints `<n>` once call n returned (so once its
    /// records are on disk). For the crash test (host/warden/tests/all/audit_crash.rs), which
    /// kills it with SIGKILL; not for users.
    #[command(hide = true)]
    CallLoop {
        /// PLUGIN/TOOL, taking a `text` argument.
        tool: String,
        /// The start of each call's text.
        #[arg(long, default_value = "call")]
        text: String,
        /// Concurrent callers.
        #[arg(long, default_value_t = 8)]
        callers: u64,
        /// Stop after this many calls (default: run until killed).
        #[arg(long)]
        count: Option<u64>,
    },
}

/// Opens the home's log for a management command, before it acts: a log that cannot
/// be written stops the command rather than let it act off the record.
/// What records keep comes from `[audit]` in the home's `warden.toml`, overridden by
/// `WARDEN_AUDIT_KEEP_PAYLOADS` and `WARDEN_AUDIT_DURABILITY`; unset, each record is
/// synced before the command goes on.
pub(crate) fn open_log(home: &Home) -> CliResult<Audit> {
    open_log_for(home, Durability::Full)
}

/// [`open_log`], with `default` as the durability where neither the file nor the
/// environment sets one.
pub(crate) fn open_log_for(home: &Home, default: Durability) -> CliResult<Audit> {
    let config = super::settings::load(home)?;
    let options = config.audit_options(default).map_err(Failure::usage)?;
    Ok(super::settings::storage(home)?.audit(home.root(), options)?)
}

fn write(audit: &Audit, event: Event) -> CliResult<Record> {
    Ok(warden::changes::write_blocking(audit, event)?)
}

/// `plugin.add` (or `plugin.replace`, with the old digest) for an installed plugin.
pub(crate) fn plugin_added(
    audit: &Audit,
    old_digest: Option<&str>,
    meta: &warden::home::InstalledMeta,
    grant: Option<&Grant>,
) -> CliResult<Record> {
    let event = warden::changes::plugin_added(&principal(), old_digest, meta, grant);
    write(audit, event)
}

/// A refused `plugin.add` / `plugin.replace` (outcome `error`, with the reason).
pub(crate) fn plugin_refused(
    audit: &Audit,
    name: &str,
    old_digest: Option<&str>,
    digest: &str,
    error: &str,
) -> CliResult<Record> {
    write(
        audit,
        warden::changes::plugin_refused(&principal(), name, old_digest, digest, error),
    )
}

/// `plugin.remove` with the removed component's digest.
pub(crate) fn plugin_removed(audit: &Audit, name: &str, digest: &str) -> CliResult<Record> {
    write(
        audit,
        warden::changes::plugin_removed(&principal(), name, digest),
    )
}

/// `grant.set` with the old grant (none: `null`) and the new one, as TOML, with their
/// SHA-256.
pub(crate) fn grant_set(
    audit: &Audit,
    name: &str,
    old: Option<String>,
    new: &Grant,
) -> CliResult<Record> {
    write(
        audit,
        warden::changes::grant_set(&principal(), name, old, new),
    )
}

/// The principal of CLI actions: `local:<user>`.
fn principal() -> String {
    warden::config::env::local_principal()
}

/// Opens an existing log for reading.
fn open_existing(home: &Home) -> CliResult<Audit> {
    let storage = super::settings::storage(home)?;
    if storage.pool().is_some() {
        return Ok(storage.audit(home.root(), AuditOptions::default())?);
    }
    let path = home.root().join(audit::sqlite::FILE_NAME);
    if !path.is_file() {
        return Err(Failure::usage(anyhow::anyhow!(
            "no audit log at {} (records are written by `warden plugin add|remove`, `warden grant set` and tool calls; check --home)",
            path.display()
        )));
    }
    Ok(Audit::open(home.root(), AuditOptions::default())?)
}

/// Prints records; `false` once stdout is closed.
fn print(records: &[Record], json: bool) -> CliResult<bool> {
    let mut out = std::io::stdout().lock();
    for r in records {
        let line = if json {
            serde_json::to_string(r)?
        } else {
            r.line()
        };
        if writeln!(out, "{line}").is_err() {
            // A closed pipe (`| head`): stop quietly.
            return Ok(false);
        }
    }
    Ok(out.flush().is_ok())
}

pub(crate) async fn run(home: &Home, cmd: AuditCommand) -> CliResult {
    match cmd {
        AuditCommand::Tail {
            follow,
            lines,
            json,
        } => {
            let audit = open_existing(home)?;
            let records = audit.read(Filter {
                limit: Some(lines),
                newest: true,
                ..Filter::default()
            })?;
            if print(&records, json)? && follow {
                let mut after = records.last().map_or(0, |r| r.seq);
                loop {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                    let more = audit.read(Filter {
                        after_seq: Some(after),
                        ..Filter::default()
                    })?;
                    if let Some(last) = more.last() {
                        after = last.seq;
                    }
                    if !print(&more, json)? {
                        break;
                    }
                }
            }
            Ok(())
        }
        AuditCommand::Query {
            plugin,
            tool,
            kind,
            principal,
            outcome,
            since,
            until,
            json,
        } => {
            let bound = |t: Option<String>| {
                t.map(|t| audit::time::parse_bound(&t))
                    .transpose()
                    .map_err(Failure::usage)
            };
            let filter = Filter {
                plugin,
                tool,
                kind,
                principal,
                outcome,
                since: bound(since)?,
                until: bound(until)?,
                ..Filter::default()
            };
            let audit = open_existing(home)?;
            print(&audit.read(filter)?, json)?;
            Ok(())
        }
        AuditCommand::Export { out } => {
            let audit = open_existing(home)?;
            let count = match &out {
                None => audit.export(&mut std::io::stdout().lock())?,
                Some(path) => {
                    let file = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(path)
                        .map_err(|err| {
                            Failure::usage(anyhow::anyhow!(
                                "writing {}: {err} (choose another --out, or remove the file)",
                                path.display()
                            ))
                        })?;
                    let mut writer = std::io::BufWriter::new(file);
                    let count = audit.export(&mut writer)?;
                    writer
                        .into_inner()
                        .map_err(|e| e.into_error())?
                        .sync_all()?;
                    count
                }
            };
            if let Some(path) = out {
                eprintln!("exported {count} records to {}", path.display());
            }
            Ok(())
        }
        AuditCommand::Verify { file, checkpoint } => {
            verify(home, file.as_deref(), checkpoint.as_deref())
        }
        AuditCommand::Checkpoint => {
            let audit = open_existing(home)?;
            let latest = audit.latest_checkpoint()?;
            let head = audit.head()?;
            let current = match (&latest, &head) {
                (Some(c), Some(h)) => c.seq == h.seq && c.hash == h.hash,
                (_, None) => true,
                (None, Some(_)) => false,
            };
            let checkpoint = if current {
                latest
            } else {
                // Sign only a head whose chain holds.
                let report = audit.verify()?;
                if let Some(problem) = report.problem {
                    return Err(Failure {
                        code: exit::TOOL_FAILED,
                        error: anyhow::anyhow!(
                            "not signing a checkpoint: the chain is broken at {problem}"
                        ),
                    });
                }
                audit.checkpoint()?
            };
            match checkpoint {
                Some(c) => println!("{}", serde_json::to_string_pretty(&c)?),
                None => {
                    return Err(Failure::usage(anyhow::anyhow!(
                        "the audit log in {} is empty: there is nothing to sign yet",
                        home.root().display()
                    )));
                }
            }
            Ok(())
        }
        AuditCommand::Stats { since, until, json } => {
            let bound = |t: Option<String>| {
                t.map(|t| audit::time::parse_bound(&t))
                    .transpose()
                    .map_err(Failure::usage)
            };
            let (since, until) = (bound(since)?, bound(until)?);
            let audit = open_existing(home)?;
            let stats = audit.stats(since.clone(), until.clone())?;
            let head = audit.head()?;
            let checkpoint = audit.latest_checkpoint()?;
            if json {
                let doc = serde_json::json!({
                    "since": since,
                    "until": until,
                    "records": stats.records,
                    "first": stats.first,
                    "last": stats.last,
                    "kinds": stats.kinds,
                    "outcomes": stats.outcomes,
                    "tools": stats.tools,
                    "head": head.map(|h| serde_json::json!({"seq": h.seq, "hash": h.hash})),
                    "checkpoint": checkpoint.map(|c| serde_json::json!({"seq": c.seq, "hash": c.hash, "time": c.time})),
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
            } else {
                print_stats(&stats, head.as_ref(), checkpoint.as_ref());
            }
            Ok(())
        }
        AuditCommand::CallLoop {
            tool,
            text,
            callers,
            count,
        } => call_loop(home, &tool, &text, callers, count).await,
        AuditCommand::Prune { before } => {
            let bound = audit::time::parse_bound(&before).map_err(Failure::usage)?;
            let audit = open_existing(home)?;
            match audit.prune(&bound, &principal())? {
                None => println!("no records before {bound}: nothing pruned"),
                Some((anchor, record)) => println!(
                    "pruned records up to {} (written before {bound}); anchor record {} keeps the rest verifiable",
                    anchor.seq, record.seq
                ),
            }
            Ok(())
        }
    }
}

fn verify(home: &Home, file: Option<&Path>, checkpoint: Option<&Path>) -> CliResult {
    let checkpoint: Option<Checkpoint> = checkpoint
        .map(Checkpoint::read)
        .transpose()
        .map_err(Failure::usage)?;
    let (what, report, checked) = match file {
        Some(path) => {
            // A checkpoint must be signed by this home's key when it has one.
            let key = audit::checkpoint::home_public_key(home.root())?;
            let (report, checked) =
                audit::verify_file_trusting(path, checkpoint.as_ref(), key.as_deref())
                    .map_err(Failure::usage)?;
            (path.display().to_string(), report, checked)
        }
        None => {
            let audit = open_existing(home)?;
            let report = audit.verify()?;
            let checked = match &checkpoint {
                Some(c) => Some(audit.check_checkpoint(c)?),
                None => None,
            };
            (
                home.root()
                    .join(audit::sqlite::FILE_NAME)
                    .display()
                    .to_string(),
                report,
                checked,
            )
        }
    };
    let broken = |problem: audit::Problem| Failure {
        code: exit::TOOL_FAILED,
        error: anyhow::anyhow!(
            "audit log {what}: {problem}; the records before it verify ({} checked); keep this copy for investigation",
            report.count
        ),
    };
    if let Some(problem) = report.problem.clone() {
        return Err(broken(problem));
    }
    if let Some(Err(problem)) = checked.clone() {
        return Err(broken(problem));
    }
    match (&report.head, report.first) {
        (Some(head), Some(first)) => {
            let pruned = report
                .anchor
                .as_ref()
                .map(|(seq, _)| format!(", after a prune anchor at record {seq}"))
                .unwrap_or_default();
            println!(
                "ok: {} records intact ({first}..={}{pruned}), head {}",
                report.count, head.seq, head.hash
            );
        }
        _ => println!("ok: 0 records (the log is empty)"),
    }
    if let Some(Ok(note)) = checked {
        println!("ok: {note}");
    }
    warn_of_times(&what, &report);
    Ok(())
}

/// Says on stderr which records are dated back in time: warnings, as the chain (by
/// sequence numbers) holds and clocks do step back.
fn warn_of_times(what: &str, report: &audit::Report) {
    for warning in &report.time_warnings {
        eprintln!("warning: audit log {what}: {warning}");
    }
    let more = report.time_warnings_total - report.time_warnings.len() as u64;
    if more > 0 {
        eprintln!("warning: audit log {what}: {more} more records dated back in time");
    }
    if report.time_warnings_total > 0 {
        eprintln!(
            "note: a record dated up to {} ms before one ahead of it is not flagged (a clock correction); check the host's clock, and who could write records, for the ones above",
            audit::CLOCK_TOLERANCE_MS
        );
    }
}

fn print_stats(stats: &audit::Stats, head: Option<&audit::Head>, checkpoint: Option<&Checkpoint>) {
    let counts = |map: &std::collections::BTreeMap<String, u64>| {
        let mut pairs: Vec<(&String, &u64)> = map.iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let text: Vec<String> = pairs.iter().map(|(k, n)| format!("{k} {n}")).collect();
        if text.is_empty() {
            "-".to_string()
        } else {
            text.join(", ")
        }
    };
    match (&stats.first, &stats.last) {
        (Some(first), Some(last)) => {
            println!("{:<12}{} ({first} .. {last})", "records", stats.records);
        }
        _ => println!("{:<12}{}", "records", stats.records),
    }
    match head {
        Some(h) => println!("{:<12}record {}, {}", "head", h.seq, h.hash),
        None => println!("{:<12}none (the log is empty)", "head"),
    }
    match checkpoint {
        Some(c) => println!("{:<12}record {}, signed {}", "checkpoint", c.seq, c.time),
        None => println!("{:<12}none", "checkpoint"),
    }
    println!("{:<12}{}", "kinds", counts(&stats.kinds));
    println!("{:<12}{}", "outcomes", counts(&stats.outcomes));
    if stats.tools.is_empty() {
        return;
    }
    let name = |t: &audit::ToolStats| match (&t.plugin, &t.tool) {
        (Some(p), Some(t)) => format!("{p}/{t}"),
        (Some(p), None) => p.clone(),
        (None, Some(t)) => t.clone(),
        (None, None) => "-".into(),
    };
    let width = stats
        .tools
        .iter()
        .map(|t| name(t).len())
        .max()
        .unwrap_or(0)
        .max("plugin/tool".len());
    println!();
    println!(
        "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}",
        "plugin/tool", "records", "calls", "ok", "errors", "denied"
    );
    for t in &stats.tools {
        println!(
            "{:<width$}  {:>8}  {:>8}  {:>8}  {:>8}  {:>8}",
            name(t),
            t.records,
            t.calls,
            t.ok,
            t.errors,
            t.denied
        );
    }
}

/// The hidden `audit call-loop`: see [`AuditCommand::CallLoop`].
async fn call_loop(
    home: &Home,
    tool: &str,
    text: &str,
    callers: u64,
    count: Option<u64>,
) -> CliResult {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let (plugin_name, tool) = super::call::split_tool_id(tool)?;
    let installed = home.read(plugin_name).map_err(Failure::usage)?;
    let (runtime, cache) = super::open(home)?;
    let plugin = Arc::new(installed.load(&runtime, Some(&cache))?);
    let runtime = Arc::new(runtime);
    let next = Arc::new(AtomicU64::new(1));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..callers.max(1) {
        let (runtime, plugin, next) = (runtime.clone(), plugin.clone(), next.clone());
        let (tool, text) = (tool.to_string(), text.to_string());
        tasks.spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if count.is_some_and(|count| n > count) {
                    return Ok::<(), anyhow::Error>(());
                }
                let args = serde_json::json!({ "text": format!("{text} {n}") });
                runtime.call(&plugin, &tool, &args).await?;
                // The call returned: its records are durable. Acknowledge it.
                let mut out = std::io::stdout().lock();
                writeln!(out, "{n}")?;
                out.flush()?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a caller task")??;
    }
    Ok(())
}
