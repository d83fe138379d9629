//! Which directories this plugin may use (its WASI preopens) and how a path given by a
//! caller maps onto them.

use wasip2::filesystem::preopens;

/// The text every tool answers with when the plugin has no directory at all.
pub(crate) const NO_GRANT: &str = "no directory is granted to this plugin: \
an operator grants one with an [[fs]] entry (host, guest, access) in the plugin's grant";

/// The guest paths of the granted directories, e.g. `/data`.
pub(crate) struct Roots(Vec<String>);

impl Roots {
    /// The directories the host preopened for this call; an error when there are none.
    pub(crate) fn granted() -> Result<Self, String> {
        let names: Vec<String> = preopens::get_directories()
            .into_iter()
            .map(|(_descriptor, name)| name)
            .collect();
        Self::new(names)
    }

    /// Roots from a list of guest paths; an error when the list is empty.
    pub(crate) fn new(names: Vec<String>) -> Result<Self, String> {
        if names.is_empty() {
            return Err(NO_GRANT.to_owned());
        }
        Ok(Self(names))
    }

    pub(crate) fn names(&self) -> &[String] {
        &self.0
    }

    /// Maps `path` to a full guest path under one of the roots.
    ///
    /// Relative paths are taken relative to the first root. `..` components are
    /// refused here for a clear message (the host's sandbox refuses escapes anyway).
    pub(crate) fn resolve(&self, path: &str) -> Result<String, String> {
        let path = path.trim();
        if path.is_empty() {
            return Err(format!(
                "empty path: give a path under one of the granted directories ({})",
                self.0.join(", ")
            ));
        }
        if path.split('/').any(|part| part == "..") {
            return Err(format!(
                "{path}: `..` is not allowed; give a path under one of the granted directories ({})",
                self.0.join(", ")
            ));
        }
        let full = if path.starts_with('/') {
            path.to_owned()
        } else {
            join(&self.0[0], path)
        };
        let full = normalize(&full);
        if self.0.iter().any(|root| under(&full, root)) {
            Ok(full)
        } else {
            Err(format!(
                "{path}: outside the directories granted to this plugin ({})",
                self.0.join(", ")
            ))
        }
    }
}

fn join(root: &str, rel: &str) -> String {
    if root == "." {
        rel.to_owned()
    } else {
        format!("{}/{rel}", root.trim_end_matches('/'))
    }
}

/// Removes `.` components, doubled and trailing slashes.
fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let parts: Vec<&str> = path
        .split('/')
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    match (absolute, parts.is_empty()) {
        (true, _) => format!("/{}", parts.join("/")),
        (false, true) => ".".to_owned(),
        (false, false) => parts.join("/"),
    }
}

fn under(path: &str, root: &str) -> bool {
    let root = normalize(root);
    if root == "/" {
        return path.starts_with('/');
    }
    if root == "." {
        return !path.starts_with('/');
    }
    path == root
        || path
            .strip_prefix(&root)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots() -> Roots {
        Roots::new(vec!["/data".into(), "/reports/".into()]).unwrap()
    }

    #[test]
    fn no_roots_says_how_to_grant() {
        let err = Roots::new(vec![]).err().unwrap();
        assert!(err.contains("no directory is granted"), "{err}");
        assert!(err.contains("[[fs]]"), "{err}");
    }

    #[test]
    fn absolute_paths_under_a_root() {
        let r = roots();
        assert_eq!(r.resolve("/data").unwrap(), "/data");
        assert_eq!(r.resolve("/data/a//b/./c.txt").unwrap(), "/data/a/b/c.txt");
        assert_eq!(r.resolve("/reports/q3").unwrap(), "/reports/q3");
    }

    #[test]
    fn relative_paths_use_the_first_root() {
        assert_eq!(roots().resolve("notes/a.md").unwrap(), "/data/notes/a.md");
    }

    #[test]
    fn paths_outside_are_refused_with_the_path() {
        let err = roots().resolve("/etc/passwd").unwrap_err();
        assert!(err.starts_with("/etc/passwd: outside"), "{err}");
        assert!(err.contains("/data, /reports/"), "{err}");
        let err = roots().resolve("/datax/a").unwrap_err();
        assert!(err.contains("outside"), "{err}");
        let err = roots().resolve("/data/../etc").unwrap_err();
        assert!(err.contains("`..`"), "{err}");
    }
}
