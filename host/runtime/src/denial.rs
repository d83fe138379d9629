//! A capability use that the host refused.

use std::fmt;

use serde::Serialize;
use serde::ser::SerializeStruct as _;

/// One refused capability use: which capability, what was asked, and why not.
///
/// The caller hears [`Denial::told`] (its `Display` and its JSON); the audit record
/// keeps `reason`, which may say more (the internal address a name resolved to).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The capability kind: `net`, `fs`, `env`, …
    pub capability: &'static str,
    /// What the guest asked for (a URL, a path, a variable name).
    pub target: String,
    /// Why it was refused, and what an operator would change to allow it: the audit
    /// record's reason.
    pub reason: String,
    /// What the caller is told instead of `reason` when the record holds what a
    /// caller must not learn (where a name resolves inside the network); `None`: the
    /// caller is told `reason`.
    pub caller_reason: Option<String>,
}

impl Denial {
    /// A refusal whose reason the caller may hear in full.
    pub fn new(capability: &'static str, target: String, reason: String) -> Self {
        Self {
            capability,
            target,
            reason,
            caller_reason: None,
        }
    }

    /// The reason as the caller hears it.
    pub fn told(&self) -> &str {
        self.caller_reason.as_deref().unwrap_or(&self.reason)
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} denied for {}: {}",
            self.capability,
            self.target,
            self.told()
        )
    }
}

/// `{"capability", "target", "reason"}`, the reason as the caller hears it.
impl Serialize for Denial {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("Denial", 3)?;
        out.serialize_field("capability", self.capability)?;
        out.serialize_field("target", &self.target)?;
        out.serialize_field("reason", self.told())?;
        out.end()
    }
}
