//! One audit record, what a caller hands in to make one ([`Event`]), and its hash.
//!
//! A record's `hash` is the lowercase hex SHA-256 of the canonical JSON
//! ([`super::canonical`], RFC 8785) of the object holding every other member of the
//! record: `seq`, `time`, `kind`, `principal`, `plugin`, `tool`, `outcome` (each of
//! these three left out when absent), `fields` and `prev`. `prev` is the `hash` of the
//! record before (64 zeros for record 1). An exported line is that object plus `hash`,
//! so a verifier removes `hash`, canonicalises the rest and compares.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use sha2::{Digest as _, Sha256};

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How an action ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It did what was asked.
    Ok,
    /// It failed (the tool's error, a trap, a limit).
    Error,
    /// The host refused it.
    Denied,
}

impl Outcome {
    /// `ok`, `error` or `denied`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Denied => "denied",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Outcome {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ok" => Ok(Outcome::Ok),
            "error" => Ok(Outcome::Error),
            "denied" => Ok(Outcome::Denied),
            other => Err(format!(
                "unknown outcome {other:?}: use ok, error or denied"
            )),
        }
    }
}

/// What happened, as a caller reports it; the log adds `seq`, `time` and the hashes.
///
/// ```
/// use warden_audit::{Event, Outcome};
/// let event = Event::new("tool.call", "local:alice")
///     .plugin("weather")
///     .tool("forecast")
///     .outcome(Outcome::Ok)
///     .field("duration_ms", 12);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What kind of action: `tool.call`, `capability.denied`, `limit.hit`, `plugin.add`,
    /// `plugin.replace`, `plugin.remove`, `grant.set`, `audit.anchor`, …
    pub kind: String,
    /// On whose behalf: `local:<user>` for the CLI.
    pub principal: String,
    /// The plugin concerned, if any.
    pub plugin: Option<String>,
    /// The tool concerned, if any.
    pub tool: Option<String>,
    /// How it ended, if it is an action that ends.
    pub outcome: Option<Outcome>,
    /// The kind's own data (digests, durations, URLs…): a JSON object.
    pub fields: Map<String, Value>,
}

impl Event {
    /// An event of `kind` on behalf of `principal`, with nothing else.
    pub fn new(kind: impl Into<String>, principal: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            principal: principal.into(),
            plugin: None,
            tool: None,
            outcome: None,
            fields: Map::new(),
        }
    }

    /// Sets the plugin.
    pub fn plugin(mut self, plugin: impl Into<String>) -> Self {
        self.plugin = Some(plugin.into());
        self
    }

    /// Sets the tool.
    pub fn tool(mut self, tool: impl Into<String>) -> Self {
        self.tool = Some(tool.into());
        self
    }

    /// Sets the outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = Some(outcome);
        self
    }

    /// Adds one field.
    pub fn field(mut self, name: impl Into<String>, value: impl Into<Value>) -> Self {
        self.fields.insert(name.into(), value.into());
        self
    }
}

/// One record of the log, as stored and exported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// When it was written: RFC 3339, UTC, milliseconds.
    pub time: String,
    /// See [`Event::kind`].
    pub kind: String,
    /// See [`Event::principal`].
    pub principal: String,
    /// See [`Event::plugin`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<String>,
    /// See [`Event::tool`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<String>,
    /// See [`Event::outcome`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// See [`Event::fields`]; a JSON object (anything else read back from a store is
    /// kept as it was read, and does not verify).
    pub fields: Value,
    /// The hash of the record before, [`GENESIS`] for record 1.
    pub prev: String,
    /// This record's hash (see the module docs).
    pub hash: String,
}

impl Record {
    /// Makes record `seq` of `event`, chained to `prev`, and computes its hash.
    pub fn new(seq: u64, time: String, event: Event, prev: String) -> Self {
        let mut record = Self {
            seq,
            time,
            kind: event.kind,
            principal: event.principal,
            plugin: event.plugin,
            tool: event.tool,
            outcome: event.outcome,
            fields: Value::Object(event.fields),
            prev,
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        record
    }

    fn members(&self) -> Members<'_> {
        Members {
            seq: self.seq,
            time: &self.time,
            kind: &self.kind,
            principal: &self.principal,
            plugin: self.plugin.as_deref(),
            tool: self.tool.as_deref(),
            outcome: self.outcome.map(Outcome::as_str),
            prev: &self.prev,
        }
    }

    /// The bytes the hash is computed over (canonical JSON without `hash`).
    pub fn canonical(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        self.members()
            .write(&mut out, |out| super::canonical::write(out, &self.fields));
        out
    }

    /// The hash this record should carry, from its content.
    pub fn compute_hash(&self) -> String {
        hex::encode(Sha256::digest(self.canonical()))
    }

    /// Whether the stored hash matches the content.
    pub fn hash_ok(&self) -> bool {
        self.compute_hash() == self.hash
    }

    /// One line for people: `seq time kind principal plugin/tool outcome fields`.
    pub fn line(&self) -> String {
        let target = match (&self.plugin, &self.tool) {
            (Some(p), Some(t)) => format!("{p}/{t}"),
            (Some(p), None) => p.clone(),
            (None, Some(t)) => t.clone(),
            (None, None) => "-".into(),
        };
        let outcome = self.outcome.map_or("-", Outcome::as_str);
        let fields = match &self.fields {
            Value::Object(m) if m.is_empty() => String::new(),
            Value::Object(m) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) if s.len() <= 80 && !s.contains('\n') => format!("{k}={s}"),
                    Value::String(s) => format!("{k}=<{} bytes>", s.len()),
                    other => format!("{k}={other}"),
                })
                .collect::<Vec<_>>()
                .join(" "),
            other => other.to_string(),
        };
        format!(
            "{:>6} {} {:<17} {:<16} {:<24} {:<6} {fields}",
            self.seq, self.time, self.kind, self.principal, target, outcome
        )
        .trim_end()
        .to_string()
    }
}

/// The members of a record its hash covers, borrowed, `fields` aside.
pub(crate) struct Members<'a> {
    pub(crate) seq: u64,
    pub(crate) time: &'a str,
    pub(crate) kind: &'a str,
    pub(crate) principal: &'a str,
    pub(crate) plugin: Option<&'a str>,
    pub(crate) tool: Option<&'a str>,
    pub(crate) outcome: Option<&'a str>,
    pub(crate) prev: &'a str,
}

impl Members<'_> {
    /// Appends the canonical JSON of the record to `out`, `fields` writing the
    /// canonical JSON of its fields. The member names, in canonical order, are fixed.
    pub(crate) fn write(&self, out: &mut Vec<u8>, fields: impl FnOnce(&mut Vec<u8>)) {
        use super::canonical::write_string;
        out.extend_from_slice(b"{\"fields\":");
        fields(out);
        out.extend_from_slice(b",\"kind\":");
        write_string(out, self.kind);
        if let Some(outcome) = self.outcome {
            out.extend_from_slice(b",\"outcome\":");
            write_string(out, outcome);
        }
        if let Some(plugin) = self.plugin {
            out.extend_from_slice(b",\"plugin\":");
            write_string(out, plugin);
        }
        out.extend_from_slice(b",\"prev\":");
        write_string(out, self.prev);
        out.extend_from_slice(b",\"principal\":");
        write_string(out, self.principal);
        out.extend_from_slice(b",\"seq\":");
        {
            use std::io::Write as _;
            let _ = write!(out, "{}", self.seq);
        }
        out.extend_from_slice(b",\"time\":");
        write_string(out, self.time);
        if let Some(tool) = self.tool {
            out.extend_from_slice(b",\"tool\":");
            write_string(out, tool);
        }
        out.push(b'}');
    }
}

/// Whether `hash` is the lowercase hex of the SHA-256 of `canonical`.
pub(crate) fn hash_is(canonical: &[u8], hash: &str) -> bool {
    let mut hex = [0u8; 64];
    hex::encode_to_slice(Sha256::digest(canonical), &mut hex).is_ok() && hex == hash.as_bytes()
}

/// `sha256:<hex>` of `bytes`, the form digests take in record fields.
pub fn digest(bytes: &[u8]) -> String {
    let mut hex = [0; 64];
    hex::encode_to_slice(Sha256::digest(bytes), &mut hex).expect("64 digits for 32 bytes");
    let mut out = String::with_capacity(7 + hex.len());
    out.push_str("sha256:");
    out.extend(hex.iter().map(|&digit| char::from(digit)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_every_member_but_hash() {
        let event = Event::new("tool.call", "local:a")
            .plugin("p")
            .outcome(Outcome::Ok)
            .field("n", 1);
        let r = Record::new(1, "2026-01-01T00:00:00.000Z".into(), event, GENESIS.into());
        assert_eq!(
            String::from_utf8(r.canonical()).unwrap(),
            format!(
                r#"{{"fields":{{"n":1}},"kind":"tool.call","outcome":"ok","plugin":"p","prev":"{GENESIS}","principal":"local:a","seq":1,"time":"2026-01-01T00:00:00.000Z"}}"#
            )
        );
        assert!(r.hash_ok());
        for change in [
            |r: &mut Record| r.seq = 2,
            |r: &mut Record| r.time.push('x'),
            |r: &mut Record| r.kind.push('x'),
            |r: &mut Record| r.principal.push('x'),
            |r: &mut Record| r.plugin = None,
            |r: &mut Record| r.tool = Some("t".into()),
            |r: &mut Record| r.outcome = Some(Outcome::Denied),
            |r: &mut Record| r.fields["n"] = 2.into(),
            |r: &mut Record| r.prev.replace_range(..1, "1"),
        ] {
            let mut changed = r.clone();
            change(&mut changed);
            assert!(!changed.hash_ok(), "{changed:?}");
        }
    }

    /// The canonical form as RFC 8785 defines it for the record's object: what the
    /// direct encoding must equal.
    fn canonical_via_map(r: &Record) -> Vec<u8> {
        let mut map = Map::new();
        map.insert("seq".into(), r.seq.into());
        map.insert("time".into(), r.time.clone().into());
        map.insert("kind".into(), r.kind.clone().into());
        map.insert("principal".into(), r.principal.clone().into());
        if let Some(p) = &r.plugin {
            map.insert("plugin".into(), p.clone().into());
        }
        if let Some(t) = &r.tool {
            map.insert("tool".into(), t.clone().into());
        }
        if let Some(o) = r.outcome {
            map.insert("outcome".into(), o.as_str().into());
        }
        map.insert("fields".into(), r.fields.clone());
        map.insert("prev".into(), r.prev.clone().into());
        super::super::canonical::to_vec(&Value::Object(map))
    }

    #[test]
    fn direct_encoding_is_the_canonical_json_of_the_record() {
        let odd = "q\"\\\n\u{1}\u{7f}é\u{1f600}\u{ff21}";
        for plugin in [None, Some("p"), Some(odd)] {
            for tool in [None, Some("t")] {
                for outcome in [None, Some(Outcome::Denied)] {
                    let mut event = Event::new("tool.call", odd)
                        .field("z", 1)
                        .field("a", serde_json::json!({"y": [1.5, null, odd], "b": true}))
                        .field(odd, -3);
                    event.plugin = plugin.map(String::from);
                    event.tool = tool.map(String::from);
                    event.outcome = outcome;
                    let r = Record::new(u64::MAX, odd.into(), event, GENESIS.into());
                    assert_eq!(
                        String::from_utf8(r.canonical()).unwrap(),
                        String::from_utf8(canonical_via_map(&r)).unwrap()
                    );
                    assert!(r.hash_ok());
                    // As stored: the fields as their canonical text.
                    let fields =
                        String::from_utf8(super::super::canonical::to_vec(&r.fields)).unwrap();
                    let stored = super::super::store::StoredRecord {
                        seq: r.seq,
                        time: &r.time,
                        kind: &r.kind,
                        principal: &r.principal,
                        plugin: r.plugin.as_deref(),
                        tool: r.tool.as_deref(),
                        outcome: r.outcome.map(Outcome::as_str),
                        fields: &fields,
                        prev: &r.prev,
                        hash: &r.hash,
                    };
                    assert!(stored.hash_ok_as_stored(&mut Vec::new()));
                    assert_eq!(stored.to_record(), r);
                    // Not canonical (spaces): not settled as stored, equal once parsed.
                    let loose = fields.replacen(':', ": ", 1);
                    let stored = super::super::store::StoredRecord {
                        fields: &loose,
                        ..stored
                    };
                    assert!(!stored.hash_ok_as_stored(&mut Vec::new()));
                    assert!(stored.to_record().hash_ok());
                }
            }
        }
    }

    #[test]
    fn exported_line_round_trips() {
        let r = Record::new(
            7,
            "2026-01-01T00:00:00.000Z".into(),
            Event::new("grant.set", "local:a").plugin("p"),
            GENESIS.into(),
        );
        let line = serde_json::to_string(&r).unwrap();
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
        assert!(back.hash_ok());
    }
}
