//! The official `openai` Python package (as `.ci/run` installs it in
//! `target/py-tools`) as a client of `warden serve`'s gateway: a whole completion, a
//! streamed one with its usage chunk, a tool call both ways, a budget refusal, an
//! unknown route and a stream that breaks off (`fixtures/openai_gateway.py`).
//!
//! Skipped with a message when the package is not installed, unless
//! `WARDEN_REQUIRE_POLYGLOT` is set (`.ci/run` sets it).

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::fake::{End, Fake, openai_stream};
use super::gateway::{CI, openai_provider, tokens};
use crate::authoring::{repo, text};
use warden_tests::KillOnDrop;

/// The version `.ci/run` installs.
const OPENAI_PY: &str = "3.51.0";

/// The venv's Python, if it has the `openai` package.
fn python_with_openai() -> Option<std::path::PathBuf> {
    let python = repo().join("target/py-tools/bin/python");
    let found = Command::new(&python)
        .args(["-c", "import openai; print(openai.__version__)"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| text(&out.stdout).trim().to_string());
    match found {
        Some(_) => Some(python),
        None if std::env::var_os("WARDEN_REQUIRE_POLYGLOT").is_some() => panic!(
            "the openai Python package is not in target/py-tools and WARDEN_REQUIRE_POLYGLOT is set: run .ci/run, or target/py-tools/bin/pip install openai=={OPENAI_PY}"
        ),
        None => {
            eprintln!(
                "skipped: the openai Python package is not in target/py-tools (target/py-tools/bin/pip install openai=={OPENAI_PY}, or run .ci/run); set WARDEN_REQUIRE_POLYGLOT=1 to fail instead"
            );
            None
        }
    }
}

/// Starts `warden serve` on `home`; returns it and its URL (from what it prints).
fn serve(home: &Path) -> (KillOnDrop, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(home)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting warden serve");
    let stderr = child.stderr.take().unwrap();
    let serve = KillOnDrop(child);
    let mut printed = String::new();
    for line in std::io::BufReader::new(stderr).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some(at) = line.find(" on http://") {
            let url = line[at + 4..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
            return (serve, url);
        }
    }
    panic!("warden serve stopped before it listened:\n{printed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_package_is_a_client_of_the_gateway() {
    let Some(python) = python_with_openai() else {
        return;
    };
    let fast = Fake::auto("Hello, world").await;
    let broken = Fake::start(vec![], openai_stream(&["Hel", "lo"]).cut(2, End::Close)).await;
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("warden.toml"),
        format!(
            r#"{}{}[models.routes.fast]
targets = ["local/m"]

[models.routes.tight]
targets = ["local/m"]

[models.routes.broken]
targets = ["flaky/m"]

[models.budgets.routes.tight]
tokens_per_day = 10

{}"#,
            openai_provider("local", &fast),
            openai_provider("flaky", &broken),
            tokens()
        ),
    )
    .unwrap();
    let home_path = home.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        let (_serve, url) = serve(&home_path);
        Command::new(python)
            .arg(repo().join("host/warden/tests/all/fixtures/openai_gateway.py"))
            .env("WARDEN_URL", url)
            .env("WARDEN_TOKEN", CI)
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "stdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let report: Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
    assert_eq!(report["openai"], OPENAI_PY);
    assert_eq!(
        report["whole"],
        json!({"content": "Hello, world", "total_tokens": 12})
    );
    assert_eq!(report["stream"]["content"], "Hello, world");
    assert_eq!(report["stream"]["completion_tokens"], 3);
    assert_eq!(report["tool_call"]["name"], "weather");
    assert_eq!(report["tool_call"]["arguments"], json!({"city": "Lyon"}));
    assert_eq!(
        report["tool_call"]["streamed_arguments"],
        json!({"city": "Lyon"})
    );
    assert_eq!(report["budget"]["status"], 429);
    assert_eq!(report["budget"]["budget"], "route \"tight\"");
    assert_eq!(report["unknown_route"]["status"], 404);
    assert_eq!(report["broken_stream"]["before"], "Hel");
    // The provider got every call but those refused before they went out.
    let sent = fast.received();
    assert_eq!(sent.len(), 5, "{sent:?}");
    assert_eq!(sent[1].body["stream"], true);
    assert_eq!(sent[3].body["messages"][2]["role"], "tool");
    assert_eq!(
        sent[3].body["messages"][1]["tool_calls"][0]["function"]["name"],
        "weather"
    );
}
