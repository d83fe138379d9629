//! Grants: every field enforced, each with an allowed case and a denied case.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden::Plugin;
use warden::grant::{Access, EnvGrant, FsGrant, Grant};
use warden::limits::Limits;
use warden_tests::guests;

use crate::{call, fs_grant, load_granted};

async fn tool_error(plugin: &Plugin, tool: &str, args: Value) -> String {
    let err = call(plugin, tool, args).await.unwrap_err();
    assert_eq!(err.code(), "tool-error", "{err}");
    err.to_string()
}

#[tokio::test]
async fn a_read_grant_reads_and_never_writes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha").unwrap();
    let plugin = load_granted("files", guests::FILES, fs_grant(dir.path(), Access::Read));

    let out = call(&plugin, "read", json!({"path": "/data/a.txt"}))
        .await
        .unwrap();
    assert_eq!(out, json!("alpha"));
    let listed = call(&plugin, "list", json!({"path": "/data"}))
        .await
        .unwrap();
    assert_eq!(listed[0]["name"], "a.txt");

    for mode in ["create", "overwrite", "append"] {
        let path = if mode == "create" {
            "/data/new.txt"
        } else {
            "/data/a.txt"
        };
        let message = tool_error(
            &plugin,
            "write",
            json!({"path": path, "content": "x", "mode": mode}),
        )
        .await;
        assert!(message.contains(path), "{mode}: {message}");
    }
    // Nothing changed on the host: no truncation through a read-only preopen.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a.txt")).unwrap(),
        "alpha"
    );
    assert!(!dir.path().join("new.txt").exists());
}

#[tokio::test]
async fn a_read_write_grant_writes_inside_only() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = load_granted(
        "files",
        guests::FILES,
        fs_grant(dir.path(), Access::ReadWrite),
    );
    let written = call(
        &plugin,
        "write",
        json!({"path": "/data/out.txt", "content": "hello", "mode": "create"}),
    )
    .await
    .unwrap();
    assert_eq!(written, json!(5));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out.txt")).unwrap(),
        "hello"
    );
}

#[tokio::test]
async fn no_path_outside_the_grant_exists() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "s3cret").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), dir.path().join("link")).unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("dirlink")).unwrap();
    let plugin = load_granted(
        "hostile",
        guests::HOSTILE,
        fs_grant(dir.path(), Access::ReadWrite),
    );
    let secret = outside.path().join("secret.txt");
    let attempts = [
        secret.to_str().unwrap().to_string(),
        "/etc/passwd".into(),
        "/data/../../../../etc/passwd".into(),
        format!("/data/../{}", secret.display()),
        "/data/link".into(),
        "/data/link/".into(),
        "/data/dirlink/secret.txt".into(),
    ];
    for path in attempts {
        let message = tool_error(&plugin, "read-file", json!({"path": path})).await;
        assert!(!message.contains("s3cret"), "{path}: {message}");
        assert!(!message.contains("root:"), "{path}: {message}");
    }
    let message = tool_error(
        &plugin,
        "write-file",
        json!({"path": "/data/dirlink/planted.txt", "content": "x"}),
    )
    .await;
    assert!(message.contains("planted"), "{message}");
    assert!(!outside.path().join("planted.txt").exists());
}

#[tokio::test]
async fn exactly_the_granted_variables_and_no_arguments() {
    let grant = Grant {
        env: EnvGrant {
            vars: BTreeMap::from([("LANG".to_string(), "C.UTF-8".to_string())]),
        },
        ..Grant::default()
    };
    let plugin = load_granted("hostile", guests::HOSTILE, grant);
    assert_eq!(
        call(&plugin, "env", json!({"name": "LANG"})).await.unwrap(),
        json!("C.UTF-8")
    );
    assert_eq!(
        call(&plugin, "env-all", json!({})).await.unwrap(),
        json!([["LANG", "C.UTF-8"]])
    );
    // The host's own environment is never inherited.
    assert!(std::env::var_os("PATH").is_some());
    assert_eq!(
        call(&plugin, "env", json!({"name": "PATH"})).await.unwrap(),
        Value::Null
    );
    assert_eq!(call(&plugin, "args", json!({})).await.unwrap(), json!([]));

    let bare = crate::load("hostile", guests::HOSTILE);
    assert_eq!(call(&bare, "env-all", json!({})).await.unwrap(), json!([]));
}

#[tokio::test]
async fn limits_come_from_the_grant() {
    let grant = Grant {
        limits: Limits {
            timeout_ms: 100,
            memory_mb: 16,
            max_output_kb: 2,
            ..Limits::default()
        },
        ..Grant::default()
    };
    let plugin = load_granted("hostile", guests::HOSTILE, grant.clone());
    let err = call(&plugin, "loop-forever", json!({})).await.unwrap_err();
    assert!(err.to_string().contains("100 ms"), "{err}");
    // The other limits with a timeout no loaded machine reaches, so that each call
    // meets the limit it is about.
    let mut grant = grant;
    grant.limits.timeout_ms = 30_000;
    let plugin = load_granted("hostile", guests::HOSTILE, grant);
    let err = call(&plugin, "grow-memory", json!({"mb": 20}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("16 MiB"), "{err}");
    let err = call(&plugin, "big-output", json!({"kb": 3}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("2 KiB"), "{err}");
    call(&plugin, "big-output", json!({"kb": 1})).await.unwrap();
    // A tool's error is output too; and a large list is refused before its JSON
    // (several times its size in host memory) is built.
    let err = call(&plugin, "big-error", json!({"kb": 3}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "limit", "{err}");
    assert!(
        err.to_string()
            .contains("the tool's error is more than 2048 bytes"),
        "{err}"
    );
    let err = call(&plugin, "big-error", json!({"kb": 1}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tool-error", "{err}");
    let err = call(&plugin, "big-bytes", json!({"kb": 16}))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("the result is more than 2048 bytes"),
        "{err}"
    );
    call(&plugin, "big-bytes", json!({"kb": 0})).await.unwrap();
    // A list far past the limit is refused while it is lifted, before the host holds
    // its values (a byte of a `list<u8>` lifts as a whole value, tens of bytes): the
    // bound on data handed to the host follows `max_output_kb` (16 MiB at least).
    for kb in [1024, 4096] {
        let err = call(&plugin, "big-bytes", json!({ "kb": kb }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "limit", "{kb} KiB: {err}");
        assert!(
            err.to_string().contains("more than 16 MiB at once"),
            "{kb} KiB: {err}"
        );
    }
    call(&plugin, "big-bytes", json!({"kb": 1}))
        .await
        .unwrap_err();
    call(&plugin, "big-output", json!({"kb": 1})).await.unwrap();
}

#[tokio::test]
async fn excess_calls_wait_for_a_slot_then_fail_clearly() {
    let grant = Grant {
        limits: Limits {
            timeout_ms: 500,
            max_concurrency: 1,
            ..Limits::default()
        },
        ..Grant::default()
    };
    let plugin = std::sync::Arc::new(load_granted("hostile", guests::HOSTILE, grant));
    let spawn_loop = |plugin: std::sync::Arc<Plugin>| {
        tokio::spawn(async move { call(&plugin, "loop-forever", json!({})).await })
    };
    // A holds the one slot for 500 ms; B waits for it, then holds it for 500 ms more;
    // C waits 500 ms and gives up while B still runs.
    let a = spawn_loop(plugin.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b = spawn_loop(plugin.clone());
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let c = call(&plugin, "big-output", json!({"kb": 1}))
        .await
        .unwrap_err();
    assert!(started.elapsed() >= Duration::from_millis(450));
    assert!(c.to_string().contains("concurrency limit hit"), "{c}");
    assert!(c.to_string().contains("max_concurrency"), "{c}");
    for task in [a, b] {
        let err = task.await.unwrap().unwrap_err();
        assert!(err.to_string().contains("timeout limit hit"), "{err}");
    }
    call(&plugin, "big-output", json!({"kb": 1})).await.unwrap();
}

#[tokio::test]
async fn a_digest_pin_that_does_not_match_takes_every_capability() {
    let vars = BTreeMap::from([("MODE".to_string(), "on".to_string())]);
    let wasm = std::fs::read(guests::HOSTILE).unwrap();
    let pinned = |digest: String| Grant {
        digest: Some(digest),
        env: EnvGrant { vars: vars.clone() },
        ..Grant::default()
    };
    let good = load_granted(
        "hostile",
        guests::HOSTILE,
        pinned(warden::plugin::digest(&wasm)),
    );
    assert!(good.notice.is_none());
    assert_eq!(
        call(&good, "env", json!({"name": "MODE"})).await.unwrap(),
        json!("on")
    );

    let other = format!("sha256:{}", "0".repeat(64));
    let bad = load_granted("hostile", guests::HOSTILE, pinned(other.clone()));
    let notice = bad.notice.clone().unwrap();
    assert!(notice.contains("runs with no capabilities"), "{notice}");
    assert!(notice.contains(&other), "{notice}");
    assert_eq!(
        call(&bad, "env", json!({"name": "MODE"})).await.unwrap(),
        Value::Null
    );
}

#[test]
fn a_grant_file_is_strict() {
    let cases = [
        ("[fs]\nhost = \"/x\"", "invalid type"),
        (
            "[[fs]]\nhost = \"/tmp\"\nguest = \"/d\"\naccess = \"write\"",
            "unknown variant `write`",
        ),
        (
            "[[fs]]\nhost = \"tmp\"\nguest = \"/d\"\naccess = \"read\"",
            "must be an absolute path",
        ),
        (
            "[[fs]]\nhost = \"/tmp\"\nguest = \"/d/../..\"\naccess = \"read\"",
            "without `..`",
        ),
        ("[env]\nvar = {}", "unknown field `var`"),
        ("[agents]\nmax_steps = 3", "unknown field `agents`"),
        ("[tools]\nalow = [\"text/*\"]", "unknown field `alow`"),
        (
            "[tools]\nallow = [\"text/wo*\"]",
            "is not `*`, `PLUGIN/*` or `PLUGIN/TOOL`",
        ),
        ("[agent]\nmax_steps = 0", "max_steps = 0 is out of range"),
        ("[agent]\nmax_turns = 3", "unknown field `max_turns`"),
        (
            "[agent]\nmax_cost = -1.0",
            "max_cost = -1 must be a number of dollars",
        ),
        (
            "[memory]\n\"Bad Name\" = \"read\"",
            "a namespace is 1 to 64",
        ),
        ("[net]\nallow = [\"example.com\"]", "needs a scheme"),
        ("[limits]\nfuel = -1", "fuel"),
        ("[limits]\nmemory_mb = 0", "memory_mb = 0 is out of range"),
        ("[limits]\ntimeout = 5", "unknown field `timeout`"),
        ("plugin = \"other\"", "being set on plugin \"files\""),
        ("digest = \"md5:00\"", "sha256:<64 hex digits>"),
    ];
    for (text, expected) in cases {
        let err = Grant::parse(text, "files").unwrap_err();
        let message = format!("{err:#}");
        assert!(message.contains(expected), "{text:?}: {message}");
    }
    let err = Grant::parse("\n\n[limits]\nmemory_mbb = 3\n", "files").unwrap_err();
    let message = format!("{err:#}");
    assert!(message.contains("line 4"), "{message}");
    assert!(message.contains("memory_mbb"), "{message}");
}

/// Two preopens, one read-only and one read-write, as the advisories against this
/// layer set them up (GHSA-2r75-cxrj-cmph, GHSA-4ch3-9j33-3pmj).
fn ro_and_rw(ro: &std::path::Path, rw: &std::path::Path) -> Grant {
    Grant {
        fs: vec![
            FsGrant {
                host: ro.to_path_buf(),
                guest: "/ro".into(),
                access: Access::Read,
            },
            FsGrant {
                host: rw.to_path_buf(),
                guest: "/rw".into(),
                access: Access::ReadWrite,
            },
        ],
        ..Grant::default()
    }
}

#[tokio::test]
async fn a_read_only_directory_cannot_be_changed_by_any_route() {
    let (ro, rw) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(ro.path().join("keep.txt"), "original").unwrap();
    std::fs::write(rw.path().join("mine.txt"), "mine").unwrap();
    let plugin = load_granted("hostile", guests::HOSTILE, ro_and_rw(ro.path(), rw.path()));
    let attempts = [
        ("truncate-file", json!({"path": "/ro/keep.txt"})),
        ("write-file", json!({"path": "/ro/keep.txt", "content": ""})),
        ("write-file", json!({"path": "/ro/new.txt", "content": "x"})),
        (
            "move-file",
            json!({"src": "/rw/mine.txt", "dst": "/ro/moved.txt"}),
        ),
        (
            "move-file",
            json!({"src": "/ro/keep.txt", "dst": "/rw/stolen.txt"}),
        ),
        (
            "link-file",
            json!({"src": "/rw/mine.txt", "dst": "/ro/linked.txt"}),
        ),
        (
            "link-file",
            json!({"src": "/ro/keep.txt", "dst": "/ro/linked.txt"}),
        ),
    ];
    for (tool, args) in attempts {
        let err = call(&plugin, tool, args.clone()).await.unwrap_err();
        assert_eq!(err.code(), "tool-error", "{tool}({args}): {err}");
    }
    assert_eq!(
        std::fs::read_to_string(ro.path().join("keep.txt")).unwrap(),
        "original"
    );
    let names: Vec<_> = std::fs::read_dir(ro.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["keep.txt"]);
    assert!(rw.path().join("mine.txt").exists());
    // The read-write side works.
    call(
        &plugin,
        "move-file",
        json!({"src": "/rw/mine.txt", "dst": "/rw/renamed.txt"}),
    )
    .await
    .unwrap();
    assert!(rw.path().join("renamed.txt").exists());
}

#[tokio::test]
async fn a_granted_directory_that_disappeared_fails_the_call_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let plugin = load_granted("files", guests::FILES, fs_grant(&path, Access::Read));
    drop(dir);
    let err = call(&plugin, "list", json!({"path": "/data"}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "internal", "{err}");
    let message = err.to_string();
    assert!(
        message.contains("opening the granted directory"),
        "{message}"
    );
    assert!(message.contains(path.to_str().unwrap()), "{message}");
}
