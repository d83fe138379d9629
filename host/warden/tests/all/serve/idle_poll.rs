//! `[server] idle_poll_us`: `warden up` with a polling window polls between one caller's
//! requests and says so in `/metrics`; without one it never polls; a window past the
//! limit is refused at start, naming the key.

use super::commands::{up_quietly, word};
use super::*;
use warden_tests::KillOnDrop;

/// `warden up` in `dir` with `server` as its config's `[server]` table: the child
/// (killed when dropped), its token and its URL.
fn up_with(dir: &Path, server: &str) -> (KillOnDrop, String, String) {
    std::fs::write(dir.join("warden.toml"), format!("[server]\n{server}\n")).unwrap();
    let (child, url, printed) = up_quietly(dir);
    (KillOnDrop(child), word(&printed, "wdn_"), url)
}

/// Calls `text/word-count` `calls` times, one after another, over one connection, and
/// then reads `/metrics`.
async fn call_then_metrics(url: &str, token: &str, calls: usize) -> String {
    let http = reqwest::Client::new();
    for _ in 0..calls {
        let resp = http
            .post(format!("{url}/v1/tools/text/word-count"))
            .bearer_auth(token)
            .json(&json!({"text": "Nothing is ambient."}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["result"]["words"], 3);
    }
    let resp = http
        .get(format!("{url}/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.text().await.unwrap()
}

/// The value of the sample `name` in a metrics text.
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polling_window_catches_the_next_request_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    // A millisecond: far longer than this client takes between an answer and its next
    // request, so most windows end with a request.
    let (_up, token, url) = up_with(dir.path(), "idle_poll_us = 1000");
    let text = call_then_metrics(&url, &token, 100).await;
    let by_request = sample(&text, r#"warden_idle_polls_total{ended="request"}"#)
        .unwrap_or_else(|| panic!("no polling counted:\n{text}"));
    assert!(by_request >= 1.0, "no window ended with a request:\n{text}");
    let seconds = sample(&text, "warden_idle_poll_seconds_total").unwrap();
    assert!(seconds > 0.0, "{text}");
    assert!(text.contains("1000 µs each at most"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_window_no_worker_polls() {
    let dir = tempfile::tempdir().unwrap();
    let (_up, token, url) = up_with(dir.path(), "");
    let text = call_then_metrics(&url, &token, 5).await;
    assert!(!text.contains("warden_idle_poll"), "{text}");
    assert!(text.contains("warden_http_requests_total"), "{text}");
}

#[test]
fn a_window_past_a_millisecond_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("warden.toml"),
        "[server]\nidle_poll_us = 5000\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[server] idle_poll_us = 5000: at most 1000"),
        "{stderr}"
    );
}
