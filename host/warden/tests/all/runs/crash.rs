//! A `warden run` killed with SIGKILL in the middle of a run, then `warden runs
//! resume`: the run continues from its last recorded step, a tool call whose result
//! was recorded is not run again, and a call that was started but not recorded (the
//! tool is not idempotent) is not run again either: the agent observes it as
//! `interrupted`; a tool its manifest marks idempotent is run again. The `tally` tool counts its executions in the home's memory, which
//! the test reads while the process runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use warden::memory::{SqliteMemory, Store as _};
use warden_tests::guests;

fn warden(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command.arg("--home").arg(home).env_remove("RUST_LOG");
    command
}

fn ok(command: &mut Command) -> String {
    let out = command.output().expect("running warden");
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn install(home: &Path, tally_manifest: Option<&str>) {
    let grants = home.join("grant-files");
    std::fs::create_dir_all(&grants).unwrap();
    std::fs::write(
        grants.join("scripted.toml"),
        "[tools]\nallow = [\"tally/*\"]\n",
    )
    .unwrap();
    std::fs::write(
        grants.join("tally.toml"),
        "[memory]\ntally = \"read-write\"\n",
    )
    .unwrap();
    for (name, wasm) in [("scripted", guests::SCRIPTED), ("tally", guests::TALLY)] {
        let mut add = warden(home);
        add.args(["plugin", "add", wasm, "--name", name, "--grant"])
            .arg(grants.join(format!("{name}.toml")));
        if let (Some(manifest), "tally") = (tally_manifest, name) {
            std::fs::write(grants.join("tally-manifest.toml"), manifest).unwrap();
            add.arg("--manifest")
                .arg(grants.join("tally-manifest.toml"));
        }
        ok(&mut add);
    }
}

fn tally(memory: &SqliteMemory, key: &str) -> u64 {
    memory
        .get("tally", key, warden::memory::now())
        .unwrap()
        .map_or(0, |e| String::from_utf8(e.value).unwrap().parse().unwrap())
}

/// Runs the script below with `warden run`, kills it while step 2's call sleeps, resumes
/// it with `warden runs resume`, and returns the finished run and the memory.
fn kill_and_resume(home: &Path, sleep_ms: u32) -> (Value, SqliteMemory) {
    // Step 1 bumps `fast` (recorded); step 2 bumps `slow`, then sleeps: the process is
    // killed while the tool sleeps, after its side effect, before its result is
    // recorded.
    let task = json!({ "script": [
        { "call": [{ "id": "a", "tool": "tally/bump", "arguments": { "key": "fast" } }] },
        { "call": [{ "id": "b", "tool": "tally/bump", "arguments": { "key": "slow", "sleep-ms": sleep_ms } }] },
        { "finish": "resumed" },
    ] });
    let mut child = warden(home)
        .args(["run", "scripted", "--task", &task.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let memory = SqliteMemory::open(&home.join("memory.db")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while tally(&memory, "slow") == 0 {
        assert!(Instant::now() < deadline, "the run never reached step 2");
        assert!(
            child.try_wait().unwrap().is_none(),
            "warden run ended early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!((tally(&memory, "fast"), tally(&memory, "slow")), (1, 1));

    let listed = ok(warden(home).args(["runs", "list", "--status", "running"]));
    let id = listed
        .split_whitespace()
        .next()
        .expect("the killed run is listed")
        .to_string();
    let out = ok(warden(home).args(["runs", "resume", &id]));
    (serde_json::from_str(&out).unwrap(), memory)
}

#[test]
fn a_run_killed_mid_call_resumes_without_running_any_side_effect_twice() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    install(home, None);
    let (run, memory) = kill_and_resume(home, 8000);
    assert_eq!(run["status"], "finished", "{run}");
    assert_eq!(
        run["result"]["observations"],
        json!([{ "tools": { "a": 1 } }, { "tools": { "b": { "interrupted": true } } }])
    );
    // Neither side effect happened twice.
    assert_eq!((tally(&memory, "fast"), tally(&memory, "slow")), (1, 1));
    // The record says so too.
    let id = run["id"].as_str().unwrap();
    let shown: Value = serde_json::from_str(&ok(warden(home).args(["runs", "show", id]))).unwrap();
    assert_eq!(shown["steps"].as_array().unwrap().len(), 3);
    let audit = ok(warden(home).args(["audit", "query", "--kind", "run.interrupted"]));
    assert!(audit.contains("tally/bump"), "{audit}");
}

#[test]
fn an_interrupted_call_of_an_idempotent_tool_is_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // The manifest says running `bump` again is safe (for this test's sake).
    let manifest =
        "name = \"tally\"\n\n[tools.bump]\nidempotent = true\n\n[tools.count]\nread_only = true\n";
    install(home, Some(manifest));
    let (run, memory) = kill_and_resume(home, 1000);
    assert_eq!(
        run["result"]["observations"],
        json!([{ "tools": { "a": 1 } }, { "tools": { "b": 2 } }]),
        "{run}"
    );
    // The recorded call was not run again; the interrupted one was.
    assert_eq!((tally(&memory, "fast"), tally(&memory, "slow")), (1, 2));
}
