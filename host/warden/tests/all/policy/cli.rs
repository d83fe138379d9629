//! `warden policy check|schema` and `warden call` under a policy file, through the
//! binary: exit codes and what they print.

use std::process::{Command, Output};

use warden::home::{Home, InstalledMeta};
use warden_tests::guests;

fn warden(home: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home)
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_exits_0_on_a_valid_policy_and_2_with_the_place_of_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("warden.toml"),
        "[policy.args]\nv = \"Long\"\n",
    )
    .unwrap();
    let good = dir.path().join("good.cedar");
    std::fs::write(&good, super::http::POLICY).unwrap();
    let out = warden(dir.path(), &["policy", "check", good.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("ok, 8 policies"), "{stdout}");
    assert!(
        stdout.contains("big-echo, no-thirteen, role:admin"),
        "{stdout}"
    );

    let bad = dir.path().join("bad.cedar");
    std::fs::write(
        &bad,
        "permit(principal, action, resource);\n\nforbid(principal == Warden::Usr::\"x\", action, resource);\n",
    )
    .unwrap();
    let out = warden(dir.path(), &["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("bad.cedar:3:"), "{stderr}");
    assert!(stderr.contains("Warden::Usr"), "{stderr}");

    let out = warden(
        dir.path(),
        &["policy", "check", bad.to_str().unwrap(), "--json"],
    );
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["problems"][0]["line"], 3);

    // Without a file: the roles alone, and the home's policy.cedar once it exists.
    let out = warden(dir.path(), &["policy", "check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("no policy file, the roles only: ok"));
    std::fs::write(
        dir.path().join("policy.cedar"),
        "permit(principal, action == Warden::Action::\"nope\", resource);",
    )
    .unwrap();
    let out = warden(dir.path(), &["policy", "check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("policy.cedar:1:"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn schema_prints_the_declared_arguments() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("warden.toml"),
        "[policy.args]\namount = \"Long\"\n",
    )
    .unwrap();
    let out = warden(dir.path(), &["policy", "schema"]);
    assert_eq!(out.status.code(), Some(0));
    let schema = text(&out.stdout);
    assert!(schema.contains("namespace Warden {"), "{schema}");
    assert!(schema.contains("\"amount\"?: Long,"), "{schema}");
    assert!(
        schema.contains("action \"call-tool\" appliesTo"),
        "{schema}"
    );
}

#[test]
fn the_operators_calls_follow_the_home_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let wasm = std::fs::read(guests::TYPES).unwrap();
    let meta = InstalledMeta {
        name: "types".into(),
        digest: warden::plugin::digest(&wasm),
        added_at: 0,
        source: guests::TYPES.into(),
        manifest: None,
        wit_docs: None,
        provenance: None,
    };
    home.install(&meta, &wasm).unwrap();
    // No policy file: the operator may call anything.
    let out = warden(
        dir.path(),
        &["call", "types/echo-u32", "--input", r#"{"v": 13}"#],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    std::fs::write(
        dir.path().join("warden.toml"),
        "[policy.args]\nv = \"Long\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("policy.cedar"), super::http::POLICY).unwrap();
    let out = warden(
        dir.path(),
        &["call", "types/echo-u32", "--input", r#"{"v": 13}"#],
    );
    assert_eq!(out.status.code(), Some(3));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("is forbidden by no-thirteen"), "{stderr}");
    let out = warden(
        dir.path(),
        &["call", "types/echo-u32", "--input", r#"{"v": 500}"#],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("only once a person approves (big-echo, role:admin:call-tool)"),
        "{}",
        text(&out.stderr)
    );
    let out = warden(
        dir.path(),
        &["call", "types/echo-u32", "--input", r#"{"v": 7}"#],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// A tool's annotations come from its author's manifest; policies rely on them, so
/// the operator's grant has the last word (`[annotations.TOOL]`).
#[test]
fn the_operators_grant_overrides_the_authors_annotations() {
    let home = crate::cli_snapshots::Home::with("text", guests::TEXT, Some("text/warden.toml"));
    let h = home.path();
    std::fs::write(
        h.join("policy.cedar"),
        "@id(\"nothing-destructive\")\nforbid(principal, action == Warden::Action::\"call-tool\", resource is Warden::Tool)\nwhen { resource.annotations.destructive };\n",
    )
    .unwrap();
    let call = ["call", "text/word-count", "--input", r#"{"text": "a b"}"#];
    // The manifest says word-count changes nothing.
    let out = warden(h, &call);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // The operator knows better.
    let grant = h.join("text.toml");
    std::fs::write(
        &grant,
        "[annotations.word-count]\ndestructive = true\nread_only = false\n",
    )
    .unwrap();
    let out = warden(h, &["grant", "set", "text", grant.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = warden(h, &call);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("nothing-destructive"),
        "{}",
        text(&out.stderr)
    );
    let out = warden(h, &["plugin", "inspect", "text", "--json"]);
    let inspect: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let word_count = inspect["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "word-count")
        .unwrap();
    assert_eq!(
        word_count["annotations"]["destructive"], true,
        "{word_count}"
    );
    assert_eq!(
        word_count["annotations"]["read_only"], false,
        "{word_count}"
    );
    // The other tools keep the manifest's word.
    let out = warden(h, &["call", "text/detect", "--input", r#"{"text": "42"}"#]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Annotations of a tool the plugin does not have are a mistake, named.
    std::fs::write(&grant, "[annotations.word-cuont]\ndestructive = true\n").unwrap();
    let out = warden(h, &["grant", "set", "text", grant.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no tool \"word-cuont\""),
        "{}",
        text(&out.stderr)
    );
}
