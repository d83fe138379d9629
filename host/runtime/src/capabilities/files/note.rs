//! Noting an open or a change for the call's record, and, when the grant refused it,
//! why: the read-only grant it touched (`… the grant gives /ro read only`), or the
//! host's own permissions on a granted directory.

use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode;

use super::{FileUse, error_name};
use crate::state::CallState;
use warden_config::grant::{Access, Grant};

/// Notes one open or change of `path` (and `to`) in `state` with its `error`, if any,
/// and, when the grant refused it, why (see [`refusal`]).
pub(super) fn note(
    state: &mut CallState,
    op: &'static str,
    path: String,
    to: Option<String>,
    mode: Option<String>,
    error: Option<&ErrorCode>,
) {
    let error = error.map(error_name);
    let denied = match error {
        Some(code @ ("read-only" | "not-permitted" | "access")) => {
            let mut what = format!("{op} {path}");
            match (op, &to, &mode) {
                ("symlink", Some(to), _) => what.push_str(&format!(" (to {to})")),
                (_, Some(to), _) => what.push_str(&format!(" -> {to}")),
                (_, None, Some(mode)) => what.push_str(&format!(" for {mode}")),
                _ => {}
            }
            let mut paths = vec![path.as_str()];
            if op != "symlink"
                && let Some(to) = &to
            {
                paths.push(to);
            }
            let reason = refusal(&state.grant, state.plugin.as_ref(), &what, &paths, code);
            tracing::info!(plugin = %state.plugin, call = state.call_id, %reason, "file system use denied");
            Some(reason)
        }
        _ => None,
    };
    state.files.push(FileUse {
        op,
        path,
        to,
        mode,
        error,
        denied,
    });
}

/// Why `what` (on `paths`) was refused with `code`: the read-only grants it touched,
/// or the host's own permissions when every grant it touched is read-write.
fn refusal(grant: &Grant, plugin: &str, what: &str, paths: &[&str], code: &str) -> String {
    let mut read_only: Vec<&str> = Vec::new();
    for path in paths {
        if let Some(fs) = grant
            .fs
            .iter()
            .filter(|fs| beneath(path, &fs.guest))
            .max_by_key(|fs| fs.guest.len())
            && fs.access == Access::Read
            && !read_only.contains(&fs.guest.as_str())
        {
            read_only.push(&fs.guest);
        }
    }
    if read_only.is_empty() {
        format!(
            "plugin \"{plugin}\": {what} refused ({code}): the host's own permissions on the granted directory do not allow it"
        )
    } else {
        format!(
            "plugin \"{plugin}\": {what} refused ({code}): the grant gives {} read only; set access = \"read-write\" on its [[fs]] entry to allow changes",
            read_only.join(" and ")
        )
    }
}

/// True when guest path `path` is `dir` or inside it.
fn beneath(path: &str, dir: &str) -> bool {
    let dir = dir.trim_end_matches('/');
    path == dir || dir.is_empty() || path.strip_prefix(dir).is_some_and(|r| r.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_the_read_only_grant() {
        let grant: Grant = Grant::parse(
            "[[fs]]\nhost = \"/tmp\"\nguest = \"/ro\"\naccess = \"read\"\n\n[[fs]]\nhost = \"/tmp\"\nguest = \"/rw\"\naccess = \"read-write\"\n",
            "test",
        )
        .unwrap();
        let cross = refusal(
            &grant,
            "p",
            "rename /rw/a -> /ro/b",
            &["/rw/a", "/ro/b"],
            "not-permitted",
        );
        assert!(cross.contains("the grant gives /ro read only"), "{cross}");
        let host = refusal(&grant, "p", "unlink /rw/a", &["/rw/a"], "access");
        assert!(host.contains("the host's own permissions"), "{host}");
        assert!(beneath("/ro", "/ro") && beneath("/ro/a", "/ro/") && beneath("/x", "/"));
        assert!(!beneath("/rox", "/ro"));
    }
}
