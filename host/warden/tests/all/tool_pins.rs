//! Tool definitions pinned by the grant ("rug pulls"): setting a grant records the
//! digest of each tool's definition; an update of the plugin that changes one tool
//! keeps serving the others and withholds the changed one (a clear error, exit 3, and
//! a record) until `warden grant accept-tools` accepts it. The HTTP API's side is in
//! `serve::tool_pins`.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use warden_tests::guests;

use crate::authoring::text;

fn warden(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running warden")
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn manifest() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../plugins/text/warden.toml"
    ))
    .unwrap()
}

/// Adds the `text` component as `text` with `manifest`.
fn add(home: &Path, dir: &Path, manifest: &str) -> String {
    let path = dir.join("warden.toml");
    std::fs::write(&path, manifest).unwrap();
    ok(&warden(
        home,
        &[
            "plugin",
            "add",
            guests::TEXT,
            "--name",
            "text",
            "--manifest",
            path.to_str().unwrap(),
        ],
    ))
}

fn inspect(home: &Path) -> Value {
    serde_json::from_str(&ok(&warden(home, &["plugin", "inspect", "text", "--json"]))).unwrap()
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_changed_tool_is_withheld_until_an_operator_accepts_it() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = home.path();
    add(home, dir.path(), &manifest());

    // Setting a grant records every tool's definition.
    let grant = dir.path().join("grant.toml");
    std::fs::write(&grant, "plugin = \"text\"\n").unwrap();
    ok(&warden(
        home,
        &["grant", "set", "text", grant.to_str().unwrap()],
    ));
    let shown = ok(&warden(home, &["grant", "show", "text"]));
    assert!(shown.contains("[tool_definitions]"), "{shown}");
    assert!(shown.contains("word-count = \"sha256:"), "{shown}");
    let before = inspect(home);
    assert!(names(&before["tools"]).contains(&"word-count".to_string()));
    assert_eq!(before["withheld_tools"], serde_json::json!([]));

    // An update says word-count now changes things: a changed definition.
    let changed = manifest().replacen(
        "[tools.word-count]\nread_only = true\nopen_world = false",
        "[tools.word-count]\nread_only = false\ndestructive = true\nopen_world = false",
        1,
    );
    assert_ne!(changed, manifest(), "the manifest's word-count entry moved");
    add(home, dir.path(), &changed);

    let after = inspect(home);
    assert!(!names(&after["tools"]).contains(&"word-count".to_string()));
    assert_eq!(names(&after["withheld_tools"]), ["word-count"]);
    assert_eq!(
        after["withheld_tools"][0]["accepted"],
        before["grant"]["tool_definitions"]["word-count"]
    );

    // The unchanged tools serve; the changed one is refused, saying what to do.
    let diff = warden(
        home,
        &[
            "call",
            "text/diff",
            "--input",
            r#"{"old": "x\n", "new": "y\n"}"#,
        ],
    );
    ok(&diff);
    let refused = warden(
        home,
        &["call", "text/word-count", "--input", r#"{"text": "a b"}"#],
    );
    assert_eq!(refused.status.code(), Some(3), "{}", text(&refused.stderr));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("withheld"), "{stderr}");
    assert!(
        stderr.contains("warden grant accept-tools text --tool word-count"),
        "{stderr}"
    );
    // On the record.
    let records = ok(&warden(
        home,
        &["audit", "query", "--tool", "word-count", "--json"],
    ));
    let last: Value = serde_json::from_str(records.lines().last().unwrap()).unwrap();
    assert_eq!(last["kind"], "tool.call", "{last}");
    assert!(last.to_string().contains("withheld"), "{last}");

    // Accepting it serves it again, and says what changed.
    let accepted = ok(&warden(
        home,
        &["grant", "accept-tools", "text", "--tool", "word-count"],
    ));
    assert!(
        accepted.contains("accepted text/word-count: changed, sha256:"),
        "{accepted}"
    );
    ok(&warden(
        home,
        &["call", "text/word-count", "--input", r#"{"text": "a b"}"#],
    ));
    assert_eq!(inspect(home)["withheld_tools"], serde_json::json!([]));
    let again = ok(&warden(home, &["grant", "accept-tools", "text"]));
    assert!(again.contains("nothing to change"), "{again}");
    let unknown = warden(home, &["grant", "accept-tools", "text", "--tool", "nope"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("has no tool \"nope\""));
}

#[test]
fn a_malformed_pin_and_accepting_without_a_grant_are_refused_with_what_to_do() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let home = home.path();
    add(home, dir.path(), &manifest());

    // No grant: nothing is withheld, and accept-tools says how to set one.
    let refused = warden(home, &["grant", "accept-tools", "text"]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("has no grant") && stderr.contains("warden grant set text"),
        "{stderr}"
    );

    // A pin that is not a digest is refused by name, and nothing is set.
    let grant = dir.path().join("grant.toml");
    std::fs::write(
        &grant,
        "plugin = \"text\"\n[tool_definitions]\nword-count = \"md5:abc\"\n",
    )
    .unwrap();
    let refused = warden(home, &["grant", "set", "text", grant.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.contains("[tool_definitions] \"word-count\""),
        "{stderr}"
    );
    let shown = ok(&warden(home, &["grant", "show", "text"]));
    assert!(shown.contains("has no grant"), "{shown}");
}
