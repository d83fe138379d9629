//! `warden plugin new NAME --lang rust|python|js` → `warden plugin build` →
//! `warden plugin add` → `warden call`, in a temporary directory, with the project as
//! the template wrote it. The Rust project needs crates.io (wit-bindgen) and builds
//! into `target/templates` so that later runs reuse it; Python and JavaScript need
//! their toolchains (see `polyglot.rs` for when a missing one skips).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use serde_json::json;

use crate::authoring::{expect, json, repo, text, toolchain, warden};

/// new → build → add → call `NAME/hello`, and the error a tool returns.
fn new_build_add_call(lang: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let name = format!("hello-{lang}");
    let out = warden(&home, tmp.path(), &["plugin", "new", &name, "--lang", lang]);
    expect(&out, 0);
    let project = tmp.path().join(&name);
    for file in [
        "wit/world.wit",
        "wit/deps/warden-plugin-0.1.0/world.wit",
        "warden.toml",
        "README.md",
    ] {
        assert!(project.join(file).is_file(), "{file} missing");
    }
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    assert!(
        !readme.contains("{{"),
        "a placeholder left in the README:\n{readme}"
    );
    assert!(
        readme.contains(&format!("warden call {name}/hello")),
        "{readme}"
    );

    let started = Instant::now();
    let out = warden(&home, &project, &["plugin", "build"]);
    expect(&out, 0);
    eprintln!(
        "{lang} template: built in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let wasm = format!("{name}.wasm");
    let out = warden(&home, &project, &["plugin", "add", &wasm]);
    expect(&out, 0);
    assert!(
        text(&out.stdout).contains(&format!("{name}/hello  Greets a person by name.")),
        "{}",
        text(&out.stdout)
    );
    let out = warden(&home, &project, &["plugin", "inspect", &name]);
    expect(&out, 0);
    assert!(
        text(&out.stdout).contains(&format!("about    {name}: greets people")),
        "{}",
        text(&out.stdout)
    );

    let out = warden(
        &home,
        &project,
        &[
            "call",
            &format!("{name}/hello"),
            "--input",
            r#"{"name": "Ada"}"#,
        ],
    );
    assert_eq!(json(&out), json!("Hello, Ada!"));
    assert!(
        text(&out.stderr).contains("greeting"),
        "the log line: {}",
        text(&out.stderr)
    );
    let out = warden(
        &home,
        &project,
        &[
            "call",
            &format!("{name}/hello"),
            "--input",
            r#"{"name": " "}"#,
        ],
    );
    expect(&out, 1);
    assert!(
        text(&out.stderr).contains("name is empty"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn rust_template_builds_and_runs_unchanged() {
    // Reuse compiled dependencies across runs (the project's own target/ otherwise).
    let target = repo().join("target/templates");
    let out = {
        let tmp = tempfile::tempdir().unwrap();
        let home = tmp.path().join("home");
        let mut new = warden_cmd(&home, tmp.path());
        new.args(["plugin", "new", "hello-rust", "--lang", "rust"]);
        expect(&new.output().unwrap(), 0);
        let project = tmp.path().join("hello-rust");
        let started = Instant::now();
        let mut build = warden_cmd(&home, &project);
        build
            .args(["plugin", "build"])
            .env("CARGO_TARGET_DIR", &target);
        let out = build.output().unwrap();
        expect(&out, 0);
        eprintln!(
            "rust template: built in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let mut add = warden_cmd(&home, &project);
        add.args(["plugin", "add", "hello-rust.wasm"]);
        let added = add.output().unwrap();
        expect(&added, 0);
        assert!(
            text(&added.stdout).contains("hello-rust/hello  Greets a person by name."),
            "{}",
            text(&added.stdout)
        );
        let mut call = warden_cmd(&home, &project);
        call.args(["call", "hello-rust/hello", "--input", r#"{"name": "Ada"}"#]);
        call.output().unwrap()
    };
    assert_eq!(json(&out), json!("Hello, Ada!"));
}

fn warden_cmd(home: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_warden"));
    cmd.arg("--home")
        .arg(home)
        .current_dir(dir)
        .env("PATH", crate::authoring::tool_path())
        .env_remove("RUST_LOG");
    cmd
}

#[test]
fn python_template_builds_and_runs_unchanged() {
    if toolchain(
        "componentize-py",
        "pip install componentize-py==0.25.1, or run .ci/run",
    ) {
        new_build_add_call("python");
    }
}

#[test]
fn javascript_template_builds_and_runs_unchanged() {
    if toolchain("jco", "npm ci in tools/js, or run .ci/run") {
        new_build_add_call("js");
    }
}

#[test]
fn build_says_what_to_install_when_the_toolchain_is_missing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    for (lang, missing) in [
        (
            "python",
            "componentize-py is not installed (not on PATH): `pip install componentize-py==0.25.1`",
        ),
        ("js", "jco is not installed: run `npm install` in"),
    ] {
        let name = format!("bare-{lang}");
        let out = warden(&home, tmp.path(), &["plugin", "new", &name, "--lang", lang]);
        expect(&out, 0);
        let out = Command::new(env!("CARGO_BIN_EXE_warden"))
            .args(["--home", home.to_str().unwrap(), "plugin", "build", &name])
            .current_dir(tmp.path())
            .env("PATH", tmp.path().join("no-tools"))
            .output()
            .unwrap();
        expect(&out, 2);
        assert!(text(&out.stderr).contains(missing), "{}", text(&out.stderr));
    }
    let out = warden(&home, tmp.path(), &["plugin", "build", "home"]);
    expect(&out, 2);
    assert!(
        text(&out.stderr).contains(
            "is not a plugin project: no Cargo.toml (Rust), app.py (Python) or app.js (JavaScript)"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn new_refuses_a_bad_name_and_a_directory_in_use() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let out = warden(
        &home,
        tmp.path(),
        &["plugin", "new", "My_Tool", "--lang", "rust"],
    );
    expect(&out, 2);
    assert!(
        text(&out.stderr).contains("\"My_Tool\" is not a plugin name"),
        "{}",
        text(&out.stderr)
    );
    std::fs::create_dir(tmp.path().join("taken")).unwrap();
    std::fs::write(tmp.path().join("taken/file"), "x").unwrap();
    let out = warden(
        &home,
        tmp.path(),
        &["plugin", "new", "taken", "--lang", "js"],
    );
    expect(&out, 2);
    assert!(
        text(&out.stderr).contains("taken exists and is not empty"),
        "{}",
        text(&out.stderr)
    );
}
