//! FIFOs, sockets and device files inside a granted directory: a grant opens only
//! regular files and directories. Opening a FIFO used to block a pool thread in `open`
//! forever: the call timed out, and then `warden call` never exited.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use warden::audit::{Audit, AuditOptions, Filter};
use warden::grant::{Access, FsGrant, Grant};
use warden::limits::Limits;
use warden::{CallError, Runtime};
use warden_tests::guests;

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().expect("mkfifo");
    assert!(status.success(), "mkfifo {}", path.display());
}

/// A directory with `a.txt`, a FIFO `fifo`, a link to it and a listening socket `sock`.
fn special_dir() -> (tempfile::TempDir, std::os::unix::net::UnixListener) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha").unwrap();
    mkfifo(&dir.path().join("fifo"));
    std::os::unix::fs::symlink("fifo", dir.path().join("link")).unwrap();
    let socket = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
    (dir, socket)
}

fn grant(dir: &Path, guest: &str, access: Access) -> Grant {
    Grant {
        fs: vec![FsGrant {
            host: dir.to_path_buf(),
            guest: guest.into(),
            access,
        }],
        limits: Limits {
            timeout_ms: 2000,
            ..Limits::default()
        },
        ..Grant::default()
    }
}

#[tokio::test]
async fn a_fifo_socket_or_link_to_one_is_refused_at_once_and_on_record() {
    let home = tempfile::tempdir().unwrap();
    let runtime = Runtime::new().unwrap();
    runtime
        .set_audit(Audit::open(home.path(), AuditOptions::default()).unwrap())
        .unwrap();
    let (ro, _socket) = special_dir();
    let (rw, _rw_socket) = special_dir();
    let mut both = grant(ro.path(), "/ro", Access::Read);
    both.fs
        .extend(grant(rw.path(), "/rw", Access::ReadWrite).fs);
    let hostile = crate::load_into(&runtime, "hostile", guests::HOSTILE, both);

    for (tool, path, kind) in [
        ("read-file", "/ro/fifo", "FIFO"),
        ("read-file", "/ro/link", "FIFO"),
        ("read-file", "/ro/sock", "socket"),
        ("read-file", "/rw/fifo", "FIFO"),
        ("write-file", "/rw/fifo", "FIFO"),
    ] {
        let started = Instant::now();
        let args = match tool {
            "write-file" => json!({"path": path, "content": "x"}),
            _ => json!({"path": path}),
        };
        let err = runtime.call(&hostile, tool, &args).await.unwrap_err();
        // Refused before the open, not stopped at the 2 s deadline.
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "{tool} {path} took {:?}",
            started.elapsed()
        );
        let CallError::Denied {
            denials,
            tool_error,
            ..
        } = &err
        else {
            panic!("{tool} {path}: expected a denial, got {err}");
        };
        assert_eq!(denials.len(), 1, "{denials:?}");
        assert_eq!(denials[0].capability, "fs");
        assert_eq!(denials[0].target, path);
        assert!(
            denials[0].reason.contains(&format!(
                "{path} is a {kind}, not a regular file or directory"
            )),
            "{err}"
        );
        assert!(
            tool_error
                .as_ref()
                .and_then(|e| e.as_str())
                .is_some_and(|e| e.contains("not permitted")),
            "{err}"
        );
        assert_eq!(warden::exit::code(&err), 3);
    }

    // Each refusal is on the record, and the host then serves a normal call.
    let records = runtime.audit().unwrap().read(Filter::default()).unwrap();
    let refused: Vec<_> = records
        .iter()
        .filter(|r| r.kind == "capability.denied")
        .map(|r| r.fields["target"].clone())
        .collect();
    assert_eq!(
        refused,
        [
            json!("/ro/fifo"),
            json!("/ro/link"),
            json!("/ro/sock"),
            json!("/rw/fifo"),
            json!("/rw/fifo")
        ],
        "{records:#?}"
    );
    assert!(
        records
            .iter()
            .filter(|r| r.kind == "capability.denied")
            .all(|r| r.fields["capability"] == json!("fs")
                && r.fields["reason"]
                    .as_str()
                    .is_some_and(|s| s.contains("not a regular file"))),
        "{records:#?}"
    );
    let read = runtime
        .call(&hostile, "read-file", &json!({"path": "/ro/a.txt"}))
        .await;
    assert_eq!(read.unwrap(), json!("alpha"));
    let write = json!({"path": "/rw/b.txt", "content": "beta"});
    runtime.call(&hostile, "write-file", &write).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(rw.path().join("b.txt")).unwrap(),
        "beta"
    );
}

#[test]
fn warden_call_on_a_fifo_fails_quickly_and_the_process_exits() {
    let home = tempfile::tempdir().unwrap();
    let (ro, _socket) = special_dir();
    let warden = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--home")
            .arg(home.path())
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running warden")
    };
    let finish = |mut child: std::process::Child| {
        // Before the fix the process never exited: kill it rather than hang the test.
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > Duration::from_secs(20) {
                child.kill().unwrap();
                panic!("warden did not exit within 20 s");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        (started.elapsed(), out)
    };
    let (_, out) = finish(warden(&[
        "plugin",
        "add",
        guests::HOSTILE,
        "--name",
        "hostile",
    ]));
    assert!(out.status.success(), "{out:?}");
    let grant_file = home.path().join("hostile-grant.toml");
    std::fs::write(
        &grant_file,
        format!(
            "[[fs]]\nhost = {:?}\nguest = \"/ro\"\naccess = \"read\"\n\n[limits]\ntimeout_ms = 2000\n",
            ro.path().display().to_string()
        ),
    )
    .unwrap();
    let (_, out) = finish(warden(&[
        "grant",
        "set",
        "hostile",
        grant_file.to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{out:?}");

    let input = r#"{"path": "/ro/fifo"}"#;
    let (took, out) = finish(warden(&["call", "hostile/read-file", "--input", input]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("/ro/fifo is a FIFO, not a regular file or directory"),
        "{stderr}"
    );
    assert!(took < Duration::from_secs(10), "took {took:?}: {stderr}");

    let input = r#"{"path": "/ro/a.txt"}"#;
    let (_, out) = finish(warden(&["call", "hostile/read-file", "--input", input]));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "\"alpha\"");
}

#[tokio::test]
async fn a_device_file_is_refused_even_in_a_granted_dev() {
    let runtime = crate::runtime();
    let hostile = crate::load_into(
        runtime,
        "hostile",
        guests::HOSTILE,
        grant(Path::new("/dev"), "/dev", Access::Read),
    );
    for device in ["/dev/zero", "/dev/null"] {
        let err = runtime
            .call(&hostile, "read-file", &json!({"path": device}))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("{device} is a character device")),
            "{err}"
        );
        assert_eq!(err.code(), "denied", "{err}");
    }
}

/// `/proc` holds the server's own environment (its secrets) and memory
/// (`/proc/self/mem`, a regular file as `stat` sees it), `/sys` the kernel's settings:
/// a grant reaching either, or a parent of them, is refused at load (item 30).
#[tokio::test]
async fn a_grant_reaching_proc_or_sys_is_refused_at_load() {
    let wasm = std::fs::read(guests::HOSTILE).unwrap();
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("proc");
    std::os::unix::fs::symlink("/proc", &link).unwrap();
    let load = |host: &Path, access| {
        crate::runtime().load(
            warden::PluginSource {
                name: "hostile",
                wasm: &wasm,
                extra_docs: Default::default(),
                grant: Some(grant(host, "/host", access)),
                signer: None,
            },
            None,
        )
    };
    for (host, reaches) in [
        (Path::new("/proc"), "/proc"),
        (Path::new("/proc/self"), "/proc"),
        (Path::new("/proc/1/root/etc"), "/proc"),
        (Path::new("/sys"), "/sys"),
        (Path::new("/sys/kernel"), "/sys"),
        (Path::new("/"), "/proc"),
        (link.as_path(), "/proc"),
    ] {
        for access in [Access::Read, Access::ReadWrite] {
            let Err(err) = load(host, access) else {
                panic!("a grant of {} was loaded", host.display());
            };
            let err = err.to_string();
            assert!(err.contains("its grant is refused"), "{err}");
            assert!(
                err.contains(&format!("reaches {reaches} (")),
                "{}: {err}",
                host.display()
            );
        }
    }
    // Other directories are granted, and served.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha").unwrap();
    let plugin = load(dir.path(), Access::Read).unwrap();
    let read = crate::call(&plugin, "read-file", json!({"path": "/host/a.txt"})).await;
    assert_eq!(read.unwrap(), json!("alpha"));
}
