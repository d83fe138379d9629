//! A capability use that the host refused.

use std::fmt;

use serde::Serialize;

/// One refused capability use: which capability, what was asked, and why not.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Denial {
    /// The capability kind: `net`, `fs`, `env`, …
    pub capability: &'static str,
    /// What the guest asked for (a URL, a path, a variable name).
    pub target: String,
    /// Why it was refused, and what an operator would change to allow it.
    pub reason: String,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} denied for {}: {}",
            self.capability, self.target, self.reason
        )
    }
}
