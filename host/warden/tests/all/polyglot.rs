//! Plugins written in Python (componentize-py) and JavaScript (jco componentize), built
//! from source (`sdk/examples/python`, `sdk/examples/js`) with `warden plugin build` in
//! a temporary copy, then added and called through the `warden` binary: tools with a
//! record and an option argument, a log line, `warden:host/memory` (Python), and
//! outbound HTTP through `wasi:http` (Python) and `fetch()` (JavaScript), refused
//! without a grant and to an unlisted upstream, allowed to the loopback upstream the
//! grant names.
//!
//! A test whose toolchain is missing is skipped with a message, unless
//! `WARDEN_REQUIRE_POLYGLOT` is set (`.ci/run` sets it and installs both).

use std::path::Path;
use std::time::Instant;

use serde_json::json;

use crate::authoring::{expect, json, repo, text, toolchain, warden};
use crate::upstream::Upstream;

/// Copies the example project `from` into `to`, without build outputs.
pub(crate) fn copy_project(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let path = entry.path();
        if matches!(
            name.as_ref(),
            "deps" | "node_modules" | "__pycache__" | "target"
        ) || name.ends_with(".wasm")
        {
            continue;
        }
        if path.is_dir() {
            copy_project(&path, &to.join(&*name));
        } else {
            std::fs::copy(&path, to.join(&*name)).unwrap();
        }
    }
}

/// Builds the example in `sdk/examples/<example>` in a copy under `tmp` and adds it;
/// returns the plugin's home.
fn build_and_add(tmp: &Path, example: &str, name: &str) -> std::path::PathBuf {
    let project = tmp.join(name);
    copy_project(&repo().join("sdk/examples").join(example), &project);
    let home = tmp.join("home");
    let started = Instant::now();
    let out = warden(&home, &project, &["plugin", "build"]);
    expect(&out, 0);
    eprintln!(
        "{example}: built in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let built = text(&out.stdout);
    assert!(
        built.starts_with(&format!("built ./{name}.wasm (")),
        "{built}"
    );
    let started = Instant::now();
    let wasm = format!("{name}.wasm");
    let out = warden(&home, &project, &["plugin", "add", &wasm]);
    expect(&out, 0);
    eprintln!(
        "{example}: added (compiled) in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let added = text(&out.stdout);
    // The descriptions come from the WIT docs `plugin build` embedded.
    assert!(
        added.contains(&format!("{name}/word-stats  Counts the words of a text")),
        "{added}"
    );
    assert!(
        !added.contains(&format!("{name}/exports.init")),
        "a toolchain's entry point listed as a tool: {added}"
    );
    home
}

/// The calls both languages answer alike.
fn call_tools(home: &Path, name: &str) {
    let call = |tool: &str, input: serde_json::Value| {
        warden(
            home,
            home,
            &[
                "call",
                &format!("{name}/{tool}"),
                "--input",
                &input.to_string(),
            ],
        )
    };
    let out = call("greet", json!({"name": "Ada"}));
    assert_eq!(json(&out), json!("Hello, Ada!"));
    assert!(
        text(&out.stderr).contains(&format!("greeting plugin=\"{name}\"")),
        "the log line: {}",
        text(&out.stderr)
    );

    let out = call(
        "word-stats",
        json!({"text": "The cat saw the dog; the end", "options": {"ignore-case": true, "top": 2}}),
    );
    assert_eq!(
        json(&out),
        json!({"words": 7, "top": [{"word": "the", "count": 3}, {"word": "cat", "count": 1}]})
    );
    let out = call("word-stats", json!({"text": "b a b", "options": null}));
    assert_eq!(
        json(&out),
        json!({"words": 3, "top": [{"word": "b", "count": 2}, {"word": "a", "count": 1}]})
    );
    // The schema is checked before the guest runs.
    let out = call("word-stats", json!({"text": "x", "options": {"top": 2}}));
    expect(&out, 2);
    assert!(
        text(&out.stderr).contains("ignore-case"),
        "{}",
        text(&out.stderr)
    );
}

/// `http-get` refused without a grant and to an unlisted upstream, allowed to the one
/// the grant names.
async fn http_get_under_the_grant(home: &Path, name: &str) {
    let upstream = Upstream::start().await;
    let other = Upstream::start().await;
    let get = |url: String| {
        let input = json!({"url": url, "max-bytes": 100}).to_string();
        warden(
            home,
            home,
            &["call", &format!("{name}/http-get"), "--input", &input],
        )
    };

    let out = get(upstream.url("/hello"));
    expect(&out, 3);
    assert!(
        text(&out.stderr).contains(&format!("plugin \"{name}\" has no network grant")),
        "{}",
        text(&out.stderr)
    );
    assert!(upstream.seen().is_empty());

    let grant = home.join("grant.toml");
    std::fs::write(
        &grant,
        format!(
            "plugin = \"{name}\"\n\n[net]\nallow = [\"http://127.0.0.1:{}\"]\n",
            upstream.port()
        ),
    )
    .unwrap();
    let out = warden(home, home, &["grant", "set", name, grant.to_str().unwrap()]);
    expect(&out, 0);

    let out = get(upstream.url("/hello"));
    assert_eq!(json(&out), json!([200, "hello"]));
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].target, "/hello");

    let out = get(other.url("/hello"));
    expect(&out, 3);
    assert!(
        text(&out.stderr).contains(&format!(
            "http://127.0.0.1:{} is not in plugin \"{name}\"'s [net] allow list",
            other.port()
        )),
        "{}",
        text(&out.stderr)
    );
    assert!(other.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_plugin_built_with_componentize_py_runs_under_its_grant() {
    if !toolchain(
        "componentize-py",
        "pip install componentize-py==0.25.1, or run .ci/run",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = build_and_add(tmp.path(), "python", "pytools");
    call_tools(&home, "pytools");
    memory_under_the_grant(&home);
    http_get_under_the_grant(&home, "pytools").await;
}

/// `warden:host/memory` from Python: denied without a grant, and with one, what a call
/// remembers is there for the next (each call is a fresh instance).
fn memory_under_the_grant(home: &Path) {
    let call = |tool: &str, input: serde_json::Value| {
        warden(
            home,
            home,
            &[
                "call",
                &format!("pytools/{tool}"),
                "--input",
                &input.to_string(),
            ],
        )
    };
    let out = call("remember", json!({"key": "greeting", "text": "hej"}));
    expect(&out, 3);
    assert!(
        text(&out.stderr).contains(
            "memory denied for set pytools: plugin \"pytools\" has no grant for memory namespace \"pytools\""
        ),
        "{}",
        text(&out.stderr)
    );

    let grant = home.join("memory.toml");
    std::fs::write(
        &grant,
        "plugin = \"pytools\"\n\n[memory]\n\"pytools\" = \"read-write\"\n",
    )
    .unwrap();
    let out = warden(
        home,
        home,
        &["grant", "set", "pytools", grant.to_str().unwrap()],
    );
    expect(&out, 0);
    let out = call("remember", json!({"key": "greeting", "text": "hej"}));
    assert_eq!(json(&out), json!(null));
    let out = call("recall", json!({"key": "greeting"}));
    assert_eq!(json(&out), json!("hej"));
    let out = call("recall", json!({"key": "nothing"}));
    assert_eq!(json(&out), json!(null));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_plugin_built_with_jco_fetches_only_what_its_grant_allows() {
    if !toolchain(
        "jco",
        "npm ci in tools/js (@bytecodealliance/jco 1.35.0, componentize-js 0.23.0), or run .ci/run",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let home = build_and_add(tmp.path(), "js", "jstools");
    call_tools(&home, "jstools");
    http_get_under_the_grant(&home, "jstools").await;
}
