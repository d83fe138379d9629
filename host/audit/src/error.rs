//! What can go wrong with the audit log, a checkpoint's signature or a time.
//!
//! Every error here prints its message with `{}`; `{:#}` adds each cause after
//! `": "`, as `anyhow` prints a chain, so a caller that formats one directly prints
//! what it printed when the log returned `anyhow` errors.

use std::error::Error;
use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// The audit log could not be opened, read, written or synced.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log's file (or its directory) could not be created.
    Create {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// SQLite could not open or set up the log: the file may be damaged.
    Open {
        /// The log's file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The log would not switch to WAL mode.
    NotWal {
        /// The log's file.
        path: PathBuf,
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// A read or a transaction on the log failed.
    Storage {
        /// What was being done ("appending", "reading records"…).
        action: &'static str,
        /// The log's file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// SQLite refused a setting or a pragma (as SQLite says it).
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    /// A prune found records to remove but no head.
    Empty,
    /// A record that could not be written as JSON (as serde says it).
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A read or write without more to say (as the system says it): writing a new key,
    /// an export's output.
    #[error(transparent)]
    Io(#[from] io::Error),
    /// A file could not be read.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The journal ([`crate::journal`]) could not be opened, written or emptied.
    Journal {
        /// What was being done ("writing to", "opening"…).
        action: &'static str,
        /// The journal.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A line of a journal left by a process that died is not a journal line, and
    /// good lines follow it.
    JournalLine {
        /// The journal.
        path: PathBuf,
        /// The line's number, from 1.
        line: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// The log's WAL file could not be synced.
    Sync {
        /// The WAL file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The log's WAL file could not be opened to sync it.
    OpenForSync {
        /// The WAL file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The log's directory could not be synced.
    SyncDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A checkpoint file could not be read.
    ReadCheckpoint {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A checkpoint file does not hold a checkpoint.
    NotCheckpoint {
        /// The file.
        path: PathBuf,
        /// What the JSON parser said.
        #[source]
        source: serde_json::Error,
    },
    /// An export could not be opened.
    OpenExport {
        /// The export.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// No random bytes for a new signing key.
    KeyGeneration {
        /// What the system said (part of the message).
        error: getrandom::Error,
    },
    /// The signing key's file is readable by others.
    KeyExposed {
        /// The key's file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The signing key's file does not hold a key.
    NotKey {
        /// The key's file.
        path: PathBuf,
    },
    /// Another process created the signing key, and it was gone when read.
    KeyVanished,
    /// The writer thread could not be started.
    Thread(#[source] io::Error),
    /// The writer thread has stopped (after an earlier error, logged then).
    Stopped,
    /// The writer thread stopped before it answered.
    NoAnswer(#[source] Box<dyn Error + Send + Sync + 'static>),
    /// The transaction this append was in failed; every append in it gets this.
    Commit {
        /// The transaction's error (its whole chain is this error's message).
        error: Arc<AuditError>,
    },
    /// Another [`Store`](crate::Store)'s failure, as it reports it.
    #[error(transparent)]
    Other(Box<dyn Error + Send + Sync + 'static>),
}

impl fmt::Display for AuditError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Create { path, .. } => write!(f, "creating {}", path.display()),
            Self::Open { path, .. } => write!(
                f,
                "opening the audit log {} (if the file is damaged, move it aside, keep it for investigation, and start a new log)",
                path.display()
            ),
            Self::NotWal { path, mode } => write!(
                f,
                "{}: could not switch to WAL mode (got {mode})",
                path.display()
            ),
            Self::Storage { action, path, .. } => {
                write!(f, "{action} in the audit log {}", path.display())
            }
            Self::Sqlite(err) => write!(f, "{err}"),
            Self::Empty => f.write_str("the log is empty"),
            Self::Json(err) => write!(f, "{err}"),
            Self::Io(err) => write!(f, "{err}"),
            Self::Read { path, .. } => write!(f, "reading {}", path.display()),
            Self::Journal { action, path, .. } => {
                write!(f, "{action} the audit journal {}", path.display())
            }
            Self::JournalLine {
                path,
                line,
                message,
            } => write!(
                f,
                "line {line} of the audit journal {} is not a journal line ({message}); the records of the lines after it are not on the log yet: move the file away to open the log without them, and keep it",
                path.display()
            ),
            Self::Sync { path, .. } => write!(f, "syncing {}", path.display()),
            Self::OpenForSync { path, .. } => write!(f, "opening {} to sync it", path.display()),
            Self::SyncDir { path, .. } => write!(f, "syncing the directory {}", path.display()),
            Self::ReadCheckpoint { path, .. } => {
                write!(f, "reading checkpoint {}", path.display())
            }
            Self::NotCheckpoint { path, .. } => write!(
                f,
                "checkpoint {}: not a checkpoint (expected the JSON `warden audit checkpoint` prints)",
                path.display()
            ),
            Self::OpenExport { path, .. } => write!(f, "opening the export {}", path.display()),
            Self::KeyGeneration { error } => {
                write!(f, "generating the audit signing key: {error}")
            }
            Self::KeyExposed { path, mode } => write!(
                f,
                "{}: the audit signing key is readable by others (mode {:o}); run `chmod 600 {}`",
                path.display(),
                mode & 0o777,
                path.display()
            ),
            Self::NotKey { path } => write!(
                f,
                "{}: not an audit signing key (expected 64 hex digits)",
                path.display()
            ),
            Self::KeyVanished => f.write_str("audit key vanished"),
            Self::Thread(_) => f.write_str("starting the audit writer thread"),
            Self::Stopped => f.write_str("the audit writer has stopped (see the earlier error)"),
            Self::NoAnswer(_) => f.write_str("the audit writer stopped before answering"),
            Self::Commit { error } => write!(f, "{error:#}"),
            Self::Other(err) => write!(f, "{err}"),
        }?;
        causes(self, f)
    }
}

/// A checkpoint whose signature does not hold.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    /// The public key is not 32 bytes of hex.
    KeyNotHex,
    /// The public key is not a valid ed25519 key.
    BadKey(#[source] ed25519_dalek::SignatureError),
    /// The signature is not 64 bytes of hex.
    SignatureNotHex,
    /// The signature does not match the checkpoint: it was altered, or made by
    /// another key.
    Mismatch {
        /// The record the checkpoint names.
        seq: u64,
    },
    /// The checkpoint was signed by another key than the trusted one.
    Untrusted {
        /// The record the checkpoint names.
        seq: u64,
        /// The key that signed it (hex).
        key: String,
        /// The key that should have (hex).
        trusted: String,
    },
}

impl fmt::Display for SignatureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::checkpoint::short;
        match self {
            Self::KeyNotHex => f.write_str("checkpoint: public_key is not 32 bytes of hex"),
            Self::BadKey(_) => f.write_str("checkpoint: bad public_key"),
            Self::SignatureNotHex => f.write_str("checkpoint: signature is not 64 bytes of hex"),
            Self::Mismatch { seq } => write!(
                f,
                "checkpoint of record {seq}: the signature does not match (the checkpoint was altered or not made by this key)"
            ),
            Self::Untrusted { seq, key, trusted } => write!(
                f,
                "checkpoint of record {seq}: signed by key {}…, not by this log's audit key {}… (audit.key): it was made elsewhere or forged",
                short(key),
                short(trusted)
            ),
        }?;
        causes(self, f)
    }
}

/// A time that is neither RFC 3339 nor an age (see [`crate::time::parse`]).
#[derive(Debug, thiserror::Error)]
pub struct TimeError {
    /// The text as given.
    pub text: String,
    /// What is wrong with it.
    #[source]
    pub problem: TimeProblem,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "time {:?}: use RFC 3339 (2026-11-26, 2026-11-26T10:04:05Z, 2026-11-26T10:04:05+01:00) or an age (90s, 15m, 2h, 7d)",
            self.text
        )?;
        causes(self, f)
    }
}

/// What is wrong with a time, in a few words ("no such day", "expected HH:MM"…).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TimeProblem(pub String);

/// With `{:#}`, each cause of `err` after `": "`, as `anyhow` prints a chain.
fn causes(err: &dyn Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    if f.alternate() {
        let mut cause = err.source();
        while let Some(err) = cause {
            write!(f, ": {err}")?;
            cause = err.source();
        }
    }
    Ok(())
}
