//! The `warden` command as a user runs it: output, errors and exit codes.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use warden_tests::guests;

fn warden(home: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("running warden")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn expect(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

fn home_with(plugins: &[(&str, &str)]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    for (name, path) in plugins {
        let out = warden(home.path(), &["plugin", "add", path, "--name", name]);
        expect(&out, 0);
    }
    home
}

#[test]
fn add_list_inspect_remove() {
    let home = tempfile::tempdir().unwrap();
    let out = warden(
        home.path(),
        &["plugin", "add", guests::TEXT, "--name", "text"],
    );
    expect(&out, 0);
    let text = stdout(&out);
    assert!(text.starts_with("added text (sha256:"), "{text}");
    assert!(text.contains("text/word-count  Counts words"), "{text}");
    assert!(text.contains("text/transform.case-convert"), "{text}");

    let out = warden(home.path(), &["plugin", "list", "--json"]);
    expect(&out, 0);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["name"], "text");

    let out = warden(home.path(), &["plugin", "inspect", "text", "--json"]);
    expect(&out, 0);
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let tools = doc["tools"].as_array().unwrap();
    let wc = tools.iter().find(|t| t["name"] == "word-count").unwrap();
    assert_eq!(wc["id"], "text/word-count");
    assert_eq!(wc["input_schema"]["required"][0], "text");
    let imports: Vec<&str> = doc["imports"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        imports
            .iter()
            .any(|i| i.starts_with("wasi:cli/environment@")),
        "{imports:?}"
    );

    let out = warden(home.path(), &["plugin", "inspect", "text"]);
    expect(&out, 0);
    assert!(stdout(&out).contains("grant\n  none"), "{}", stdout(&out));

    expect(&warden(home.path(), &["plugin", "remove", "text"]), 0);
    let out = warden(home.path(), &["call", "text/word-count", "--input", "{}"]);
    expect(&out, 2);
    assert!(
        stderr(&out).contains("no plugin named \"text\""),
        "{}",
        stderr(&out)
    );
}

#[test]
fn call_exit_codes() {
    let home = home_with(&[
        ("text", guests::TEXT),
        ("fetch", guests::FETCH),
        ("hostile", guests::HOSTILE),
    ]);
    let h = home.path();

    let out = warden(
        h,
        &[
            "call",
            "text/word-count",
            "--input",
            r#"{"text": "one two"}"#,
        ],
    );
    expect(&out, 0);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["words"], 2);

    let out = warden(
        h,
        &[
            "call",
            "text/json-query",
            "--input",
            r#"{"document": "{}", "path": "a"}"#,
        ],
    );
    expect(&out, 1);
    assert!(
        stderr(&out).contains("text/json-query failed: "),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());

    let out = warden(
        h,
        &["call", "hostile/panic", "--input", r#"{"msg": "kaboom"}"#],
    );
    expect(&out, 1);
    assert!(stderr(&out).contains("kaboom"), "{}", stderr(&out));

    let out = warden(h, &["call", "text/word-count", "--input", r#"{"text": 5}"#]);
    expect(&out, 2);
    assert!(
        stderr(&out).contains("argument \"text\": expected string"),
        "{}",
        stderr(&out)
    );

    let out = warden(h, &["call", "text/word-count", "--input", "{not json"]);
    expect(&out, 2);
    assert!(
        stderr(&out).contains("--input is not valid JSON"),
        "{}",
        stderr(&out)
    );

    let out = warden(h, &["call", "text/nope"]);
    expect(&out, 2);
    assert!(
        stderr(&out).contains("has no tool \"nope\""),
        "{}",
        stderr(&out)
    );

    let out = warden(h, &["call", "word-count"]);
    expect(&out, 2);
    assert!(stderr(&out).contains("PLUGIN/TOOL"), "{}", stderr(&out));

    let out = warden(
        h,
        &[
            "call",
            "fetch/get",
            "--input",
            r#"{"url": "http://127.0.0.1:9/"}"#,
        ],
    );
    expect(&out, 3);
    assert!(stderr(&out).contains("net denied"), "{}", stderr(&out));
}

#[test]
fn input_from_a_file() {
    let home = home_with(&[("text", guests::TEXT)]);
    let file = home.path().join("args.json");
    std::fs::write(&file, r#"{"text": "a b c"}"#).unwrap();
    let out = warden(
        home.path(),
        &[
            "call",
            "text/word-count",
            "--input-file",
            file.to_str().unwrap(),
        ],
    );
    expect(&out, 0);
    let value: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(value["words"], 3);
}

#[test]
fn a_broken_replacement_is_refused_and_the_old_plugin_stays() {
    let home = home_with(&[("text", guests::TEXT)]);
    let bad = home.path().join("broken.wasm");
    std::fs::write(&bad, b"\0asm\x0d\0\x01\0garbage").unwrap();
    let out = warden(
        home.path(),
        &["plugin", "add", bad.to_str().unwrap(), "--name", "text"],
    );
    expect(&out, 2);
    assert!(
        stderr(&out).contains("plugin \"text\": malformed component"),
        "{}",
        stderr(&out)
    );
    let out = warden(
        home.path(),
        &[
            "call",
            "text/word-count",
            "--input",
            r#"{"text": "still here"}"#,
        ],
    );
    expect(&out, 0);
}

#[test]
fn adding_the_same_name_replaces() {
    let home = home_with(&[("thing", guests::TEXT)]);
    let out = warden(
        home.path(),
        &["plugin", "add", guests::COUNTER, "--name", "thing"],
    );
    expect(&out, 0);
    let out = warden(home.path(), &["call", "thing/bump"]);
    expect(&out, 0);
    assert_eq!(stdout(&out).trim(), "1");
    let out = warden(
        home.path(),
        &["plugin", "add", guests::COUNTER, "--name", "Bad Name"],
    );
    expect(&out, 2);
    assert!(
        stderr(&out).contains("invalid plugin name"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn grants_from_the_command_line() {
    let home = home_with(&[("hostile", guests::HOSTILE)]);
    let h = home.path();
    let out = warden(h, &["grant", "show", "hostile"]);
    expect(&out, 0);
    assert!(stdout(&out).contains("has no grant"), "{}", stdout(&out));
    assert!(stdout(&out).contains("memory_mb = 128"), "{}", stdout(&out));

    let bad = h.join("bad.toml");
    std::fs::write(&bad, "[env]\nvars = { A = \"1\" }\n\n[nett]\nallow = []\n").unwrap();
    let out = warden(h, &["grant", "set", "hostile", bad.to_str().unwrap()]);
    expect(&out, 2);
    let err = stderr(&out);
    assert!(err.contains("bad.toml"), "{err}");
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("unknown field `nett`"), "{err}");

    let good = h.join("good.toml");
    std::fs::write(
        &good,
        "[env]\nvars = { GREETING = \"hej\" }\n\n[limits]\ntimeout_ms = 250\n",
    )
    .unwrap();
    let out = warden(h, &["grant", "set", "hostile", good.to_str().unwrap()]);
    expect(&out, 0);
    assert!(stdout(&out).contains("env  GREETING"), "{}", stdout(&out));
    let out = warden(
        h,
        &["call", "hostile/env", "--input", r#"{"name": "GREETING"}"#],
    );
    expect(&out, 0);
    assert_eq!(stdout(&out).trim(), "\"hej\"");
    let out = warden(h, &["call", "hostile/loop-forever"]);
    expect(&out, 1);
    assert!(stderr(&out).contains("250 ms"), "{}", stderr(&out));

    let out = warden(h, &["grant", "show", "hostile"]);
    expect(&out, 0);
    assert!(
        stdout(&out).contains("timeout_ms = 250"),
        "{}",
        stdout(&out)
    );

    // Replacing the component keeps the grant; removing the plugin removes it.
    expect(
        &warden(h, &["plugin", "add", guests::HOSTILE, "--name", "hostile"]),
        0,
    );
    let out = warden(
        h,
        &["call", "hostile/env", "--input", r#"{"name": "GREETING"}"#],
    );
    assert_eq!(stdout(&out).trim(), "\"hej\"");
    expect(&warden(h, &["plugin", "remove", "hostile"]), 0);
    expect(
        &warden(h, &["plugin", "add", guests::HOSTILE, "--name", "hostile"]),
        0,
    );
    let out = warden(
        h,
        &["call", "hostile/env", "--input", r#"{"name": "GREETING"}"#],
    );
    assert_eq!(stdout(&out).trim(), "null");
}

#[test]
fn a_pin_that_does_not_match_is_said_with_every_call() {
    let home = home_with(&[("hostile", guests::HOSTILE)]);
    let h = home.path();
    let pinned = h.join("pinned.toml");
    let pin = format!("sha256:{}", "ab".repeat(32));
    std::fs::write(
        &pinned,
        format!("digest = \"{pin}\"\n[env]\nvars = {{ X = \"1\" }}\n"),
    )
    .unwrap();
    expect(
        &warden(h, &["grant", "set", "hostile", pinned.to_str().unwrap()]),
        0,
    );
    let out = warden(h, &["call", "hostile/env", "--input", r#"{"name": "X"}"#]);
    expect(&out, 0);
    assert_eq!(stdout(&out).trim(), "null");
    assert!(
        stderr(&out).contains("runs with no capabilities"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&pin), "{}", stderr(&out));
}

#[test]
fn grant_init_writes_a_reviewable_grant_that_grants_nothing() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    // A plugin's manifest, kept outside the home (whose warden.toml is the server's).
    let manifest_dir = tempfile::tempdir().unwrap();
    let manifest = manifest_dir.path().join("warden.toml");
    std::fs::write(
        &manifest,
        "name = \"hostile\"\n[requests]\nfs = { reason = \"reads what you point it at\" }\nnet = { reason = \"calls home\", targets = [\"https://example.com\"] }\n",
    )
    .unwrap();
    let out = warden(
        h,
        &[
            "plugin",
            "add",
            guests::HOSTILE,
            "--manifest",
            manifest.to_str().unwrap(),
        ],
    );
    expect(&out, 0);
    let file = h.join("hostile.toml");
    let out = warden(
        h,
        &["grant", "init", "hostile", "--out", file.to_str().unwrap()],
    );
    expect(&out, 0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("# fs requested: reads what you point it at"),
        "{text}"
    );
    assert!(text.contains("# [[fs]]"), "{text}");
    assert!(text.contains("# [net]\n# allow = ["), "{text}");
    assert!(text.contains("digest = \"sha256:"), "{text}");
    // As written it parses and grants nothing but the pin and the limits.
    let grant = warden::grant::Grant::parse(&text, "hostile").unwrap();
    assert!(grant.fs.is_empty() && grant.env.vars.is_empty());
    expect(
        &warden(h, &["grant", "set", "hostile", file.to_str().unwrap()]),
        0,
    );
    // It never overwrites.
    let out = warden(
        h,
        &["grant", "init", "hostile", "--out", file.to_str().unwrap()],
    );
    expect(&out, 2);
}

#[test]
fn grant_init_writes_models_and_tools_sections_that_grant_set_accepts() {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let manifest_dir = tempfile::tempdir().unwrap();
    let manifest = manifest_dir.path().join("warden.toml");
    std::fs::write(
        &manifest,
        "name = \"hostile\"\n[requests]\nmodels = { reason = \"drafts replies\", targets = [\"smart\", \"fast\"] }\ntools = { reason = \"searches notes\", targets = [\"notes/search\", \"refunds/*\"] }\n",
    )
    .unwrap();
    let out = warden(
        h,
        &[
            "plugin",
            "add",
            guests::HOSTILE,
            "--manifest",
            manifest.to_str().unwrap(),
        ],
    );
    expect(&out, 0);
    let file = h.join("hostile.toml");
    let out = warden(
        h,
        &["grant", "init", "hostile", "--out", file.to_str().unwrap()],
    );
    expect(&out, 0);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("cannot grant"), "{text}");
    assert!(
        text.contains("# models requested: drafts replies\n#   targets: smart, fast\n# [models]\n# routes = [\"smart\", \"fast\"]"),
        "{text}"
    );
    assert!(text.contains("\n# budget = {"), "{text}");
    assert!(
        text.contains("# tools requested: searches notes\n#   targets: notes/search, refunds/*\n# [tools]\n# allow = [\"notes/search\", \"refunds/*\"]"),
        "{text}"
    );
    // As written it grants neither.
    let grant = warden::grant::Grant::parse(&text, "hostile").unwrap();
    assert!(grant.models.is_none() && grant.tools.is_none(), "{grant:?}");

    // Uncommented, both sections parse as a grant with what the manifest requested…
    let uncommented: String = text
        .lines()
        .map(|line| {
            let section = ["[models]", "routes = ", "budget = ", "[tools]", "allow = "];
            match line.strip_prefix("# ") {
                Some(rest) if section.iter().any(|s| rest.starts_with(s)) => rest,
                _ => line,
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let grant = warden::grant::Grant::parse(&uncommented, "hostile").unwrap();
    let models = grant.models.expect("a [models] section");
    assert_eq!(models.routes, ["smart", "fast"]);
    assert_eq!(models.budget.tokens_per_day, Some(200_000));
    assert_eq!(models.budget.cost_per_day, Some(1.0));
    let tools = grant.tools.expect("a [tools] section");
    assert_eq!(tools.allow, ["notes/search", "refunds/*"]);
    // …and `warden grant set` accepts it.
    let edited = h.join("hostile-edited.toml");
    std::fs::write(&edited, &uncommented).unwrap();
    expect(
        &warden(h, &["grant", "set", "hostile", edited.to_str().unwrap()]),
        0,
    );
}

#[test]
fn memory_from_the_command_line_and_the_notes_plugin() {
    let home = home_with(&[("notes", guests::NOTES)]);
    let h = home.path();
    let grant = h.join("notes.toml");
    std::fs::write(&grant, "[memory]\nnotes = \"read-write\"\n").unwrap();
    expect(
        &warden(h, &["grant", "set", "notes", grant.to_str().unwrap()]),
        0,
    );
    let out = warden(
        h,
        &[
            "call",
            "notes/remember",
            "--input",
            r#"{"text": "the ferry leaves at noon", "tags": ["travel"]}"#,
        ],
    );
    expect(&out, 0);
    assert_eq!(stdout(&out).trim(), "\"n1\"");
    // The operator sees what the plugin stored, and can add to it.
    let out = warden(h, &["memory", "search", "notes", "ferry"]);
    expect(&out, 0);
    assert!(stdout(&out).contains("n1") && stdout(&out).contains("[ferry]"));
    expect(
        &warden(
            h,
            &[
                "memory",
                "put",
                "notes",
                "n9",
                "ferry tickets are in the drawer",
                "--document",
                "--metadata",
                r#"{"tags": ["home"]}"#,
            ],
        ),
        0,
    );
    let out = warden(
        h,
        &["call", "notes/search", "--input", r#"{"query": "ferry"}"#],
    );
    expect(&out, 0);
    let found: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(found.as_array().unwrap().len(), 2);
    let out = warden(h, &["memory", "ls", "notes"]);
    expect(&out, 0);
    assert_eq!(stdout(&out).trim(), "next-id");
    expect(&warden(h, &["memory", "get", "notes", "next-id"]), 0);
    let out = warden(h, &["memory", "get", "notes", "nothing"]);
    expect(&out, 2);
    assert!(
        stderr(&out).contains("warden memory ls notes"),
        "{}",
        stderr(&out)
    );
    expect(&warden(h, &["memory", "ls", "Bad Name"]), 2);
    // Every change is on record.
    let out = warden(h, &["audit", "query", "--kind", "memory.put", "--json"]);
    expect(&out, 0);
    assert!(stdout(&out).contains("\"n9\""), "{}", stdout(&out));
}

/// Whoever may set grants may not hand a plugin Warden's home (its audit log and
/// key, token hashes, databases) or the server's own secrets.
#[test]
fn no_grant_reaches_the_home_or_the_servers_secrets() {
    let home = home_with(&[("hostile", guests::HOSTILE)]);
    let h = home.path();
    let elsewhere = tempfile::tempdir().unwrap();
    let cases = [
        (
            format!("[[fs]]\nhost = {:?}\nguest = \"/h\"\naccess = \"read-write\"\n", h),
            "reaches Warden's home",
        ),
        (
            format!(
                "[[fs]]\nhost = {:?}\nguest = \"/up\"\naccess = \"read\"\n",
                h.parent().unwrap()
            ),
            "reaches Warden's home",
        ),
        (
            format!(
                "[net]\nallow = [\"https://api.example.com\"]\n\n[secrets.\"https://api.example.com\"]\nheader = \"Authorization\"\nfrom_file = {:?}\n",
                h.join("audit.key")
            ),
            "inside Warden's home",
        ),
        (
            "[net]\nallow = [\"https://api.example.com\"]\n\n[secrets.\"https://api.example.com\"]\nheader = \"Authorization\"\nfrom_env = \"WARDEN_TOKEN\"\n".to_string(),
            "Warden's own secrets",
        ),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let file = elsewhere.path().join(format!("grant-{i}.toml"));
        std::fs::write(&file, text).unwrap();
        let out = warden(h, &["grant", "set", "hostile", file.to_str().unwrap()]);
        expect(&out, 2);
        assert!(stderr(&out).contains(expected), "{text}\n{}", stderr(&out));
    }
    // Nothing was set, and the plugin is served as before.
    let out = warden(h, &["grant", "show", "hostile"]);
    assert!(stdout(&out).contains("has no grant"), "{}", stdout(&out));
    // A directory outside the home is granted as ever.
    let file = elsewhere.path().join("ok.toml");
    std::fs::write(
        &file,
        format!(
            "[[fs]]\nhost = {:?}\nguest = \"/data\"\naccess = \"read\"\n",
            elsewhere.path()
        ),
    )
    .unwrap();
    expect(
        &warden(h, &["grant", "set", "hostile", file.to_str().unwrap()]),
        0,
    );
}

#[test]
fn an_unknown_audit_durability_is_refused_with_what_to_use() {
    let home = home_with(&[("text", guests::TEXT)]);
    let h = home.path();
    let call = |env: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
        command
            .arg("--home")
            .arg(h)
            .args(["call", "text/word-count", "--input", r#"{"text": "a b"}"#])
            .env_remove("RUST_LOG")
            .env_remove("WARDEN_AUDIT_DURABILITY");
        if let Some(value) = env {
            command.env("WARDEN_AUDIT_DURABILITY", value);
        }
        command.output().expect("running warden")
    };

    // From the environment: the variable is named, with the values it takes.
    let out = call(Some("sometimes"));
    assert!(!out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("WARDEN_AUDIT_DURABILITY"), "{err}");
    assert!(
        err.contains("\"sometimes\"") && err.contains("`full`"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "the tool must not run");

    // From warden.toml: the file is named.
    std::fs::write(
        h.join("warden.toml"),
        "[audit]\ndurability = \"sometimes\"\n",
    )
    .unwrap();
    let out = call(None);
    assert!(!out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("warden.toml") && err.contains("sometimes"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "the tool must not run");

    // Both known values work.
    std::fs::write(h.join("warden.toml"), "[audit]\ndurability = \"process\"\n").unwrap();
    expect(&call(None), 0);
    expect(&call(Some("full")), 0);
}
