//! `warden token create` and `warden up` as a user runs them.

use super::*;

#[test]
fn token_create_stores_only_the_hash_and_the_server_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["--home"])
        .arg(dir.path())
        .args(["token", "create", "ci", "--role", "caller"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("wdn_"), "{token}");
    let path = dir.path().join("warden.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains(&token) && text.contains(&hash_token(&token)),
        "{text}"
    );
    let config = Config::load(Path::new(&path)).unwrap();
    let access = warden::serve::auth::Access::new(&config);
    let caller = access.authenticate(&token).unwrap();
    assert_eq!(caller.principal, "token:ci");
    assert!(caller.may_call("text", "word-count"));
    assert!(!caller.may(warden::config::home::Action::ManagePlugins));

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(["--home"])
        .arg(dir.path())
        .args(["token", "create", "x", "--role", "boss"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown role \"boss\""));
}

/// `warden up` on a free port in `dir`: the child, its printed token and URL, and
/// everything it printed.
fn up(dir: &Path) -> (std::process::Child, String, String, String) {
    let (child, url, printed) = up_quietly(dir);
    (child, word(&printed, "wdn_"), url, printed)
}

/// `warden up` on a free port in `dir` (a token printed or not): the child, its URL, and
/// everything it printed up to its last line of help.
pub(crate) fn up_quietly(dir: &Path) -> (std::process::Child, String, String) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--home")
        .arg(dir)
        .args(["up", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    for line in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("Ctrl-C") {
            break;
        }
    }
    let url = word(&printed, "http://127.0.0.1:");
    (child, url, printed)
}

/// The word of `printed` that starts with `prefix` (a token, a URL).
pub(crate) fn word(printed: &str, prefix: &str) -> String {
    let at = printed
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} in\n{printed}"));
    printed[at..]
        .split(|c: char| c.is_whitespace() || c == '\'' || c == '"')
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_the_bundled_plugins_prints_a_token_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, token, url, printed) = up(dir.path());
    assert!(
        printed.contains("curl -s -H 'Authorization: Bearer wdn_"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("\"url\": \"{url}/mcp\"")),
        "{printed}"
    );
    assert!(printed.contains("\"mcp\""), "{printed}");
    // The grants `up` writes are pinned to the bundled component.
    let home = Home::at(dir.path());
    for name in ["files", "notes"] {
        let grant = home.grant(name).unwrap().unwrap();
        assert_eq!(
            grant.digest.as_deref(),
            Some(home.meta(name).unwrap().digest.as_str()),
            "{name}"
        );
    }
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/tools/text/word-count"))
        .bearer_auth(&token)
        .json(&json!({"text": "Nothing is ambient."}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["result"]["words"], 3);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(child.wait().unwrap().success());
}

/// A peer that resets its connection while the server writes the answer: the write
/// fails with EPIPE, which with SIGPIPE at its default would kill the process. The
/// server goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_resetting_mid_answer_does_not_kill_the_server() {
    use tokio::io::AsyncWriteExt as _;
    let dir = tempfile::tempdir().unwrap();
    let (mut child, token, url, _) = up(dir.path());
    assert!(
        ignores_sigpipe(child.id()),
        "warden up must ignore SIGPIPE: a write to a reset connection would kill it"
    );
    let address = url.trim_start_matches("http://").to_string();
    let requests = [
        "GET /v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
        format!(
            "POST /v1/tools/text/word-count HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{{\"text\": \"a b\"}}"
        ),
        "GET /v1/tools HTTP/1.1\r\nHost: x\r\n\r\n".to_string(),
    ];
    for round in 0..300u64 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        stream
            .write_all(requests[(round % 3) as usize].as_bytes())
            .await
            .unwrap();
        // Let the server start answering, then reset (RST, not FIN).
        if round % 2 == 1 {
            tokio::time::sleep(Duration::from_micros(200 * (round % 7))).await;
        }
        stream.set_zero_linger().unwrap();
        drop(stream);
        if let Some(status) = child.try_wait().unwrap() {
            panic!("warden up died after {round} reset connections: {status}");
        }
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "warden up died of a reset connection"
    );
    let resp = reqwest::Client::new()
        .post(format!("{url}/v1/tools/text/word-count"))
        .bearer_auth(&token)
        .json(&json!({"text": "still here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// True when process `pid` ignores SIGPIPE (bit 13 of `SigIgn` in its status).
pub(crate) fn ignores_sigpipe(pid: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (13 - 1)) != 0
}
