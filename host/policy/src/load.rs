//! Where policies come from and how they are checked: the roles of `warden.toml`
//! (translated, see [`super::roles`]), the policy file (`policy.cedar` in the home, or
//! `[policy] file`), and the arguments `[policy.args]` declares (see [`super::schema`]).
//!
//! A policy of the file is named by its `@id("…")` annotation, else by where it starts
//! (`policy.cedar:12`); those names are what decisions and audit records cite. A permit
//! annotated `@approval("required")` allows only once a person approves.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::str::FromStr as _;

use cedar_policy::{Policy, PolicyId, PolicySet, Schema, ValidationMode, Validator};

use super::diagnostics::{Problem, line_column};
use super::schema::{ArgType, schema_text};
use crate::roles::RoleConfig;

/// The annotation that makes a permit require approval, and its only value.
pub const APPROVAL: (&str, &str) = ("approval", "required");

/// A policy file's text and the name it is shown by.
#[derive(Clone, Debug)]
pub struct PolicyFile {
    /// The path, as errors show it.
    pub path: String,
    /// Its Cedar text.
    pub text: String,
}

impl PolicyFile {
    /// Reads the policy file at `path`.
    pub fn read(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Ok(Self {
            path: path.display().to_string(),
            text,
        })
    }

    /// The short name policy ids use: the file name.
    fn short_name(&self) -> &str {
        Path::new(&self.path)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(&self.path)
    }
}

/// Everything the engine is built from.
#[derive(Clone, Debug, Default)]
pub struct PolicySource {
    /// The roles (built-in and configured), translated into permits.
    pub roles: BTreeMap<String, RoleConfig>,
    /// The arguments policies may read (`[policy.args]`).
    pub args: BTreeMap<String, ArgType>,
    /// The operator's policy file, if any.
    pub file: Option<PolicyFile>,
}

/// Why policies could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("reading the policy file {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The policies are malformed or do not fit the schema.
    #[error("{}", render(problems))]
    Invalid { problems: Vec<Problem> },
}

fn render(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(Problem::to_string).collect();
    format!(
        "{} problem{} in the access policy:\n{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        lines.join("\n")
    )
}

/// Checked policies, ready for the authorizer.
pub(super) struct Loaded {
    pub(super) schema: Schema,
    pub(super) policies: PolicySet,
    /// Permits that require approval.
    pub(super) approval: BTreeSet<PolicyId>,
    /// Validation warnings (a policy that can never apply, …).
    pub(super) warnings: Vec<Problem>,
}

impl PolicySource {
    /// Builds the schema, translates the roles, parses and validates the file.
    pub(super) fn load(&self) -> Result<Loaded, PolicyError> {
        let invalid = |problems| PolicyError::Invalid { problems };
        for name in self.args.keys() {
            if name.is_empty()
                || name
                    .chars()
                    .any(|c| c == '"' || c == '\\' || c.is_control())
            {
                return Err(invalid(vec![Problem::new(
                    "warden.toml",
                    format!(
                        "[policy.args] {name:?}: an argument name must be non-empty, without quotes, backslashes or control characters"
                    ),
                )]));
            }
        }
        let schema_src = schema_text(&self.args);
        let schema = Schema::from_cedarschema_str(&schema_src)
            .map(|(schema, _)| schema)
            .map_err(|e| invalid(Problem::from_diagnostic("<schema>", &schema_src, &e)))?;
        let validator = Validator::new(schema.clone());
        let mut policies = PolicySet::new();
        for (id, text) in super::roles::role_policies(&self.roles) {
            let policy = Policy::parse(Some(PolicyId::new(&id)), &text)
                .map_err(|e| invalid(Problem::from_diagnostic(&id, &text, &e)))?;
            policies
                .add(policy)
                .map_err(|e| invalid(vec![Problem::new(&id, e.to_string())]))?;
        }
        let roles_check = validator.validate(&policies, ValidationMode::Strict);
        if !roles_check.validation_passed() {
            let problems = roles_check
                .validation_errors()
                .map(|e| Problem::new(&format!("[roles] {}", e.policy_id()), e.to_string()))
                .collect();
            return Err(invalid(problems));
        }
        let mut approval = BTreeSet::new();
        let mut warnings = Vec::new();
        if let Some(file) = &self.file {
            let own = parse_file(file)?;
            let check = validator.validate(&own, ValidationMode::Strict);
            let problems: Vec<Problem> = check
                .validation_errors()
                .flat_map(|e| {
                    let mut problems = Problem::from_diagnostic(&file.path, &file.text, e);
                    for p in &mut problems {
                        p.set_policy(e.policy_id().as_ref());
                    }
                    problems
                })
                .collect();
            if !problems.is_empty() {
                return Err(invalid(problems));
            }
            for warning in check.validation_warnings() {
                let mut found = Problem::from_diagnostic(&file.path, &file.text, warning);
                for p in &mut found {
                    p.set_policy(warning.policy_id().as_ref());
                }
                warnings.extend(found);
            }
            for policy in own.policies() {
                if policy.annotation(APPROVAL.0).is_some() {
                    approval.insert(policy.id().clone());
                }
                policies
                    .add(policy.clone())
                    .map_err(|e| invalid(vec![Problem::new(&file.path, e.to_string())]))?;
            }
        }
        Ok(Loaded {
            schema,
            policies,
            approval,
            warnings,
        })
    }
}

/// Parses `file`, names its policies and checks their annotations.
fn parse_file(file: &PolicyFile) -> Result<PolicySet, PolicyError> {
    let parsed = PolicySet::from_str(&file.text).map_err(|e| PolicyError::Invalid {
        problems: Problem::from_diagnostic(&file.path, &file.text, &e),
    })?;
    if parsed.templates().next().is_some() {
        return Err(PolicyError::Invalid {
            problems: vec![Problem::new(
                &file.path,
                "templates (policies with ?principal or ?resource) are not supported; write the entity in",
            )],
        });
    }
    // Cedar names them policy0, policy1… in the order they appear.
    let mut parsed: Vec<&Policy> = parsed.policies().collect();
    parsed.sort_by_key(|p| {
        p.id()
            .to_string()
            .trim_start_matches("policy")
            .parse::<usize>()
            .unwrap_or(usize::MAX)
    });
    let mut out = PolicySet::new();
    let mut problems = Vec::new();
    let mut seen = BTreeMap::new();
    let mut from = 0;
    for policy in parsed {
        // Where it starts: its own text, found from where the previous one ended.
        let text = policy.to_string();
        let at = file.text[from..].find(text.as_str()).map(|i| from + i);
        let (line, column) = at.map_or((0, 0), |at| line_column(&file.text, at));
        if let Some(at) = at {
            from = at + text.len();
        }
        let problem = |message: String| Problem {
            line: at.map(|_| line),
            column: at.map(|_| column),
            ..Problem::new(&file.path, message)
        };
        let id = match policy.annotation("id") {
            Some(id) if id.starts_with("role:") => {
                problems.push(problem(format!(
                    "@id({id:?}): ids starting with \"role:\" are the roles' own; choose another"
                )));
                continue;
            }
            Some(id) => id.to_string(),
            None => format!("{}:{line}", file.short_name()),
        };
        if let Some(first) = seen.insert(id.clone(), line) {
            problems.push(problem(format!(
                "two policies are named {id:?} (the other at line {first}); give each its own @id"
            )));
            continue;
        }
        match policy.annotation(APPROVAL.0) {
            None => {}
            Some(_) if policy.effect() == cedar_policy::Effect::Forbid => {
                problems.push(problem(format!(
                    "@{}(…) on a forbid: only a permit can require approval",
                    APPROVAL.0
                )));
            }
            Some(v) if v == APPROVAL.1 => {}
            Some(v) => problems.push(problem(format!(
                "@{}({v:?}): the only value is {:?}",
                APPROVAL.0, APPROVAL.1
            ))),
        }
        if let Err(err) = out.add(policy.new_id(PolicyId::new(&id))) {
            problems.push(problem(err.to_string()));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(PolicyError::Invalid { problems })
    }
}
