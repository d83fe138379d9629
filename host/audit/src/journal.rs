//! The journal: with [`Durability::Process`](super::Durability::Process) on a store
//! that keeps one (the embedded SQLite store: `<home>/audit.journal`), a caller writes
//! its events here itself, one line each and one `write` for all of a call's, before
//! its answer. A killed process loses nothing from that moment: the lines are in the
//! operating system's hands. The caller does not wait for the writer thread; the writer
//! takes the journaled events within [`LINGER`], chains them and commits them to the
//! store with a [`JournalMark`] of the last line, in one transaction, and syncs the store
//! within [`Durability::SYNC_WITHIN`](super::Durability::SYNC_WITHIN) of the first
//! event's line (so a power cut loses at most that window, as before). Once no line
//! waits, it empties the file.
//!
//! One process owns the journal at a time (an exclusive `flock` held while it lives);
//! another process that opens the log meanwhile appends through its writer as before.
//! A writer that opens the log and can take the lock of a journal with lines in it (its
//! owner died) commits the lines past the store's mark, with their own times, before
//! anything else, then empties it.
//!
//! A line is a JSON object: `g` (the owner's generation, random), `n` (from 1), `time`,
//! and the event's `kind`, `principal`, `plugin`, `tool`, `outcome` and `fields`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{FileExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::error::AuditError;
use super::record::{Event, Outcome};
use super::writer::AppendReply;

/// The file name of the journal, beside `audit.db`.
pub const FILE_NAME: &str = "audit.journal";

/// How long the writer, woken by the first journaled event, lets more gather before it
/// commits them together.
pub const LINGER: Duration = Duration::from_millis(2);

/// A journal this long, with lines still waiting, is rewritten with just those (lines
/// are otherwise dropped only when none waits).
const COMPACT_AT: u64 = 1 << 20;

/// The newest journal line a store holds: stored in the same transaction as the
/// records made of the lines, so that a recovery commits none twice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalMark {
    /// The generation of the journal that wrote it.
    pub generation: String,
    /// Its line number.
    pub line: u64,
}

/// A journaled event, waiting for the writer.
pub(crate) struct Journaled {
    /// Its line number.
    pub line: u64,
    /// When it was journaled: its record's time.
    pub time: String,
    pub event: Event,
    /// For a caller that waits for the record itself ([`super::Audit::append`]).
    pub reply: Option<AppendReply>,
}

#[derive(Serialize)]
struct LineOut<'a> {
    g: &'a str,
    n: u64,
    time: &'a str,
    kind: &'a str,
    principal: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plugin: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    fields: &'a Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn {
    g: String,
    n: u64,
    time: String,
    kind: String,
    principal: String,
    #[serde(default)]
    plugin: Option<String>,
    #[serde(default)]
    tool: Option<String>,
    #[serde(default)]
    outcome: Option<Outcome>,
    fields: Map<String, Value>,
}

fn encode(out: &mut Vec<u8>, generation: &str, line: u64, time: &str, event: &Event) {
    let line = LineOut {
        g: generation,
        n: line,
        time,
        kind: &event.kind,
        principal: &event.principal,
        plugin: event.plugin.as_deref(),
        tool: event.tool.as_deref(),
        outcome: event.outcome,
        fields: &event.fields,
    };
    serde_json::to_writer(&mut *out, &line).expect("a map of JSON values serialises");
    out.push(b'\n');
}

/// The journal this process owns.
pub(crate) struct Journal {
    path: PathBuf,
    file: File,
    generation: String,
    /// The number of the next line.
    next: u64,
    /// Bytes in the file.
    len: u64,
    /// Journaled events the writer has not taken yet, in line order.
    pending: Vec<Journaled>,
    /// When the first of `pending` was journaled.
    since: Option<Instant>,
    /// Whether a caller waits for one of `pending`.
    urgent: bool,
    /// Whether callers write here (see [`Journal::close`]).
    open: bool,
    buf: Vec<u8>,
}

/// What [`Journal::write`] tells its caller to do.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Wake the writer: these are the first events since it last took them, or a caller
    /// waits.
    Writer,
    /// The writer has been woken already and will take them within [`LINGER`].
    No,
}

/// Lines the writer took, to commit.
pub(crate) struct Taken {
    pub events: Vec<Journaled>,
    /// The line of the first of them.
    pub first: u64,
    /// When the first of them was journaled.
    pub since: Instant,
    /// The mark of the last of them.
    pub mark: JournalMark,
}

impl Journal {
    /// A journal in `file` (locked, empty), with a new generation.
    fn new(path: PathBuf, file: File) -> Result<Self, AuditError> {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).map_err(|error| AuditError::Journal {
            action: "drawing a random generation for",
            path: path.clone(),
            source: io::Error::other(error.to_string()),
        })?;
        Ok(Self {
            path,
            file,
            generation: hex::encode(bytes),
            next: 1,
            len: 0,
            pending: Vec::new(),
            since: None,
            urgent: false,
            open: true,
            buf: Vec::with_capacity(1024),
        })
    }

    /// Writes `events` as lines, in one `write`; each is on the journal when this
    /// returns. An event with a reply has a caller waiting for its record.
    pub(crate) fn write(
        &mut self,
        events: Vec<(Event, Option<AppendReply>)>,
    ) -> Result<Wake, AuditError> {
        if events.is_empty() {
            return Ok(Wake::No);
        }
        let time = super::time::now();
        self.buf.clear();
        for (i, (event, _)) in events.iter().enumerate() {
            encode(
                &mut self.buf,
                &self.generation,
                self.next + i as u64,
                &time,
                event,
            );
        }
        if let Err(source) = self.file.write_all(&self.buf) {
            // A part written (a full disk) would be a torn line before the next ones:
            // cut it off, so the file ends with the last whole line again.
            if let Err(err) = self.file.set_len(self.len) {
                tracing::error!(
                    "audit: cutting a partly written line off the journal {}: {err}",
                    self.path.display()
                );
            }
            return Err(AuditError::Journal {
                action: "writing to",
                path: self.path.clone(),
                source,
            });
        }
        self.len += self.buf.len() as u64;
        let waiting = events.iter().any(|(_, reply)| reply.is_some());
        let wake = if self.pending.is_empty() || waiting {
            Wake::Writer
        } else {
            Wake::No
        };
        self.urgent |= waiting;
        self.since.get_or_insert_with(Instant::now);
        for (event, reply) in events {
            self.pending.push(Journaled {
                line: self.next,
                time: time.clone(),
                event,
                reply,
            });
            self.next += 1;
        }
        Ok(wake)
    }

    /// Whether callers write here: not after [`Journal::close`].
    pub(crate) fn is_open(&self) -> bool {
        self.open
    }

    /// Sends callers to the writer from now on (a sync failed: every append is synced
    /// before its answer). The lines waiting are still taken by the writer.
    pub(crate) fn close(&mut self) {
        self.open = false;
    }

    /// Whether a caller waits for a journaled record.
    pub(crate) fn urgent(&self) -> bool {
        self.urgent
    }

    /// Takes the waiting events, if any.
    pub(crate) fn take(&mut self) -> Option<Taken> {
        let last = self.pending.last()?.line;
        let first = self.pending.first()?.line;
        self.urgent = false;
        Some(Taken {
            first,
            events: std::mem::take(&mut self.pending),
            since: self.since.take().unwrap_or_else(Instant::now),
            mark: JournalMark {
                generation: self.generation.clone(),
                line: last,
            },
        })
    }

    /// Puts back lines `first` to `last`, which the writer took and could not
    /// commit, before those journaled since: read again from the file (their events
    /// went into the failed transaction). Syncs the file: they may wait a while.
    pub(crate) fn put_back(&mut self, first: u64, last: u64, since: Instant) {
        let mut text = vec![0; usize::try_from(self.len).unwrap_or(usize::MAX)];
        let read = self
            .file
            .read_exact_at(&mut text, 0)
            .map_err(|source| AuditError::Journal {
                action: "reading back",
                path: self.path.clone(),
                source,
            })
            .and_then(|()| parse(&self.path, &text));
        match read {
            Ok(lines) => {
                let mut events: Vec<Journaled> = lines
                    .into_iter()
                    .filter(|l| {
                        l.mark.generation == self.generation
                            && (first..=last).contains(&l.mark.line)
                    })
                    .map(|l| Journaled {
                        line: l.mark.line,
                        time: l.time,
                        event: l.event,
                        reply: None,
                    })
                    .collect();
                events.append(&mut self.pending);
                self.pending = events;
                self.since = Some(self.since.map_or(since, |s| s.min(since)));
            }
            Err(err) => tracing::error!(
                "audit: lines {first} to {last} of the journal stay there, and are not on the log until they are recovered by hand: {err:#}"
            ),
        }
        if let Err(err) = self.file.sync_data() {
            tracing::error!("audit: syncing {}: {err}", self.path.display());
        }
    }

    /// After a commit: empties the file if no line waits, or rewrites it with the
    /// waiting ones if it has grown past [`COMPACT_AT`].
    pub(crate) fn committed(&mut self) {
        let result = if self.pending.is_empty() {
            if self.len == 0 {
                return;
            }
            self.file.set_len(0).map(|()| self.len = 0)
        } else if self.len >= COMPACT_AT {
            self.compact()
        } else {
            return;
        };
        if let Err(err) = result {
            tracing::warn!(
                "audit: emptying the journal {} (its lines are committed; it is emptied at the next chance): {err}",
                self.path.display()
            );
        }
    }

    /// Replaces the file by one holding only the waiting lines (written, locked and
    /// then renamed over the old one, so a crash leaves one or the other whole).
    fn compact(&mut self) -> io::Result<()> {
        let mut name = self.path.clone().into_os_string();
        name.push(".new");
        let new_path = PathBuf::from(name);
        // One left by a compaction that died half way holds nothing the journal lacks.
        match std::fs::remove_file(&new_path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => return Err(err),
            _ => {}
        }
        let mut file = open(&new_path, true)?;
        file.try_lock().map_err(io::Error::other)?;
        self.buf.clear();
        for journaled in &self.pending {
            encode(
                &mut self.buf,
                &self.generation,
                journaled.line,
                &journaled.time,
                &journaled.event,
            );
        }
        file.write_all(&self.buf)?;
        std::fs::rename(&new_path, &self.path)?;
        self.len = self.buf.len() as u64;
        self.file = file;
        Ok(())
    }
}

fn open(path: &Path, create: bool) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .append(true)
        .create(create)
        .mode(warden_files::FILE_MODE)
        .open(path)
}

/// The journal at `path`, locked by this process, with what its last owner left in it;
/// `None` if another process holds it.
pub(crate) struct Owned {
    path: PathBuf,
    file: File,
    /// The lines found in it, in order.
    pub lines: Vec<Recovered>,
}

/// A line left by an owner that is gone.
pub(crate) struct Recovered {
    pub mark: JournalMark,
    pub time: String,
    pub event: Event,
}

/// Takes the journal at `path` if no other process holds it, and reads what it holds
/// (`create`: make it if there is none; otherwise `None` then).
/// A torn last line (the owner died in its `write`, or the machine lost its cache: it
/// was never answered) is left out with a warning; a bad line before a good one is an
/// error naming it.
pub(crate) fn take(path: &Path, create: bool) -> Result<Option<Owned>, AuditError> {
    let failed = |action| {
        move |source| AuditError::Journal {
            action,
            path: path.to_path_buf(),
            source,
        }
    };
    // A journal compacted (renamed over) between the open and the lock is not the
    // one at `path`: open again.
    for _ in 0..8 {
        let mut file = match open(path, create) {
            Ok(file) => file,
            Err(err) if !create && err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(failed("opening")(err)),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
            Err(std::fs::TryLockError::Error(err)) => return Err(failed("locking")(err)),
        }
        let here = std::fs::metadata(path).map_err(failed("reading"))?;
        let mine = file.metadata().map_err(failed("reading"))?;
        if (here.dev(), here.ino()) != (mine.dev(), mine.ino()) {
            continue;
        }
        // It holds what the log holds: its owner's only, as `audit.db`.
        if mine.mode() & 0o077 != 0 {
            file.set_permissions(std::fs::Permissions::from_mode(mine.mode() & 0o700))
                .map_err(failed("tightening the mode of"))?;
        }
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(failed("reading"))?;
        let lines = parse(path, &text)?;
        return Ok(Some(Owned {
            path: path.to_path_buf(),
            file,
            lines,
        }));
    }
    Err(failed("locking")(io::Error::other(
        "it was replaced eight times while opening it",
    )))
}

fn parse(path: &Path, text: &[u8]) -> Result<Vec<Recovered>, AuditError> {
    let mut lines = Vec::new();
    let mut bad: Option<(usize, String)> = None;
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
            continue;
        }
        match serde_json::from_slice::<LineIn>(line) {
            Ok(parsed) => {
                if let Some((number, message)) = bad.take() {
                    return Err(AuditError::JournalLine {
                        path: path.to_path_buf(),
                        line: number,
                        message,
                    });
                }
                lines.push(Recovered {
                    mark: JournalMark {
                        generation: parsed.g,
                        line: parsed.n,
                    },
                    time: parsed.time,
                    event: Event {
                        kind: parsed.kind,
                        principal: parsed.principal,
                        plugin: parsed.plugin,
                        tool: parsed.tool,
                        outcome: parsed.outcome,
                        fields: parsed.fields,
                    },
                });
            }
            Err(err) => {
                bad.get_or_insert((i + 1, err.to_string()));
            }
        }
    }
    if let Some((number, message)) = bad {
        tracing::warn!(
            "audit: the journal {} ends in a torn line ({number}: {message}); it was never answered, and is left out",
            path.display()
        );
    }
    Ok(lines)
}

impl Owned {
    /// The lines not yet in a store whose mark is `mark`: those of another generation,
    /// and those of the mark's generation after its line.
    pub(crate) fn unstored(&mut self, mark: Option<&JournalMark>) -> Vec<Recovered> {
        std::mem::take(&mut self.lines)
            .into_iter()
            .filter(|l| {
                mark.is_none_or(|m| l.mark.generation != m.generation || l.mark.line > m.line)
            })
            .collect()
    }

    /// Empties the file (every line is in the store) and keeps it as this process's
    /// journal.
    pub(crate) fn into_journal(self) -> Result<Journal, AuditError> {
        self.file.set_len(0).map_err(|source| AuditError::Journal {
            action: "emptying",
            path: self.path.clone(),
            source,
        })?;
        Journal::new(self.path, self.file)
    }

    /// Empties the file (every line is in the store) and lets it go.
    pub(crate) fn release(self) -> Result<(), AuditError> {
        if self.file.metadata().is_ok_and(|m| m.len() > 0) {
            self.file.set_len(0).map_err(|source| AuditError::Journal {
                action: "emptying",
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
