//! A crash test of the audit log: a `warden` process calls a tool from several tasks at
//! once and prints each call's number once its result is back (so once its records are
//! on disk); the test kills it with SIGKILL at a random moment, several times, and then
//! finds every acknowledged call's `tool.call` record in the log, and the chain
//! verifies (`warden audit verify` exits 0). It runs with each audit durability:
//! `full` (synced before each answer) and `process` (written before each answer, synced
//! within 10 ms): a killed process loses no answered call in either.
//!
//! The process is `warden audit call-loop PLUGIN/TOOL --text PREFIX --callers N`, a
//! hidden subcommand that exists for this test: each call's arguments are
//! `{"text": "PREFIX <n>"}`, and it prints `<n>` after call n returned. The records
//! hold the arguments' digest (payloads are not kept by default), which the test
//! recomputes for each printed `n`.

use std::collections::HashSet;
use std::hash::{BuildHasher as _, Hasher as _};
use std::io::Read as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use warden::audit::{Audit, AuditOptions, Filter, canonical, digest};
use warden_tests::guests;

/// A random number (std's hasher keys are random per process).
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    );
    hasher.finish()
}

/// A home with the `text` plugin added through the CLI.
pub(crate) fn home_with_text() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let out = warden(home.path())
        .args(["plugin", "add", guests::TEXT, "--name", "text"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    home
}

pub(crate) fn warden(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command
        .arg("--home")
        .arg(home)
        .env_remove("RUST_LOG")
        .env_remove("WARDEN_AUDIT_KEEP_PAYLOADS");
    command
}

/// Runs the call loop until it acknowledged `at_least` calls and then for a random
/// while more, kills it with SIGKILL, and returns the acknowledged call numbers.
pub(crate) fn run_and_kill(
    home: &Path,
    durability: &str,
    prefix: &str,
    at_least: usize,
) -> Vec<u64> {
    let mut child = warden(home)
        .env("WARDEN_AUDIT_DURABILITY", durability)
        .args(["audit", "call-loop", "text/word-count", "--callers", "8"])
        .args(["--text", prefix])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running warden");
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        // Read everything the process printed, up to its death.
        let mut text = String::new();
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    text.push_str(&String::from_utf8_lossy(&buf[..n]));
                    let _ = tx.send(text.matches('\n').count());
                }
            }
        }
        text
    });
    // Wait until it is well into its loop, then a random while (0–400 ms) more.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = 0;
    while seen < at_least {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(lines) => seen = lines,
            Err(_) => {
                if let Ok(Some(status)) = child.try_wait() {
                    let mut err = String::new();
                    child.stderr.take().unwrap().read_to_string(&mut err).ok();
                    panic!("the call loop ended early ({status}): {err}");
                }
                assert!(Instant::now() < deadline, "no acknowledged calls in 120 s");
            }
        }
    }
    std::thread::sleep(Duration::from_millis(random() % 400));
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    let status = child.wait().unwrap();
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "killed by SIGKILL: {status}"
    );
    let text = reader.join().unwrap();
    // A line cut short by the kill was not (fully) acknowledged: only whole lines count.
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => "",
    };
    complete
        .lines()
        .map(|l| l.trim().parse().expect("a call number"))
        .collect()
}

#[test]
fn every_acknowledged_call_survives_sigkill() {
    crash_rounds("full");
}

#[test]
fn every_acknowledged_call_survives_sigkill_with_process_durability() {
    crash_rounds("process");
}

fn crash_rounds(durability: &str) {
    let home = home_with_text();
    let h = home.path();

    let mut acknowledged = 0;
    for round in 0..3 {
        let prefix = format!("crash-round-{round}");
        let acked = run_and_kill(h, durability, &prefix, 50 + round * 50);
        assert!(!acked.is_empty());
        acknowledged += acked.len();

        // Every acknowledged call has its record: match by the arguments' digest.
        let audit = Audit::open(h, AuditOptions::default()).unwrap();
        let recorded: HashSet<String> = audit
            .read(Filter {
                kind: Some("tool.call".into()),
                ..Filter::default()
            })
            .unwrap()
            .into_iter()
            .filter(|r| r.outcome == Some(warden::audit::Outcome::Ok))
            .filter_map(|r| r.fields["arguments"]["sha256"].as_str().map(String::from))
            .collect();
        for n in &acked {
            let args = json!({ "text": format!("{prefix} {n}") });
            let sha = digest(&canonical::to_vec(&args));
            assert!(
                recorded.contains(&sha),
                "{durability}, round {round}: call {n} was acknowledged but has no record ({} acknowledged, {} recorded)",
                acked.len(),
                recorded.len()
            );
        }
        let report = audit.verify().unwrap();
        assert!(
            report.problem.is_none(),
            "round {round}: {:?}",
            report.problem
        );
        drop(audit);
    }
    assert!(acknowledged >= 300, "{acknowledged}");

    let out = warden(h).args(["audit", "verify"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("ok: "));
}
