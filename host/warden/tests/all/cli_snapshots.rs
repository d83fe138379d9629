//! Snapshots of what an operator reads: `plugin inspect` (text and JSON, with and
//! without a grant) and `grant init`, for the bundled `files` plugin, and `grant init`
//! for the `triage` agent. What varies from run to run (the temporary home, the built
//! component's path and digest) is redacted.

use std::path::Path;
use std::process::{Command, Output};

use warden_tests::guests;

/// Runs `warden --home HOME ARGS…` in `dir` with `env` set.
pub(crate) fn warden_in(dir: &Path, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .current_dir(dir)
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("running warden")
}

#[track_caller]
pub(crate) fn expect(out: &Output, code: i32) -> (String, String) {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    (stdout, stderr)
}

/// A temporary home with the `files` plugin installed, with its manifest.
pub(crate) struct Home {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) digest: String,
}

impl Home {
    pub(crate) fn with(name: &str, wasm: &str, manifest: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut args = vec!["plugin", "add", wasm, "--name", name];
        let manifest =
            manifest.map(|m| format!("{}/../../plugins/{m}", env!("CARGO_MANIFEST_DIR")));
        if let Some(m) = &manifest {
            args.extend(["--manifest", m]);
        }
        expect(&warden_in(dir.path(), dir.path(), &args, &[]), 0);
        let (list, _) = expect(
            &warden_in(dir.path(), dir.path(), &["plugin", "list", "--json"], &[]),
            0,
        );
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        let digest = list[0]["digest"].as_str().unwrap().to_string();
        Self { dir, digest }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn run(&self, args: &[&str], code: i32) -> (String, String) {
        expect(&warden_in(self.path(), self.path(), args, &[]), code)
    }

    /// `text` with the home, the component's path and its digest redacted.
    pub(crate) fn redact(&self, text: &str) -> String {
        text.replace(&self.digest, "sha256:[digest]")
            .replace(self.path().to_str().unwrap(), "[home]")
            .replace(guests::FILES, "[wasm]")
            .replace(guests::HOSTILE, "[wasm]")
    }
}

fn files_home() -> Home {
    Home::with("files", guests::FILES, Some("files/warden.toml"))
}

#[test]
fn inspect_without_a_grant() {
    let home = files_home();
    let (text, _) = home.run(&["plugin", "inspect", "files"], 0);
    insta::assert_snapshot!("inspect_files_no_grant", home.redact(&text));
    let (json, _) = home.run(&["plugin", "inspect", "files", "--json"], 0);
    insta::assert_snapshot!("inspect_files_no_grant_json", home.redact(&json));
}

#[test]
fn inspect_with_a_grant() {
    let home = files_home();
    // Inside the home, only its workspace/ may be granted.
    let data = home.path().join("workspace/data");
    std::fs::create_dir_all(&data).unwrap();
    let grant = home.path().join("files.toml");
    std::fs::write(
        &grant,
        format!(
            "plugin = \"files\"\ndigest = \"{}\"\n\n[[fs]]\nhost = \"{}\"\nguest = \"/data\"\naccess = \"read\"\n\n[env]\nvars = {{ LANG = \"C.UTF-8\" }}\n\n[limits]\nmemory_mb = 32\ntimeout_ms = 2000\n",
            home.digest,
            data.display()
        ),
    )
    .unwrap();
    home.run(&["grant", "set", "files", grant.to_str().unwrap()], 0);
    let (text, _) = home.run(&["plugin", "inspect", "files"], 0);
    insta::assert_snapshot!("inspect_files_granted", home.redact(&text));
    let (json, _) = home.run(&["plugin", "inspect", "files", "--json"], 0);
    insta::assert_snapshot!("inspect_files_granted_json", home.redact(&json));
}

#[test]
fn grant_init_from_the_manifest() {
    let home = files_home();
    let (text, _) = home.run(&["grant", "init", "files"], 0);
    insta::assert_snapshot!("grant_init_files", home.redact(&text));
}

#[test]
fn grant_init_of_an_agent() {
    // An agent's manifest requests model routes and tools.
    let home = Home::with("triage", guests::TRIAGE, Some("triage/warden.toml"));
    let (text, _) = home.run(&["grant", "init", "triage"], 0);
    insta::assert_snapshot!("grant_init_triage", home.redact(&text));
}
