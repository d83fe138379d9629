//! Checking the chain: recompute every hash and link, and name the first record that
//! was changed, removed, inserted or reordered.
//!
//! Times are checked too, as warnings: a record dated more than
//! [`CLOCK_TOLERANCE_MS`] before the latest record ahead of it (a clock set back, or
//! records written by someone who chose their dates) is named in
//! [`Report::time_warnings`]. Sequence numbers, not times, order the log, so a clock
//! going back does not break the chain; a small step back (an NTP correction) is
//! tolerated without a word.
//!
//! Records are pushed in the order the log holds them (by `seq` in a store, by line in
//! an export). The first one that does not fit is held while a few more are read, so
//! that the report can tell a changed record from one that was moved or added.

use std::collections::VecDeque;
use std::fmt;

use super::record::{GENESIS, Record};
use super::store::{Anchor, Head, StoredRecord};

/// How many records are kept behind and read ahead to explain a break.
const WINDOW: usize = 64;

/// How far (ms) a record may be dated before the latest record ahead of it without a
/// warning: one second, more than an NTP correction steps a clock back, less than
/// anyone backdating records by hand would choose.
pub const CLOCK_TOLERANCE_MS: i64 = 1000;

/// Time warnings a report names one by one; more are counted.
const MAX_TIME_WARNINGS: usize = 10;

/// A record dated before the latest record ahead of it, by more than
/// [`CLOCK_TOLERANCE_MS`], or whose time cannot be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeWarning {
    /// The record.
    pub seq: u64,
    /// What is odd about its time.
    pub detail: String,
}

impl fmt::Display for TimeWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {}: {}", self.seq, self.detail)
    }
}

/// What the first record is expected to follow.
#[derive(Clone, Debug)]
pub enum Start {
    /// Nothing: the log starts at record 1.
    Genesis,
    /// A pruned prefix: the log starts after this anchor.
    Anchor(Anchor),
    /// Whatever the first record says (an export, which carries no anchor). A first
    /// record other than 1 must be confirmed by an `audit.anchor` record.
    AsFound,
}

/// What is wrong with a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// Its content does not match its hash, or the next record does not link to it.
    Changed,
    /// It is missing.
    Removed,
    /// It was added.
    Inserted,
    /// It is not where it was written.
    Reordered,
    /// It cannot be read (an export line that is not a record).
    Malformed,
    /// The pruned prefix is not accounted for.
    Anchor,
}

/// The first bad record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Its sequence number, where one can be named.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: ProblemKind,
    /// Why it was judged so.
    pub detail: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ProblemKind::Changed => "changed",
            ProblemKind::Removed => "removed",
            ProblemKind::Inserted => "inserted",
            ProblemKind::Reordered => "out of order",
            ProblemKind::Malformed => "unreadable",
            ProblemKind::Anchor => "prefix not accounted for",
        };
        match self.seq {
            Some(seq) => write!(f, "record {seq}: {what} ({})", self.detail),
            None => write!(f, "{what}: {}", self.detail),
        }
    }
}

/// The outcome of a verification.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Records read that verified.
    pub count: u64,
    /// The first record's sequence number.
    pub first: Option<u64>,
    /// The last record read.
    pub head: Option<Head>,
    /// The anchor the log starts after, if it was pruned.
    pub anchor: Option<(u64, String)>,
    /// The first problem, if any.
    pub problem: Option<Problem>,
    /// The first records dated back in time (see [`CLOCK_TOLERANCE_MS`]), up to ten.
    pub time_warnings: Vec<TimeWarning>,
    /// How many records were dated back in time, all told.
    pub time_warnings_total: u64,
}

/// Checks records one at a time.
pub struct Verifier {
    start: Start,
    expect: Option<(u64, String)>,
    anchor: Option<(u64, String)>,
    anchor_confirmed: bool,
    recent: VecDeque<(u64, String)>,
    /// The latest time read so far (ms since the epoch), with its record and text.
    latest: Option<(u64, i64, String)>,
    suspect: Option<(Record, Vec<Record>)>,
    report: Report,
    /// Scratch space for canonical encodings.
    buf: Vec<u8>,
}

fn hash_as(record: &Record, seq: u64) -> String {
    let mut moved = record.clone();
    moved.seq = seq;
    moved.compute_hash()
}

impl Verifier {
    /// A verifier for a log that starts as `start` says.
    pub fn new(start: Start) -> Self {
        let (expect, anchor) = match &start {
            Start::Genesis => (Some((1, GENESIS.to_string())), None),
            Start::Anchor(a) => (
                Some((a.seq + 1, a.hash.clone())),
                Some((a.seq, a.hash.clone())),
            ),
            Start::AsFound => (None, None),
        };
        Self {
            start,
            expect,
            anchor,
            anchor_confirmed: false,
            recent: VecDeque::with_capacity(WINDOW),
            latest: None,
            suspect: None,
            report: Report::default(),
            buf: Vec::with_capacity(1024),
        }
    }

    /// Checks the next record; `false` once a problem is settled (stop pushing).
    pub fn push(&mut self, record: Record) -> bool {
        if self.report.problem.is_some() {
            return false;
        }
        if let Some((_, ahead)) = &mut self.suspect {
            ahead.push(record);
            if ahead.len() >= WINDOW {
                self.settle();
                return false;
            }
            return true;
        }
        if self.expect.is_none() {
            // An export: the first record says where it starts.
            if record.seq > 1 {
                self.anchor = Some((record.seq - 1, record.prev.clone()));
                self.expect = Some((record.seq, record.prev.clone()));
            } else {
                self.expect = Some((1, GENESIS.to_string()));
            }
        }
        let (seq, prev) = self.expect.clone().unwrap_or_default();
        if record.seq == seq && record.prev == prev && record.hash_ok() {
            self.accept(record);
            true
        } else {
            self.suspect = Some((record, Vec::new()));
            true
        }
    }

    /// [`Verifier::push`] for a record as stored: one that fits is checked without
    /// being copied or its fields parsed.
    pub fn push_stored(&mut self, stored: &StoredRecord<'_>) -> bool {
        if self.report.problem.is_some() {
            return false;
        }
        if self.suspect.is_none()
            && stored.kind != "audit.anchor"
            && let Some((seq, prev)) = &self.expect
            && stored.seq == *seq
            && stored.prev == prev
            && stored.hash_ok_as_stored(&mut self.buf)
        {
            self.accept_parts(stored.seq, stored.hash);
            self.check_time(stored.seq, stored.time);
            return true;
        }
        self.push(stored.to_record())
    }

    /// Records an unreadable entry (`at` names it, e.g. `line 7`).
    pub fn malformed(&mut self, at: String, reason: String) {
        if self.suspect.is_some() {
            self.settle();
        }
        if self.report.problem.is_none() {
            let seq = self.expect.as_ref().map(|(seq, _)| *seq);
            self.report.problem = Some(Problem {
                seq,
                kind: ProblemKind::Malformed,
                detail: format!("{at}: {reason}"),
            });
        }
    }

    fn accept(&mut self, record: Record) {
        if record.kind == "audit.anchor"
            && let Some((seq, hash)) = &self.anchor
            && record.fields.get("seq").and_then(|v| v.as_u64()) == Some(*seq)
            && record.fields.get("hash").and_then(|v| v.as_str()) == Some(hash.as_str())
        {
            self.anchor_confirmed = true;
        }
        self.accept_parts(record.seq, &record.hash);
        self.check_time(record.seq, &record.time);
    }

    /// Warns when record `seq`'s `time` is before the latest time read so far by more
    /// than [`CLOCK_TOLERANCE_MS`], or cannot be read.
    fn check_time(&mut self, seq: u64, time: &str) {
        let warning = match (record_millis(time), &self.latest) {
            (None, _) => Some(format!(
                "its time {time:?} is not a record time (like 2026-11-26T10:04:05.123Z)"
            )),
            (Some(ms), Some((ahead, latest, latest_time))) if *latest - ms > CLOCK_TOLERANCE_MS => {
                Some(format!(
                    "dated {time}, {:.3} s before record {ahead} ({latest_time}) that comes ahead of it: the clock was set back, or the record was dated by hand",
                    (*latest - ms) as f64 / 1000.0
                ))
            }
            (Some(ms), latest) => {
                if latest.as_ref().is_none_or(|(_, latest, _)| ms > *latest) {
                    // Reuses the text's buffer: this runs for every record.
                    let (at, when, text) = self.latest.get_or_insert_default();
                    (*at, *when) = (seq, ms);
                    text.clear();
                    text.push_str(time);
                }
                None
            }
        };
        if let Some(detail) = warning {
            self.report.time_warnings_total += 1;
            if self.report.time_warnings.len() < MAX_TIME_WARNINGS {
                self.report.time_warnings.push(TimeWarning { seq, detail });
            }
        }
    }

    /// Takes record `seq` with `hash` as the next link, reusing the buffers.
    fn accept_parts(&mut self, seq: u64, hash: &str) {
        let reuse = |slot: &mut String| {
            slot.clear();
            slot.push_str(hash);
        };
        self.report.count += 1;
        self.report.first.get_or_insert(seq);
        let mut kept = if self.recent.len() == WINDOW {
            self.recent.pop_front().map(|(_, h)| h).unwrap_or_default()
        } else {
            String::with_capacity(64)
        };
        reuse(&mut kept);
        self.recent.push_back((seq, kept));
        match &mut self.expect {
            Some((next, prev)) => {
                *next = seq + 1;
                reuse(prev);
            }
            None => self.expect = Some((seq + 1, hash.to_string())),
        }
        match &mut self.report.head {
            Some(head) => {
                head.seq = seq;
                reuse(&mut head.hash);
            }
            None => {
                self.report.head = Some(Head {
                    seq,
                    hash: hash.to_string(),
                })
            }
        }
    }

    fn behind(&self, hash: &str) -> Option<u64> {
        self.recent
            .iter()
            .rev()
            .find(|(_, h)| h == hash)
            .map(|(s, _)| *s)
    }

    /// Explains the suspect record with what is behind and ahead of it.
    fn settle(&mut self) {
        let Some((r, ahead)) = self.suspect.take() else {
            return;
        };
        let (e, p) = self.expect.clone().unwrap_or_default();
        let problem = |seq: u64, kind, detail: String| Problem {
            seq: Some(seq),
            kind,
            detail,
        };
        let problem = if !r.hash_ok() {
            let links_behind = self.behind(&r.prev);
            let links_ahead = ahead.iter().find(|a| a.hash == r.prev);
            if let Some(before) = links_behind
                && before + 1 < r.seq
                && hash_as(&r, before + 1) == r.hash
            {
                problem(
                    before + 1,
                    ProblemKind::Inserted,
                    format!(
                        "records were added before it: the record numbered {} is the original record {}",
                        r.seq,
                        before + 1
                    ),
                )
            } else if let Some(before) = links_ahead {
                problem(
                    r.seq,
                    ProblemKind::Reordered,
                    format!(
                        "it holds the record written after record {}, which comes later",
                        before.seq
                    ),
                )
            } else if ahead.first().is_some_and(|n| n.prev == p) {
                problem(
                    r.seq,
                    ProblemKind::Inserted,
                    format!("the next record links to record {}, not to it", e - 1),
                )
            } else if hash_as(&r, r.seq + 1) == r.hash {
                problem(
                    r.seq,
                    ProblemKind::Removed,
                    format!(
                        "the record numbered {} is the original record {}: records after it were renumbered",
                        r.seq,
                        r.seq + 1
                    ),
                )
            } else {
                problem(
                    r.seq,
                    ProblemKind::Changed,
                    "its content does not match its hash".into(),
                )
            }
        } else if r.seq == e {
            if ahead.first().is_some_and(|n| n.prev == p) {
                problem(
                    r.seq,
                    ProblemKind::Inserted,
                    format!("the next record links to record {}, not to it", e - 1),
                )
            } else if e > 1 && self.report.count > 0 {
                problem(
                    e - 1,
                    ProblemKind::Changed,
                    format!("record {e} does not link to it: its hash was rewritten"),
                )
            } else {
                problem(
                    r.seq,
                    ProblemKind::Anchor,
                    "its prev matches neither the start of the log nor the prune anchor".into(),
                )
            }
        } else if r.seq > e {
            if ahead.iter().any(|a| a.seq == e) {
                problem(
                    r.seq,
                    ProblemKind::Reordered,
                    format!("found where record {e} belongs"),
                )
            } else if e == 1 && self.anchor.is_none() {
                problem(
                    1,
                    ProblemKind::Removed,
                    format!(
                        "the log starts at record {} with no prune anchor: records 1..{} are missing",
                        r.seq,
                        r.seq - 1
                    ),
                )
            } else if r.seq == e + 1 {
                problem(
                    e,
                    ProblemKind::Removed,
                    format!("record {} follows record {}", r.seq, e - 1),
                )
            } else {
                problem(
                    e,
                    ProblemKind::Removed,
                    format!("records {e}..{} are missing", r.seq - 1),
                )
            }
        } else if self.behind(&r.hash).is_some() {
            problem(
                r.seq,
                ProblemKind::Inserted,
                format!("a second copy of record {}, after record {}", r.seq, e - 1),
            )
        } else if let Some(before) = self.behind(&r.prev)
            && before + 1 < e
        {
            problem(
                before + 1,
                ProblemKind::Inserted,
                format!(
                    "records {}..{} were added: record {} links to record {before}",
                    before + 1,
                    e - 1,
                    r.seq
                ),
            )
        } else {
            problem(
                r.seq,
                ProblemKind::Reordered,
                format!("found after record {}", e - 1),
            )
        };
        self.report.problem = Some(problem);
    }

    /// The report, once every record was pushed.
    pub fn finish(mut self) -> Report {
        if self.suspect.is_some() {
            self.settle();
        }
        if self.report.problem.is_none()
            && let Some((seq, _)) = &self.anchor
            && !self.anchor_confirmed
        {
            let detail = match self.start {
                Start::Anchor(_) => format!(
                    "records 1..={seq} were removed, but no audit.anchor record in the log confirms the prune"
                ),
                _ => format!(
                    "the log starts at record {} and no audit.anchor record confirms that records 1..={seq} were pruned",
                    seq + 1
                ),
            };
            self.report.problem = Some(Problem {
                seq: Some(seq + 1),
                kind: ProblemKind::Anchor,
                detail,
            });
        }
        self.report.anchor = self.anchor.take();
        self.report
    }
}

/// A record time (`2026-11-26T10:04:05.123Z`, exactly) in ms since the Unix epoch.
fn record_millis(time: &str) -> Option<i64> {
    let b = time.as_bytes();
    if b.len() != 24 || b[10] != b'T' || b[19] != b'.' || b[23] != b'Z' {
        return None;
    }
    super::time::parse(time).ok()
}

/// Verifies `records` in order from `start`.
pub fn verify(records: impl IntoIterator<Item = Record>, start: Start) -> Report {
    let mut verifier = Verifier::new(start);
    for record in records {
        if !verifier.push(record) {
            break;
        }
    }
    verifier.finish()
}
