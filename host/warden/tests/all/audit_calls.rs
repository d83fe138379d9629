//! Tool calls on record: each call's records are in the audit log, with the call's
//! principal, before the caller sees its result.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use warden::audit::{Audit, AuditOptions, Filter, Record};
use warden::grant::{Access, EnvGrant, FsGrant, Grant, NetGrant, SecretGrant};
use warden::limits::Limits;
use warden::{Plugin, Runtime};
use warden_tests::guests;

use crate::upstream::Upstream;

/// A runtime of its own that records to an audit log in a temporary home.
struct Recorded {
    runtime: Runtime,
    home: tempfile::TempDir,
}

impl Recorded {
    fn new() -> Self {
        let home = tempfile::tempdir().unwrap();
        let runtime = Runtime::new().unwrap();
        runtime
            .set_audit(Audit::open(home.path(), AuditOptions::default()).unwrap())
            .unwrap();
        Self { runtime, home }
    }

    fn load(&self, name: &str, path: &str, grant: Grant) -> Plugin {
        crate::load_into(&self.runtime, name, path, grant)
    }

    fn records(&self) -> Vec<Record> {
        self.runtime
            .audit()
            .unwrap()
            .read(Filter::default())
            .unwrap()
    }

    fn kinds(&self) -> Vec<String> {
        self.records().into_iter().map(|r| r.kind).collect()
    }
}

fn sha256_of_canonical(value: &Value) -> String {
    use sha2::Digest as _;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(warden::audit::canonical::to_vec(
            value
        )))
    )
}

#[tokio::test]
async fn a_call_is_on_record_with_digests_not_payloads() {
    let rec = Recorded::new();
    let text = rec.load("text", guests::TEXT, Grant::default());
    let args = json!({"text": "a distinctive-argument-string here"});
    let result = rec
        .runtime
        .call_as("user:alice", &text, "word-count", &args)
        .await
        .unwrap();
    // The record was durable before the answer: it is there as soon as we look.
    let records = rec.records();
    assert_eq!(records.len(), 1);
    let call = &records[0];
    assert_eq!(call.kind, "tool.call");
    assert_eq!(call.principal, "user:alice");
    assert_eq!(call.plugin.as_deref(), Some("text"));
    assert_eq!(call.tool.as_deref(), Some("word-count"));
    assert_eq!(call.outcome.map(|o| o.as_str()), Some("ok"));
    let f = &call.fields;
    assert_eq!(f["digest"], json!(text.digest));
    assert_eq!(f["arguments"]["sha256"], json!(sha256_of_canonical(&args)));
    assert_eq!(f["result"]["sha256"], json!(sha256_of_canonical(&result)));
    assert!(f["arguments"].get("value").is_none());
    assert!(f["duration_us"].as_u64().unwrap() > 0);
    assert!(f["fuel_used"].as_u64().unwrap() > 0);
    assert!(f["memory_peak_bytes"].as_u64().unwrap() > 0);
    // No payload in the database file, only digests.
    let db = std::fs::read(rec.home.path().join("audit.db")).unwrap();
    let wal = std::fs::read(rec.home.path().join("audit.db-wal")).unwrap_or_default();
    let journal = std::fs::read(rec.home.path().join("audit.journal")).unwrap_or_default();
    for bytes in [&db, &wal, &journal] {
        assert!(
            !bytes
                .windows(b"distinctive-argument".len())
                .any(|w| w == b"distinctive-argument")
        );
    }
    assert!(
        rec.runtime
            .audit()
            .unwrap()
            .verify()
            .unwrap()
            .problem
            .is_none()
    );
}

#[tokio::test]
async fn denials_limits_and_errors_are_on_record() {
    let rec = Recorded::new();
    let fetch = rec.load("fetch", guests::FETCH, Grant::default());
    let err = rec
        .runtime
        .call_as(
            "user:bob",
            &fetch,
            "get",
            &json!({"url": "http://127.0.0.1:9/"}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "denied");
    let hostile = rec.load(
        "hostile",
        guests::HOSTILE,
        Grant {
            limits: Limits {
                timeout_ms: 100,
                ..Limits::default()
            },
            ..Grant::default()
        },
    );
    let err = rec
        .runtime
        .call_as("user:bob", &hostile, "loop-forever", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "limit");
    let err = rec
        .runtime
        .call_as("user:bob", &hostile, "no-such-tool", &json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "unknown-tool");

    assert_eq!(
        rec.kinds(),
        [
            "capability.denied",
            "tool.call",
            "limit.hit",
            "tool.call",
            "tool.call"
        ]
    );
    let records = rec.records();
    let denied = &records[0];
    assert_eq!(denied.outcome.map(|o| o.as_str()), Some("denied"));
    assert_eq!(denied.fields["capability"], "net");
    assert_eq!(denied.fields["target"], "GET http://127.0.0.1:9/");
    assert_eq!(denied.fields["call"], records[1].fields["call"]);
    assert_eq!(records[1].outcome.map(|o| o.as_str()), Some("denied"));
    assert_eq!(records[2].fields["limit"], "timeout");
    assert_eq!(records[3].fields["error"]["code"], "limit");
    assert_eq!(records[4].fields["error"]["code"], "unknown-tool");
    assert!(records.iter().all(|r| r.principal == "user:bob"));
}

#[tokio::test]
async fn http_requests_are_on_record_with_status_bytes_and_secret_names_only() {
    let var = "AUDIT_CALLS_TEST_SECRET";
    #[allow(
        unsafe_code,
        reason = "set_var is unsafe in edition 2024; only this test reads it"
    )]
    unsafe {
        std::env::set_var(var, "audit-secret-value")
    };
    let upstream = Upstream::start().await;
    let rec = Recorded::new();
    let probe = rec.load(
        "netprobe",
        guests::NETPROBE,
        Grant {
            net: Some(NetGrant {
                allow: vec![upstream.url("")],
                ..NetGrant::default()
            }),
            secrets: BTreeMap::from([(
                upstream.url(""),
                SecretGrant {
                    header: "Authorization".into(),
                    from_env: Some(var.into()),
                    from_file: None,
                    prefix: None,
                },
            )]),
            ..Grant::default()
        },
    );
    rec.runtime
        .call_as(
            "user:carol",
            &probe,
            "http",
            &json!({"method": "GET", "url": upstream.url("/big?n=300"), "headers": []}),
        )
        .await
        .unwrap();
    let records = rec.records();
    assert_eq!(rec.kinds(), ["capability.use", "tool.call"]);
    let used = &records[0].fields;
    assert_eq!(used["capability"], "net");
    assert_eq!(used["method"], "GET");
    assert_eq!(used["url"], upstream.url("/big?n=300"));
    assert_eq!(used["status"], 200);
    assert_eq!(used["bytes"], 300);
    assert_eq!(used["address"], upstream.addr.to_string());
    assert_eq!(used["secrets_injected"], json!(["Authorization"]));
    let everything = serde_json::to_string(&records).unwrap();
    assert!(!everything.contains("audit-secret-value"));
}

#[tokio::test]
async fn files_opened_and_the_environment_read_are_on_record() {
    let rec = Recorded::new();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.txt"), "alpha").unwrap();
    let grant = Grant {
        fs: vec![FsGrant {
            host: dir.path().to_path_buf(),
            guest: "/data".into(),
            access: Access::Read,
        }],
        env: EnvGrant {
            vars: BTreeMap::from([("REGION".into(), "a-secret-looking-value".into())]),
        },
        ..Grant::default()
    };
    let hostile = rec.load("hostile", guests::HOSTILE, grant);
    let read = |path: &str| json!({"path": path});
    let out = rec
        .runtime
        .call(&hostile, "read-file", &read("/data/a.txt"))
        .await;
    assert_eq!(out.unwrap(), json!("alpha"));
    let missing = rec
        .runtime
        .call(&hostile, "read-file", &read("/data/none.txt"))
        .await;
    assert_eq!(missing.unwrap_err().code(), "tool-error");
    let write = json!({"path": "/data/b.txt", "content": "x"});
    let refused = rec.runtime.call(&hostile, "write-file", &write).await;
    assert_eq!(refused.unwrap_err().code(), "tool-error");
    let env = rec
        .runtime
        .call(&hostile, "env", &json!({"name": "REGION"}))
        .await;
    assert_eq!(env.unwrap(), json!("a-secret-looking-value"));

    let records = rec.records();
    let fs: Vec<_> = records
        .iter()
        .filter(|r| r.fields.get("capability") == Some(&json!("fs")))
        .map(|r| {
            let f = &r.fields;
            (
                r.kind.as_str(),
                f["path"].clone(),
                f["mode"].clone(),
                r.outcome.map(|o| o.as_str()),
            )
        })
        .collect();
    assert_eq!(
        fs,
        [
            (
                "capability.use",
                json!("/data/a.txt"),
                json!("read"),
                Some("ok")
            ),
            (
                "capability.use",
                json!("/data/none.txt"),
                json!("read"),
                Some("error")
            ),
            (
                "capability.denied",
                json!("/data/b.txt"),
                json!("write+create+truncate"),
                Some("denied")
            ),
        ],
        "{records:#?}"
    );
    let missing = records
        .iter()
        .find(|r| r.fields.get("path") == Some(&json!("/data/none.txt")));
    assert_eq!(missing.unwrap().fields["error"], json!("no-entry"));
    let denied = records
        .iter()
        .find(|r| r.kind == "capability.denied")
        .unwrap();
    assert!(
        denied.fields["reason"]
            .as_str()
            .unwrap()
            .contains("read-only")
            || denied.fields["reason"]
                .as_str()
                .unwrap()
                .contains("not-permitted"),
        "{denied:?}"
    );
    // Each open is tied to its call: the read's record carries the first call's id.
    let calls: Vec<_> = records.iter().filter(|r| r.kind == "tool.call").collect();
    assert_eq!(fs.len() + 1 + calls.len(), records.len(), "{records:#?}");

    // The environment read names the variable, never its value.
    let env: Vec<_> = records
        .iter()
        .filter(|r| r.fields.get("capability") == Some(&json!("env")))
        .collect();
    assert_eq!(env.len(), 1, "{records:#?}");
    assert_eq!(env[0].fields["names"], json!(["REGION"]));
    let everything = serde_json::to_string(&records).unwrap();
    assert!(!everything.contains("a-secret-looking-value"));
}

#[tokio::test]
async fn a_log_that_cannot_be_written_withholds_the_result() {
    let rec = Recorded::new();
    let text = rec.load("text", guests::TEXT, Grant::default());
    let args = json!({"text": "one two"});
    rec.runtime
        .call_as("user:dave", &text, "word-count", &args)
        .await
        .unwrap();
    // Take the database away under the writer: a read-only file system would do the same.
    let db = rec.home.path().join("audit.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("DROP TABLE records;").unwrap();
    }
    let err = rec
        .runtime
        .call_as("user:dave", &text, "word-count", &args)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "internal");
    assert!(err.to_string().contains("its result is withheld"), "{err}");
}
