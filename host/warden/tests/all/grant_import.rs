//! `warden grant import`: a Wassette policy becomes a grant for review; what does not
//! map is named, bad YAML is an error with the file and the line, `--set` applies it.

use std::path::Path;

use warden::grant::Grant;
use warden_tests::guests;

use crate::cli_snapshots::{Home, expect, warden_in};

fn fixtures() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/all/fixtures"))
}

#[test]
fn grant_import_converts_what_maps_and_names_the_rest() {
    let home = Home::with("gh", guests::HOSTILE, None);
    let out = warden_in(
        fixtures(),
        home.path(),
        &["grant", "import", "gh", "wassette-policy.yaml"],
        &[("GITHUB_TOKEN", "not-read-without-the-flag")],
    );
    let (grant, report) = expect(&out, 0);
    insta::assert_snapshot!("grant_import_toml", home.redact(&grant));
    insta::assert_snapshot!("grant_import_report", home.redact(&report));
    assert!(!grant.contains("not-read-without-the-flag"), "{grant}");

    // What it prints is a grant as it stands, and the one it reports.
    let parsed = Grant::parse(&grant, "gh").unwrap();
    assert_eq!(parsed.digest.as_deref(), Some(home.digest.as_str()));
    assert_eq!(parsed.fs.len(), 2);
    assert_eq!(
        parsed.net.unwrap().allow,
        ["https://api.github.com", "https://*.githubusercontent.com"]
    );
    assert!(parsed.env.vars.is_empty());
    assert_eq!(parsed.limits.memory_mb, 512);
    assert!(report.contains(
        "not converted: permissions.network.allow[2] cidr 10.0.0.0/8 — Warden allows hosts, not address ranges"
    ));
}

#[test]
fn grant_import_of_bad_yaml_names_the_file_and_the_line() {
    let home = Home::with("gh", guests::HOSTILE, None);
    std::fs::write(
        home.path().join("policy.yaml"),
        "version: \"1.0\"\npermissions:\n  storage:\n    allow:\n      - uri: \"fs:///srv\"\n        access: read\n",
    )
    .unwrap();
    let (_, err) = home.run(&["grant", "import", "gh", "policy.yaml"], 2);
    insta::assert_snapshot!("grant_import_bad_yaml", err);

    std::fs::write(
        home.path().join("tabs.yaml"),
        "version: \"1.0\"\npermissions: [\n",
    )
    .unwrap();
    let (_, err) = home.run(&["grant", "import", "gh", "tabs.yaml"], 2);
    assert!(
        err.starts_with("error: Wassette policy tabs.yaml: "),
        "{err}"
    );
    assert!(err.contains("line "), "{err}");

    std::fs::write(home.path().join("v2.yaml"), "version: \"2.0\"\n").unwrap();
    let (_, err) = home.run(&["grant", "import", "gh", "v2.yaml"], 2);
    assert!(
        err.contains("reads Wassette policies of version 1.x"),
        "{err}"
    );

    let (_, err) = home.run(&["grant", "import", "gh", "missing.yaml"], 2);
    assert!(err.contains("reading policy missing.yaml"), "{err}");
    let (_, err) = home.run(&["grant", "import", "nope", "policy.yaml"], 2);
    assert!(err.contains("no plugin named \"nope\""), "{err}");
}

#[test]
fn grant_import_set_applies_it_as_grant_set_does() {
    let home = Home::with("hostile", guests::HOSTILE, None);
    let h = home.path();
    // Inside the home, only its workspace/ may be granted.
    let data = h.join("workspace/data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        h.join("policy.yaml"),
        format!(
            "version: \"1.0\"\npermissions:\n  storage:\n    allow:\n      - uri: \"fs://{}/**\"\n        access: [read]\n  environment:\n    allow:\n      - key: GREETING\n      - key: UNSET_IN_THIS_TEST\n  resources:\n    limits:\n      memory: 64Mi\n",
            data.display()
        ),
    )
    .unwrap();
    let env = [("GREETING", "hej")];
    let args = [
        "grant",
        "import",
        "hostile",
        "policy.yaml",
        "--env-from-host",
        "--set",
        "--out",
        "hostile.toml",
    ];
    let (out, report) = expect(&warden_in(h, h, &args, &env), 0);
    assert!(
        out.starts_with("grant of hostile set from hostile.toml"),
        "{out}"
    );
    assert!(out.contains("env  GREETING"), "{out}");
    assert!(
        report
            .contains("to fill in: [env.vars] UNSET_IN_THIS_TEST (written commented out): not set"),
        "{report}"
    );
    let written = std::fs::read_to_string(h.join("hostile.toml")).unwrap();
    assert!(written.contains("\"GREETING\" = \"hej\""), "{written}");
    assert!(
        written.contains("# \"UNSET_IN_THIS_TEST\" = \"\""),
        "{written}"
    );

    let (value, _) = home.run(
        &["call", "hostile/env", "--input", r#"{"name": "GREETING"}"#],
        0,
    );
    assert_eq!(value.trim(), "\"hej\"");
    let (shown, _) = home.run(&["grant", "show", "hostile"], 0);
    assert!(shown.contains("memory_mb = 64"), "{shown}");
    assert!(shown.contains("access = \"read\""), "{shown}");

    // It never overwrites, and sets nothing when it cannot write.
    let (_, err) = expect(&warden_in(h, h, &args, &env), 2);
    assert!(err.contains("writing hostile.toml"), "{err}");

    // Without --out, --set goes through a file of its own.
    let (out, _) = expect(
        &warden_in(
            h,
            h,
            &["grant", "import", "hostile", "policy.yaml", "--set"],
            &[],
        ),
        0,
    );
    assert!(out.starts_with("grant of hostile set from "), "{out}");
    let (value, _) = home.run(
        &["call", "hostile/env", "--input", r#"{"name": "GREETING"}"#],
        0,
    );
    assert_eq!(value.trim(), "null");
}
