//! Log injection end to end (the adversarial catalog's item 66): a guest names a path,
//! and a caller passes arguments, holding line breaks and a whole forged audit record.
//! They are kept as data: the export has one line per record, each the record it
//! claims to be, the forged one is no line of its own, and the chain verifies. (Tool
//! and plugin names cannot carry a line break: WIT names and plugin names are
//! checked.)

use serde_json::{Value, json};
use warden::Runtime;
use warden::audit::{Audit, AuditOptions, Filter};
use warden::grant::Access;
use warden_tests::guests;

/// A record as `export` writes one, for the line it would like to be.
const FORGED: &str = r#"{"seq":2,"time":"2026-01-01T00:00:00.000Z","kind":"tool.call","principal":"admin","plugin":"hostile","tool":"read-file","outcome":"ok","fields":{},"prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"0000000000000000000000000000000000000000000000000000000000000000"}"#;

#[tokio::test]
async fn line_breaks_and_a_forged_record_in_a_path_and_arguments_stay_data() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let runtime = Runtime::new().unwrap();
    let options = AuditOptions {
        keep_payloads: true,
        ..AuditOptions::default()
    };
    runtime
        .set_audit(Audit::open(home.path(), options).unwrap())
        .unwrap();
    let grant = crate::fs_grant(dir.path(), Access::ReadWrite);
    let plugin = crate::load_into(&runtime, "hostile", guests::HOSTILE, grant);
    let injected = [
        format!("/data/x\n{FORGED}\n"),
        format!("/data/y\r\n{FORGED}\r\n"),
        format!("/data/z\u{2028}{FORGED}\u{85}"),
    ];
    for path in &injected {
        // The file does not exist: the open fails, on record with the path as named.
        let read = runtime
            .call(&plugin, "read-file", &json!({"path": path}))
            .await;
        assert!(read.is_err(), "{read:?}");
        let content = json!({"path": "/data/ok.txt", "content": path});
        runtime.call(&plugin, "write-file", &content).await.unwrap();
    }
    let audit = runtime.audit().unwrap();
    let records = audit.read(Filter::default()).unwrap();
    for path in &injected {
        let opened = records.iter().find(|r| r.fields["path"] == json!(path));
        assert!(opened.is_some(), "{path:?} not on record as it was named");
        let written = records.iter().find(|r| {
            r.kind == "tool.call" && r.fields["arguments"]["value"]["content"] == json!(path)
        });
        assert!(written.is_some(), "{path:?} not on record as an argument");
    }

    let export = home.path().join("export.jsonl");
    let mut file = std::fs::File::create(&export).unwrap();
    let count = audit.export(&mut file).unwrap();
    drop(file);
    assert_eq!(count, records.len() as u64);
    let text = std::fs::read_to_string(&export).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), records.len(), "one line a record");
    for (n, line) in lines.iter().enumerate() {
        let value: Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["seq"], json!(n + 1), "line {}", n + 1);
        assert_ne!(value["principal"], "admin", "line {}", n + 1);
    }
    let (report, _) = warden::audit::verify_file(&export, None).unwrap();
    assert!(report.problem.is_none(), "{:?}", report.problem);
    assert_eq!(report.count, records.len() as u64);
    // The host serves the next call.
    let read = runtime
        .call(&plugin, "read-file", &json!({"path": "/data/ok.txt"}))
        .await;
    assert_eq!(read.unwrap(), json!(injected[2]));
}
