//! Cold start: from `warden serve` being started, with the bundled plugins installed and
//! the compile cache warm, to its first answered tool call over HTTP (`text/word-count`,
//! a bearer token, a 200 with the result). Beside it, the floor: starting the same
//! binary to print its version and exit.
//!
//! `cargo bench -p warden --bench cold_start` (`COLD_START_RUNS`, default 20). The home
//! is made once by `warden up` (which installs the bundled plugins and fills the compile
//! cache), in the target directory.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn warden(home: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_warden"));
    command
        .arg("--home")
        .arg(home)
        .env_remove("RUST_LOG")
        .env_remove("WARDEN_TOKEN")
        .stdin(Stdio::null())
        .stderr(Stdio::null());
    command
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `warden up` until it printed its admin token, then stops it: the home then has
/// the bundled plugins, their compiled code and an admin token.
fn prepare(home: &Path) -> String {
    let mut child = warden(home)
        .args(["up", "--listen", &format!("127.0.0.1:{}", free_port())])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut token = None;
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Some((_, t)) = line.split_once("admin token (shown once; only its hash is stored): ")
        {
            token = Some(t.trim().to_string());
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    token.expect("warden up printed no admin token")
}

/// One HTTP call; `true` on a 200 whose body holds the word count.
fn answered(port: u16, token: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let body = r#"{"text": "Nothing is ambient."}"#;
    let request = format!(
        "POST /v1/tools/text/word-count HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200") && response.contains('3')
}

fn first_answer(home: &Path, token: &str) -> Duration {
    let port = free_port();
    let start = Instant::now();
    let mut child: Child = warden(home)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = start + Duration::from_secs(60);
    while !answered(port, token) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("warden serve exited early: {status}");
        }
        assert!(Instant::now() < deadline, "no answer in 60 s");
        std::thread::sleep(Duration::from_micros(500));
    }
    let took = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    took
}

fn version() -> Duration {
    let start = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    start.elapsed()
}

fn median(mut times: Vec<Duration>) -> (Duration, Duration, Duration) {
    times.sort();
    (
        times[0],
        times[times.len() / 2],
        times[times.len() * 9 / 10],
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let runs: usize = std::env::var("COLD_START_RUNS")
        .ok()
        .map(|v| v.parse().expect("COLD_START_RUNS: a number"))
        .unwrap_or(20);
    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let home = work.path().join("home");
    let token = prepare(&home);
    // One unmeasured start: the page cache holds the binary and the compiled code.
    first_answer(&home, &token);
    let serve = median((0..runs).map(|_| first_answer(&home, &token)).collect());
    let floor = median((0..runs).map(|_| version()).collect());
    println!("{runs} starts each, compile cache warm");
    println!("{:<52} {:>9} {:>9} {:>9}", "", "min", "median", "p90");
    for (name, (min, med, p90)) in [
        ("warden serve to its first answered call", serve),
        ("warden --version (process start, the floor)", floor),
    ] {
        println!("{name:<52} {:>9} {:>9} {:>9}", ms(min), ms(med), ms(p90));
    }
}
