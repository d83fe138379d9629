//! How durable an append is when its caller gets the answer: the operator's choice,
//! `[audit] durability` in `warden.toml` or `WARDEN_AUDIT_DURABILITY`.
//!
//! - [`Durability::Full`]: the append's transaction is synced to disk (fsync) before
//!   the answer. Nothing answered is lost, whatever happens to the machine.
//! - [`Durability::Process`]: the append is written to a file before the answer (the
//!   operating system holds it): on the embedded store, the journal
//!   ([`crate::journal`]), by the caller's own thread; elsewhere, the log itself. So a
//!   killed or crashed process loses nothing;
//!   the sync follows within [`Durability::SYNC_WITHIN`], so a power cut or a kernel
//!   crash loses at most that window. It saves an fsync per call where calls come one
//!   at a time (about 170 µs on the disks measured in `BENCHMARKS.md`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// See the [module](self).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// Synced before the answer.
    #[default]
    Full,
    /// Written before the answer, synced within [`Durability::SYNC_WITHIN`].
    Process,
}

impl Durability {
    /// In [`Durability::Process`], the longest a written append waits for its sync.
    pub const SYNC_WITHIN: Duration = Duration::from_millis(10);

    /// The setting's name, as in `warden.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Process => "process",
        }
    }
}

impl fmt::Display for Durability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A durability that is neither `full` nor `process`.
#[derive(Debug, thiserror::Error)]
#[error(
    "audit durability {0:?} is not known: use `full` (synced before each answer) or `process` (a killed process loses nothing; synced within 10 ms)"
)]
pub struct UnknownDurability(pub String);

impl FromStr for Durability {
    type Err = UnknownDurability;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "full" => Ok(Self::Full),
            "process" => Ok(Self::Process),
            _ => Err(UnknownDurability(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_say_what_to_use() {
        for d in [Durability::Full, Durability::Process] {
            assert_eq!(d.as_str().parse::<Durability>().unwrap(), d);
        }
        assert_eq!(
            " Process ".parse::<Durability>().unwrap(),
            Durability::Process
        );
        let err = "fast".parse::<Durability>().unwrap_err().to_string();
        assert!(err.contains("\"fast\"") && err.contains("`full`"), "{err}");
    }
}
