//! Odd spellings of a path (the adversarial catalog's items 21–24): out and back
//! (`a/../a/file`), doubled slashes, `.` segments, a trailing `/.` or `//` after a link,
//! a rooted `//`, and links the guest makes itself. Inside the grant they reach the
//! granted file; through a link to outside they reach nothing, read or change; each
//! open and change is on the audit record, and the host serves the next call.

use serde_json::{Value, json};
use warden::grant::Access;
use warden_tests::guests;

use crate::audited::Audited;

struct Setup {
    host: Audited,
    plugin: warden::Plugin,
    dir: tempfile::TempDir,
    outside: tempfile::TempDir,
}

/// `/data` (read-write) holds `a/file.txt` ("inside"), `dirlink` (to a directory
/// outside holding `secret.txt`) and `link` (to that file).
fn setup() -> Setup {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "s3cret").unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::write(dir.path().join("a/file.txt"), "inside").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("dirlink")).unwrap();
    let secret = outside.path().join("secret.txt");
    std::os::unix::fs::symlink(secret, dir.path().join("link")).unwrap();
    let host = Audited::new();
    let grant = crate::fs_grant(dir.path(), Access::ReadWrite);
    let plugin = host.load_guest("hostile", guests::HOSTILE, grant);
    Setup {
        host,
        plugin,
        dir,
        outside,
    }
}

impl Setup {
    async fn read(&self, path: &str) -> Result<Value, String> {
        let args = json!({"path": path});
        let result = self.host.call(&self.plugin, "read-file", args).await;
        result.map_err(|err| err.to_string())
    }

    async fn change(&self, op: &str, path: &str, to: &str) -> Result<Value, String> {
        let args = json!({"op": op, "path": path, "to": to});
        let result = self.host.call(&self.plugin, "fs-change", args).await;
        result.map_err(|err| err.to_string())
    }

    /// The `fs` records of the latest call: (kind, op, path, error).
    fn fs_records(&self) -> Vec<Value> {
        let records = self.host.records();
        let call = records.iter().rfind(|r| r.kind == "tool.call").unwrap();
        records
            .iter()
            .filter(|r| r.fields["call"] == call.fields["call"] && r.fields["capability"] == "fs")
            .map(|r| json!([r.kind, r.fields["op"], r.fields["path"], r.fields["error"]]))
            .collect()
    }

    /// The directory outside holds its secret and nothing else.
    fn outside_untouched(&self) {
        let mut names: Vec<_> = std::fs::read_dir(self.outside.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["secret.txt"]);
        let secret = std::fs::read_to_string(self.outside.path().join("secret.txt"));
        assert_eq!(secret.unwrap(), "s3cret");
    }
}

#[tokio::test]
async fn spellings_inside_the_grant_reach_the_granted_file() {
    let s = setup();
    for path in [
        "/data/a/../a/file.txt",
        "/data//a//file.txt",
        "/data/./a/./file.txt",
        "/data/a/../../data/a/file.txt",
        "/data/dirlink/../a/file.txt",
    ] {
        let read = s.read(path).await;
        match path {
            // Out of the preopen and back in is out: the path leaves `/data` first.
            "/data/a/../../data/a/file.txt" => {
                assert!(read.is_err(), "{path}: {read:?}");
                continue;
            }
            // `dirlink/..` is the parent of the outside directory, not `/data`.
            "/data/dirlink/../a/file.txt" => {
                let err = read.unwrap_err();
                assert!(!err.contains("inside") && !err.contains("s3cret"), "{err}");
                continue;
            }
            _ => {}
        }
        assert_eq!(read, Ok(json!("inside")), "{path}");
        let records = s.fs_records();
        assert_eq!(records.len(), 1, "{path}: {records:?}");
        assert_eq!(records[0][0], "capability.use", "{path}");
        assert_eq!(records[0][3], Value::Null, "{path}: {records:?}");
    }
    // A change by an out-and-back spelling stays inside.
    let moved = s
        .change("rename", "/data/a/../a/file.txt", "/data/a/./moved.txt")
        .await;
    assert_eq!(moved, Ok(Value::Null));
    assert!(s.dir.path().join("a/moved.txt").exists());
    s.outside_untouched();
}

#[tokio::test]
async fn spellings_through_links_and_rooted_paths_reach_nothing_outside() {
    let s = setup();
    for path in [
        "/data/dirlink/./secret.txt",
        "/data/dirlink//secret.txt",
        "/data/a/../dirlink/secret.txt",
        "/data/link/.",
        "/data/link//",
        "/data/dirlink/.",
        "//data/dirlink/secret.txt",
        "//etc/passwd",
        "/data/../etc/passwd",
    ] {
        let err = s.read(path).await.unwrap_err();
        assert!(
            !err.contains("s3cret") && !err.contains("root:"),
            "{path}: {err}"
        );
        // Each attempt that reached the preopen is on record as a failed open.
        for record in s.fs_records() {
            assert_ne!(record[3], Value::Null, "{path}: {record}");
        }
    }
    // Changes through the link, however spelled, change nothing outside.
    for (op, path, to) in [
        ("unlink", "/data/dirlink/./secret.txt", ""),
        ("unlink", "/data/dirlink//secret.txt", ""),
        ("unlink", "/data/link/.", ""),
        ("rename", "/data/dirlink/secret.txt", "/data/stolen.txt"),
        ("rename", "/data/a/file.txt", "/data/dirlink//planted.txt"),
        ("mkdir", "/data/dirlink//new", ""),
        ("rmdir", "/data/dirlink/.", ""),
        ("set-size", "/data/dirlink/./secret.txt", "0"),
    ] {
        let changed = s.change(op, path, to).await;
        assert!(changed.is_err(), "{op} {path} {to}: {changed:?}");
        let records = s.fs_records();
        assert!(!records.is_empty(), "{op} {path}: nothing on record");
        assert!(
            records.iter().all(|r| r[3] != Value::Null),
            "{op} {path}: {records:?}"
        );
        s.outside_untouched();
    }
    assert!(s.dir.path().join("a/file.txt").exists());
    // Links the guest makes itself lead nowhere outside either.
    let secret = s.outside.path().join("secret.txt");
    let outside_dir = s.outside.path().to_str().unwrap().to_string();
    for (link, to, read) in [
        ("/data/abs", secret.to_str().unwrap(), "/data/abs"),
        (
            "/data/absdir",
            outside_dir.as_str(),
            "/data/absdir/secret.txt",
        ),
        ("/data/up", "../../../../..", "/data/up/etc/passwd"),
        ("/data/a/up", "..", "/data/a/up/dirlink/secret.txt"),
    ] {
        // Made or refused; either way, reading through it reaches nothing outside.
        let _ = s.change("symlink", link, to).await;
        let err = s.read(read).await.unwrap_err();
        assert!(
            !err.contains("s3cret") && !err.contains("root:"),
            "{read}: {err}"
        );
    }
    s.outside_untouched();
    // The host serves the next call.
    assert_eq!(s.read("/data/a/file.txt").await, Ok(json!("inside")));
}
