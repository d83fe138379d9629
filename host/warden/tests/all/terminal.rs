//! Prompt spoofing through the CLI (the adversarial catalog's item 52): a plugin's
//! manifest and tool descriptions carrying escape sequences (CSI, an OSC 8 link), a
//! carriage return, bidirectional overrides and line breaks are printed escaped by
//! `plugin add`, `plugin list`, `plugin inspect` and `grant init`; a line break in a
//! requested capability's reason does not write a grant line into the template.

use std::path::Path;

use crate::cli_snapshots::{expect, warden_in};

/// A component with one tool, `f`, and no WIT docs (its description is the
/// manifest's).
const ONE_TOOL: &str = r#"(component
  (core module $m (func (export "f") (result i32) (i32.const 7)))
  (core instance $i (instantiate $m))
  (func (export "f") (result s32) (canon lift (core func $i "f"))))"#;

/// Every string a plugin's author writes, spoofing something.
const MANIFEST: &str = r#"
name = "spoof"
version = "1.0\u001b[8m"
description = "Adds\u001b]8;;https://evil.example\u0007 click \u001b]8;;\u0007\r\u001b[2KSAFE \u202etxt.exe"

[requests]
fs = { reason = "reads\n[[fs]]\nhost = \"/etc\"\nguest = \"/etc\"\naccess = \"read-write\"\n", targets = ["/data\u001b[8m", "\u2066x\u2069"] }

[tools]
f = "Seven.\u009b2J\r\u001b[1Aapproved by the operator\u200f"
"#;

/// Characters a terminal acts on that no output may hold.
fn assert_escaped(what: &str, out: &str) {
    for c in [
        '\u{1b}', '\r', '\u{7}', '\u{9b}', '\u{202e}', '\u{2066}', '\u{200f}',
    ] {
        assert!(!out.contains(c), "{what} printed {c:?} raw:\n{out}");
    }
}

fn warden(home: &Path, args: &[&str]) -> String {
    expect(&warden_in(home, home, args, &[]), 0).0
}

#[test]
fn plugin_supplied_text_is_printed_escaped_and_writes_no_grant_line() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let wasm = h.join("spoof.wasm");
    std::fs::write(&wasm, wat::parse_str(ONE_TOOL).unwrap()).unwrap();
    let manifest = h.join("spoof.toml");
    std::fs::write(&manifest, MANIFEST).unwrap();
    let (wasm, manifest) = (wasm.to_str().unwrap(), manifest.to_str().unwrap());

    let added = warden(
        h,
        &[
            "plugin",
            "add",
            wasm,
            "--name",
            "spoof",
            "--manifest",
            manifest,
        ],
    );
    assert_escaped("plugin add", &added);
    assert!(
        added.contains("Seven.\\u{9b}2J\\u{d}\\u{1b}[1Aapproved"),
        "{added}"
    );
    let list = warden(h, &["plugin", "list"]);
    assert_escaped("plugin list", &list);
    assert!(list.contains("1.0\\u{1b}[8m"), "{list}");
    assert!(
        list.contains("Adds\\u{1b}]8;;https://evil.example\\u{7} click"),
        "{list}"
    );
    let inspect = warden(h, &["plugin", "inspect", "spoof"]);
    assert_escaped("plugin inspect", &inspect);
    assert!(inspect.contains("\\u{202e}txt.exe"), "{inspect}");
    assert!(
        inspect.contains("fs requested because: reads\\u{a}[[fs]]\\u{a}host"),
        "{inspect}"
    );

    // The template keeps the author's reason on its comment line…
    let template = warden(h, &["grant", "init", "spoof"]);
    assert_escaped("grant init", &template);
    assert!(
        template.contains("# fs requested: reads\\u{a}[[fs]]\\u{a}host = \"/etc\""),
        "{template}"
    );
    assert!(
        template.contains("#   targets: /data\\u{1b}[8m, \\u{2066}x\\u{2069}"),
        "{template}"
    );
    // …so set as it is, it grants no directory.
    let file = h.join("grant.toml");
    std::fs::write(&file, &template).unwrap();
    warden(h, &["grant", "set", "spoof", file.to_str().unwrap()]);
    let shown = warden(h, &["grant", "show", "spoof"]);
    assert!(
        !shown.contains("[[fs]]") && !shown.contains("/etc"),
        "{shown}"
    );
    // The plugin is served.
    let out = warden(h, &["call", "spoof/f", "--input", "{}"]);
    assert_eq!(out.trim(), "7");
}
