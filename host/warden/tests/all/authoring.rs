//! The plugin author's commands: `warden wit export`, `warden plugin check`, and the
//! helpers the polyglot and template tests share (running `warden`, finding toolchains).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use warden_tests::guests;

/// The repository's root.
pub(crate) fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `warden` with `home` in `dir`, with `PATH` extended by the project's
/// toolchains (`target/py-tools/bin`, `tools/js/node_modules/.bin`, as `.ci/run`
/// installs them).
pub(crate) fn warden(home: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home)
        .args(args)
        .current_dir(dir)
        .env("PATH", tool_path())
        .env_remove("RUST_LOG")
        .output()
        .expect("running warden")
}

/// `PATH` with the project's toolchain directories first.
pub(crate) fn tool_path() -> std::ffi::OsString {
    let root = repo();
    let mut dirs = vec![
        root.join("target/py-tools/bin"),
        root.join("tools/js/node_modules/.bin"),
    ];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(dirs).expect("joining PATH")
}

/// True when `program` is on [`tool_path`].
pub(crate) fn has_program(program: &str) -> bool {
    std::env::split_paths(&tool_path()).any(|dir| dir.join(program).is_file())
}

/// Whether a test that needs `program` runs: it does when the program is there; when it
/// is not, the test is skipped with a message, unless `WARDEN_REQUIRE_POLYGLOT` is set
/// (as `.ci/run` sets it), where a missing toolchain fails the test.
pub(crate) fn toolchain(program: &str, install: &str) -> bool {
    if has_program(program) {
        return true;
    }
    if std::env::var_os("WARDEN_REQUIRE_POLYGLOT").is_some() {
        panic!("{program} is not installed and WARDEN_REQUIRE_POLYGLOT is set: {install}");
    }
    eprintln!(
        "skipped: {program} is not installed ({install}); set WARDEN_REQUIRE_POLYGLOT=1 to fail instead"
    );
    false
}

pub(crate) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[track_caller]
pub(crate) fn expect(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// The JSON a successful command printed.
#[track_caller]
pub(crate) fn json(out: &Output) -> Value {
    expect(out, 0);
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", text(&out.stdout)))
}

#[test]
fn wit_export_writes_packages_a_project_resolves_against() {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("wit");
    let out = warden(tmp.path(), tmp.path(), &["wit", "export", "wit/deps"]);
    expect(&out, 0);
    for dir in [
        "warden-plugin-0.1.0",
        "warden-host-0.1.0",
        "wasi-http-0.2.12",
        "wasi-io-0.2.12",
    ] {
        assert!(project.join("deps").join(dir).is_dir(), "{dir} missing");
        assert!(text(&out.stdout).contains(dir), "{}", text(&out.stdout));
    }
    assert_eq!(
        std::fs::read_to_string(project.join("deps/warden-plugin-0.1.0/world.wit")).unwrap(),
        std::fs::read_to_string(repo().join("wit/world.wit")).unwrap()
    );
    // A world that uses Warden's and WASI's packages resolves with them as `deps/`.
    std::fs::write(
        project.join("world.wit"),
        "package acme:probe@0.1.0;\n\nworld probe {\n    include warden:plugin/tool@0.1.0;\n    import wasi:http/outgoing-handler@0.2.12;\n    export ping: func() -> string;\n}\n",
    )
    .unwrap();
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_dir(&project)
        .expect("the exported WIT resolves");
    let world = resolve.select_world(&[pkg], Some("probe")).unwrap();
    let imports: Vec<String> = resolve.worlds[world]
        .imports
        .keys()
        .map(|k| resolve.name_world_key(k))
        .collect();
    assert!(
        imports.iter().any(|i| i == "warden:host/log@0.1.0"),
        "{imports:?}"
    );
    assert!(
        imports
            .iter()
            .any(|i| i == "wasi:http/outgoing-handler@0.2.12"),
        "{imports:?}"
    );
}

#[test]
fn check_reports_tools_imports_size_and_compile_time() {
    let tmp = tempfile::tempdir().unwrap();
    let manifest = repo().join("plugins/fetch/warden.toml");
    let manifest = manifest.to_str().unwrap();
    let out = warden(
        tmp.path(),
        tmp.path(),
        &[
            "plugin",
            "check",
            guests::FETCH,
            "--manifest",
            manifest,
            "--json",
        ],
    );
    let report = json(&out);
    assert_eq!(report["name"], "fetch");
    assert!(report["size_bytes"].as_u64().unwrap() > 1000);
    assert!(report["compile_ms"].is_u64());
    let get = &report["tools"][0];
    assert_eq!(get["id"], "fetch/get");
    assert_eq!(get["description_source"], "component");
    assert_eq!(get["input_schema"]["required"][0], "url");
    let imports = report["imports"].as_array().unwrap();
    let http = imports
        .iter()
        .find(|i| {
            i["name"]
                .as_str()
                .unwrap()
                .starts_with("wasi:http/outgoing-handler")
        })
        .expect("fetch imports wasi:http");
    assert_eq!(http["note"], "only the hosts in the grant's [net] allow");
    assert_eq!(report["warnings"], serde_json::json!([]), "{report:#}");
    // Nothing was installed.
    assert!(!tmp.path().join("plugins").exists());

    let out = warden(
        tmp.path(),
        tmp.path(),
        &["plugin", "check", guests::FETCH, "--manifest", manifest],
    );
    expect(&out, 0);
    let shown = text(&out.stdout);
    for line in [
        "a valid component (sha256:",
        "size ",
        "compile ",
        "tools (1)",
        "  fetch/get  get(",
        "cannot map (0)",
        "warnings (0)",
    ] {
        assert!(shown.contains(line), "no {line:?} in:\n{shown}");
    }
}

#[test]
fn check_names_what_it_cannot_map_and_warns() {
    let tmp = tempfile::tempdir().unwrap();
    // A tool without docs, a function over a resource (not mappable to JSON), and an
    // import Warden does not provide.
    let wasm = wat::parse_str(
        r#"(component
            (import "acme:secret/vault@1.0.0" (instance $vault
                (export "open" (func (result string)))))
            (type $r (resource (rep i32)))
            (export $re "handle" (type $r))
            (core module $m
                (func (export "answer") (result i32) i32.const 42)
                (func (export "take") (param i32)))
            (core instance $i (instantiate $m))
            (func (export "answer") (result u32) (canon lift (core func $i "answer")))
            (func (export "take") (param "h" (own $re)) (canon lift (core func $i "take")))
        )"#,
    )
    .unwrap();
    let path = tmp.path().join("odd.wasm");
    std::fs::write(&path, wasm).unwrap();
    let out = warden(
        tmp.path(),
        tmp.path(),
        &["plugin", "check", path.to_str().unwrap(), "--json"],
    );
    let report = json(&out);
    assert_eq!(report["tools"][0]["id"], "odd/answer");
    let unmapped = report["unmapped"].as_array().unwrap();
    let vault = unmapped
        .iter()
        .find(|u| u["name"] == "acme:secret/vault@1.0.0")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(vault["kind"], "import");
    assert_eq!(
        vault["reason"],
        "not provided by Warden: the component loads, and calls to it trap"
    );
    let take = unmapped
        .iter()
        .find(|u| u["name"] == "take")
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(take["kind"], "export");
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("tool answer has no description")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.starts_with("no manifest")),
        "{warnings:?}"
    );
}

#[test]
fn check_refuses_what_is_not_a_component() {
    let tmp = tempfile::tempdir().unwrap();
    let core = tmp.path().join("core.wasm");
    std::fs::write(&core, wat::parse_str("(module)").unwrap()).unwrap();
    let out = warden(
        tmp.path(),
        tmp.path(),
        &["plugin", "check", core.to_str().unwrap()],
    );
    expect(&out, 2);
    assert!(
        text(&out.stderr).contains("a core WebAssembly module, not a component"),
        "{}",
        text(&out.stderr)
    );
    let junk = tmp.path().join("junk.wasm");
    std::fs::write(&junk, b"hello").unwrap();
    let out = warden(
        tmp.path(),
        tmp.path(),
        &["plugin", "check", junk.to_str().unwrap()],
    );
    expect(&out, 2);
    assert!(
        text(&out.stderr).contains("not a WebAssembly binary"),
        "{}",
        text(&out.stderr)
    );
}
