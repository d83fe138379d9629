//! Cedar's errors (parse and validation), as people read them: the file, the line and
//! column, what is wrong, and Cedar's hint.

use std::fmt;

use miette::Diagnostic;
use serde::Serialize;

/// One thing wrong with a policy file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file (as given).
    pub file: String,
    /// 1-based line and column of what is wrong, where Cedar points at something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// The policy it is in, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// What is wrong.
    pub message: String,
    /// What to do, when Cedar says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}:{}", self.column.unwrap_or(1))?;
        }
        write!(f, ": ")?;
        if let Some(policy) = &self.policy {
            write!(f, "policy {policy}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, " (help: {help})")?;
        }
        Ok(())
    }
}

impl Problem {
    /// A problem without a position.
    pub fn new(file: &str, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            line: None,
            column: None,
            policy: None,
            message: message.into(),
            help: None,
        }
    }

    /// Names the policy the problem is in (and drops Cedar's own "for policy `ID`, ",
    /// which would say it twice).
    pub(super) fn set_policy(&mut self, id: &str) {
        let said = format!("for policy `{id}`, ");
        self.message = self.message.replace(&said, "");
        if let Some(help) = &mut self.help {
            *help = help.replace(&said, "");
        }
        self.policy = Some(id.to_string());
    }

    /// The problems `diagnostic` reports about `source` (read from `file`): itself and
    /// the diagnostics related to it, each at the first place it points to.
    pub fn from_diagnostic(file: &str, source: &str, diagnostic: &dyn Diagnostic) -> Vec<Self> {
        let related: Vec<&dyn Diagnostic> = diagnostic
            .related()
            .map(|r| r.collect())
            .unwrap_or_default();
        if !related.is_empty() {
            return related
                .into_iter()
                .flat_map(|d| Self::from_diagnostic(file, source, d))
                .collect();
        }
        let offset = diagnostic
            .labels()
            .and_then(|mut labels| labels.next())
            .map(|label| label.offset());
        let (line, column) = match offset {
            Some(offset) => {
                let (line, column) = line_column(source, offset);
                (Some(line), Some(column))
            }
            None => (None, None),
        };
        vec![Self {
            file: file.to_string(),
            line,
            column,
            policy: None,
            message: diagnostic.to_string(),
            help: diagnostic.help().map(|h| h.to_string()),
        }]
    }
}

/// 1-based line and column (in characters) of byte `offset` in `source`.
pub(super) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = source.get(..offset).unwrap_or(source);
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit_once('\n')
        .map_or(before, |(_, last)| last)
        .chars()
        .count()
        + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns_are_one_based() {
        let text = "ab\ncdé\nf";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 3), (2, 1));
        assert_eq!(line_column(text, 5), (2, 3));
        assert_eq!(line_column(text, text.len() - 1), (3, 1));
    }
}
