//! Changes to the file system are on the record, one per change, and a read-only
//! grant's refusal of each is a `capability.denied` naming the read-only directory.
//! Only opens used to be recorded: a plugin could unlink, rename, mkdir, symlink or
//! set times without a trace, and its refused attempts left none either.

use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use warden::audit::{Audit, AuditOptions, Filter, Record};
use warden::grant::{Access, FsGrant, Grant};
use warden::{Plugin, Runtime};
use warden_tests::guests;

/// A runtime with an audit log in `home`.
fn recorded(home: &Path) -> Runtime {
    let runtime = Runtime::new().unwrap();
    runtime
        .set_audit(Audit::open(home, AuditOptions::default()).unwrap())
        .unwrap();
    runtime
}

fn fs(host: &Path, guest: &str, access: Access) -> FsGrant {
    FsGrant {
        host: host.to_path_buf(),
        guest: guest.into(),
        access,
    }
}

async fn change(
    runtime: &Runtime,
    plugin: &Plugin,
    op: &str,
    path: &str,
    to: &str,
) -> Result<Value, warden::CallError> {
    let args = json!({"op": op, "path": path, "to": to});
    runtime.call(plugin, "fs-change", &args).await
}

/// The file-system records other than opens: kind, op, path, second path, outcome.
fn changes(records: &[Record]) -> Vec<(String, String, Value, Value, String)> {
    records
        .iter()
        .filter(|r| r.fields.get("capability") == Some(&json!("fs")))
        .filter(|r| r.fields.get("op") != Some(&json!("open")))
        .map(|r| {
            let f = &r.fields;
            let second = f
                .get("to")
                .or_else(|| f.get("points_to"))
                .cloned()
                .unwrap_or(Value::Null);
            (
                r.kind.clone(),
                f["op"].as_str().unwrap().to_string(),
                f["path"].clone(),
                second,
                r.outcome.map(|o| o.as_str()).unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn each_change_under_a_read_write_grant_is_one_record() {
    let home = tempfile::tempdir().unwrap();
    let rw = tempfile::tempdir().unwrap();
    let runtime = recorded(home.path());
    let grant = Grant {
        fs: vec![fs(rw.path(), "/rw", Access::ReadWrite)],
        ..Grant::default()
    };
    let hostile = crate::load_into(&runtime, "hostile", guests::HOSTILE, grant);
    let host = |name: &str| rw.path().join(name);

    change(&runtime, &hostile, "mkdir", "/rw/d", "")
        .await
        .unwrap();
    let write = json!({"path": "/rw/d/a.txt", "content": "hello"});
    runtime.call(&hostile, "write-file", &write).await.unwrap();
    change(&runtime, &hostile, "rename", "/rw/d/a.txt", "/rw/d/b.txt")
        .await
        .unwrap();
    change(&runtime, &hostile, "set-times", "/rw/d/b.txt", "1000000000")
        .await
        .unwrap();
    let modified = std::fs::metadata(host("d/b.txt")).unwrap().modified();
    assert_eq!(
        modified.unwrap(),
        UNIX_EPOCH + Duration::from_secs(1_000_000_000)
    );
    change(&runtime, &hostile, "touch", "/rw/d/b.txt", "2000000000")
        .await
        .unwrap();
    let modified = std::fs::metadata(host("d/b.txt")).unwrap().modified();
    assert_eq!(
        modified.unwrap(),
        UNIX_EPOCH + Duration::from_secs(2_000_000_000)
    );
    change(&runtime, &hostile, "set-size", "/rw/d/b.txt", "2")
        .await
        .unwrap();
    assert_eq!(std::fs::read_to_string(host("d/b.txt")).unwrap(), "he");
    change(&runtime, &hostile, "link", "/rw/d/b.txt", "/rw/d/c.txt")
        .await
        .unwrap();
    change(&runtime, &hostile, "symlink", "/rw/d/s", "b.txt")
        .await
        .unwrap();
    assert_eq!(std::fs::read_link(host("d/s")).unwrap(), Path::new("b.txt"));
    for path in ["/rw/d/s", "/rw/d/c.txt", "/rw/d/b.txt"] {
        change(&runtime, &hostile, "unlink", path, "")
            .await
            .unwrap();
    }
    change(&runtime, &hostile, "rmdir", "/rw/d", "")
        .await
        .unwrap();
    assert!(!host("d").exists());
    // A change that fails for another reason than the grant is a use with its error.
    let err = change(&runtime, &hostile, "rmdir", "/rw/d", "")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "tool-error", "{err}");

    let records = runtime.audit().unwrap().read(Filter::default()).unwrap();
    let use_ = |op: &str, path: &str, to: Value, outcome: &str| {
        (
            "capability.use".to_string(),
            op.to_string(),
            json!(path),
            to,
            outcome.to_string(),
        )
    };
    assert_eq!(
        changes(&records),
        [
            use_("mkdir", "/rw/d", Value::Null, "ok"),
            use_("rename", "/rw/d/a.txt", json!("/rw/d/b.txt"), "ok"),
            use_("set-times", "/rw/d/b.txt", Value::Null, "ok"),
            use_("set-times", "/rw/d/b.txt", Value::Null, "ok"),
            use_("set-size", "/rw/d/b.txt", Value::Null, "ok"),
            use_("link", "/rw/d/b.txt", json!("/rw/d/c.txt"), "ok"),
            use_("symlink", "/rw/d/s", json!("b.txt"), "ok"),
            use_("unlink", "/rw/d/s", Value::Null, "ok"),
            use_("unlink", "/rw/d/c.txt", Value::Null, "ok"),
            use_("unlink", "/rw/d/b.txt", Value::Null, "ok"),
            use_("rmdir", "/rw/d", Value::Null, "ok"),
            use_("rmdir", "/rw/d", Value::Null, "error"),
        ],
        "{records:#?}"
    );
    let failed = records
        .iter()
        .filter(|r| r.fields.get("op") == Some(&json!("rmdir")))
        .nth(1)
        .unwrap();
    assert_eq!(failed.fields["error"], json!("no-entry"), "{failed:?}");
    // The opens stay as they were: the write's open, and the two the guest made to
    // touch and to truncate through a descriptor.
    let opens: Vec<_> = records
        .iter()
        .filter(|r| r.fields.get("op") == Some(&json!("open")))
        .map(|r| (r.fields["path"].clone(), r.fields["mode"].clone()))
        .collect();
    assert_eq!(
        opens,
        [
            (json!("/rw/d/a.txt"), json!("write+create+truncate")),
            (json!("/rw/d/b.txt"), json!("read")),
            (json!("/rw/d/b.txt"), json!("read-write")),
        ],
        "{records:#?}"
    );
    // Each change is tied to the call that made it.
    let calls: Vec<_> = records.iter().filter(|r| r.kind == "tool.call").collect();
    assert_eq!(calls.len(), 13);
    let mkdir = records
        .iter()
        .find(|r| r.fields.get("op") == Some(&json!("mkdir")))
        .unwrap();
    assert_eq!(mkdir.fields["call"], calls[0].fields["call"]);
}

#[tokio::test]
async fn a_read_only_grant_refuses_each_change_on_record_and_then_serves() {
    let home = tempfile::tempdir().unwrap();
    let (ro, rw) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    std::fs::write(ro.path().join("keep.txt"), "original").unwrap();
    std::fs::create_dir(ro.path().join("sub")).unwrap();
    std::fs::write(rw.path().join("mine.txt"), "mine").unwrap();
    let before = std::fs::metadata(ro.path().join("keep.txt")).unwrap();
    let runtime = recorded(home.path());
    let grant = Grant {
        fs: vec![
            fs(ro.path(), "/ro", Access::Read),
            fs(rw.path(), "/rw", Access::ReadWrite),
        ],
        ..Grant::default()
    };
    let hostile = crate::load_into(&runtime, "hostile", guests::HOSTILE, grant);

    let attempts = [
        ("mkdir", "/ro/d", ""),
        ("rmdir", "/ro/sub", ""),
        ("unlink", "/ro/keep.txt", ""),
        ("rename", "/ro/keep.txt", "/ro/moved.txt"),
        ("rename", "/rw/mine.txt", "/ro/mine.txt"),
        ("rename", "/ro/keep.txt", "/rw/stolen.txt"),
        ("link", "/ro/keep.txt", "/ro/linked.txt"),
        ("symlink", "/ro/s", "keep.txt"),
        ("set-times", "/ro/keep.txt", "1000"),
        ("touch", "/ro/keep.txt", "1000"),
        ("set-size", "/ro/keep.txt", "0"),
    ];
    for (op, path, to) in attempts {
        let err = change(&runtime, &hostile, op, path, to).await.unwrap_err();
        // The guest sees the error, as wasmtime-wasi gives it.
        assert_eq!(err.code(), "tool-error", "{op} {path}: {err}");
        assert!(err.to_string().contains("not-permitted"), "{op}: {err}");
    }

    let records = runtime.audit().unwrap().read(Filter::default()).unwrap();
    let denied = |op: &str, path: &str, to: Value| {
        (
            "capability.denied".to_string(),
            op.to_string(),
            json!(path),
            to,
            "denied".to_string(),
        )
    };
    assert_eq!(
        changes(&records),
        [
            denied("mkdir", "/ro/d", Value::Null),
            denied("rmdir", "/ro/sub", Value::Null),
            denied("unlink", "/ro/keep.txt", Value::Null),
            denied("rename", "/ro/keep.txt", json!("/ro/moved.txt")),
            denied("rename", "/rw/mine.txt", json!("/ro/mine.txt")),
            denied("rename", "/ro/keep.txt", json!("/rw/stolen.txt")),
            denied("link", "/ro/keep.txt", json!("/ro/linked.txt")),
            denied("symlink", "/ro/s", json!("keep.txt")),
            denied("set-times", "/ro/keep.txt", Value::Null),
            denied("set-times", "/ro/keep.txt", Value::Null),
            denied("set-size", "/ro/keep.txt", Value::Null),
        ],
        "{records:#?}"
    );
    for record in records
        .iter()
        .filter(|r| r.kind == "capability.denied" && r.fields["op"] != json!("open"))
    {
        let reason = record.fields["reason"].as_str().unwrap();
        assert!(reason.contains("the grant gives /ro read only"), "{reason}");
        assert!(reason.starts_with("plugin \"hostile\": "), "{reason}");
        assert_eq!(record.fields["target"], record.fields["path"]);
        assert_eq!(record.fields["error"], json!("not-permitted"));
    }
    let reason = |op: &str, path: &str| {
        records
            .iter()
            .find(|r| r.fields["op"] == json!(op) && r.fields["path"] == json!(path))
            .map(|r| r.fields["reason"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(
        reason("unlink", "/ro/keep.txt"),
        "plugin \"hostile\": unlink /ro/keep.txt refused (not-permitted): the grant gives /ro read only; set access = \"read-write\" on its [[fs]] entry to allow changes"
    );
    assert!(
        reason("rename", "/rw/mine.txt").contains("rename /rw/mine.txt -> /ro/mine.txt"),
        "{}",
        reason("rename", "/rw/mine.txt")
    );
    // set-size first tried to open for writing: that open is refused on record too.
    let opens: Vec<_> = records
        .iter()
        .filter(|r| r.fields.get("op") == Some(&json!("open")))
        .map(|r| (r.kind.as_str(), r.fields["mode"].clone()))
        .collect();
    assert_eq!(
        opens,
        [
            ("capability.use", json!("read")),
            ("capability.denied", json!("read-write")),
            ("capability.use", json!("read")),
        ],
        "{records:#?}"
    );

    // Nothing changed, and the host then serves a normal call.
    let after = std::fs::metadata(ro.path().join("keep.txt")).unwrap();
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());
    let mut names: Vec<_> = std::fs::read_dir(ro.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["keep.txt", "sub"]);
    assert!(rw.path().join("mine.txt").exists());
    let read = json!({"path": "/ro/keep.txt"});
    assert_eq!(
        runtime.call(&hostile, "read-file", &read).await.unwrap(),
        json!("original")
    );
    change(&runtime, &hostile, "mkdir", "/rw/d", "")
        .await
        .unwrap();
    assert!(rw.path().join("d").is_dir());
}

#[tokio::test]
async fn refusals_a_tool_ignores_are_on_record_within_the_per_call_cap() {
    let home = tempfile::tempdir().unwrap();
    let ro = tempfile::tempdir().unwrap();
    std::fs::write(ro.path().join("keep.txt"), "original").unwrap();
    let runtime = recorded(home.path());
    let grant = Grant {
        fs: vec![fs(ro.path(), "/ro", Access::Read)],
        ..Grant::default()
    };
    let hostile = crate::load_into(&runtime, "hostile", guests::HOSTILE, grant);
    // The per-call cap of opens and changes recorded one by one.
    let max: u64 = 1000;
    let args = json!({"op": "unlink", "path": "/ro/keep.txt", "to": "", "count": max + 5});
    let failed = runtime
        .call(&hostile, "fs-change-ignoring", &args)
        .await
        .unwrap();
    // The tool shrugged every refusal off and succeeded: each is still on record, up
    // to the cap, and the rest are counted.
    assert_eq!(failed, json!(max + 5));
    let records = runtime.audit().unwrap().read(Filter::default()).unwrap();
    let denied = records
        .iter()
        .filter(|r| r.kind == "capability.denied" && r.fields["op"] == json!("unlink"))
        .count();
    assert_eq!(denied, max as usize);
    let counted: Vec<_> = records
        .iter()
        .filter_map(|r| r.fields.get("unrecorded"))
        .collect();
    assert_eq!(counted, [&json!(5)]);
    let call = records.iter().find(|r| r.kind == "tool.call").unwrap();
    assert_eq!(call.outcome.map(|o| o.as_str()), Some("ok"));
    assert!(ro.path().join("keep.txt").exists());
}
