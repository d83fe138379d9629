//! A headless Chromium driven over WebDriver (`chromedriver`), for the console tests.
//!
//! Each test starts its own `chromedriver --port=FREE` on 127.0.0.1 (in a process group
//! of its own, so the browser it starts goes with it) and a headless Chromium session
//! (`--headless=new --no-sandbox --disable-gpu`: CI runs as root). One browser at a
//! time: the tests take [`LOCK`]. Without Chromium or chromedriver the tests are
//! skipped with a message saying how to run them, unless `WARDEN_REQUIRE_BROWSER=1`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// One browser at a time: two Chromiums at once on a two-core machine slow both.
pub(crate) static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Where a program is: `$VAR`, else the first of `names` on the `PATH`.
fn find(var: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(var) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |n| dir.join(n)))
        .find(|p| p.is_file())
}

/// The running chromedriver and the browser session.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Chromium and chromedriver, or `None` (with the reason on stderr) when they are
    /// not installed and `WARDEN_REQUIRE_BROWSER` is not `1`.
    pub(crate) async fn start() -> Option<Self> {
        let chromium = find(
            "WARDEN_CHROMIUM",
            &["chromium", "chromium-browser", "google-chrome"],
        );
        let driver = find("WARDEN_CHROMEDRIVER", &["chromedriver"]);
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let required = std::env::var("WARDEN_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
            let message = "the console's browser tests need Chromium and chromedriver: `apt-get install chromium chromium-driver` (Debian), or set WARDEN_CHROMIUM and WARDEN_CHROMEDRIVER; then `cargo test -p warden --test all console::`";
            assert!(!required, "WARDEN_REQUIRE_BROWSER=1: {message}");
            eprintln!("skipped: {message}");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut command = Command::new(&driver);
        command
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().expect("starting chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{url}/status")).await.is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("chromedriver exited at start: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not answer on {url}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,1000", "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await;
        let client = match client {
            Ok(client) => client,
            Err(err) => {
                stop(&mut child);
                panic!("starting headless Chromium through chromedriver: {err}");
            }
        };
        Some(Self {
            client,
            driver: child,
            _profile: profile,
        })
    }

    /// Ends the session and stops chromedriver.
    pub(crate) async fn stop(mut self) {
        let _ = self.client.clone().close().await;
        stop(&mut self.driver);
    }

    /// Opens `url`.
    pub(crate) async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("opening {url}: {e}"));
    }

    /// The element `css`, once it is there (within 20 s).
    pub(crate) async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css(css))
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!(
                "no {css} on {}: {e}\n{}",
                self.url().await,
                self.text().await
            ),
        }
    }

    /// The element `css` now.
    pub(crate) async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self.client.find(Locator::Css(css)).await {
            Ok(element) => element,
            Err(e) => panic!("no {css} on {}: {e}", self.url().await),
        }
    }

    /// How many elements `css` matches now.
    pub(crate) async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map_or(0, |all| all.len())
    }

    /// The page's text.
    pub(crate) async fn text(&self) -> String {
        match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    /// Waits (20 s at most) until the page's text contains `needle`.
    pub(crate) async fn wait_for_text(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.text().await;
            if text.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared on {}:\n{text}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The address shown.
    pub(crate) async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page.
    pub(crate) async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("running a script: {e}"))
    }

    /// Runs `script` (a function body whose last argument is the callback) in the page.
    pub(crate) async fn js_async(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute_async(script, args)
            .await
            .unwrap_or_else(|e| panic!("running a script: {e}"))
    }

    /// Types `text` into the field `css`, after clearing it.
    pub(crate) async fn fill(&self, css: &str, text: &str) {
        let field = self.find(css).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Clicks `css` (and, for a link or a submit button, waits for the next page).
    pub(crate) async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
    }
}

/// Stops the process group of chromedriver (and of the browser it started).
fn stop(child: &mut Child) {
    let group = format!("-{}", child.id());
    let _ = Command::new("kill")
        .args(["-TERM", "--", &group])
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &group])
        .stderr(Stdio::null())
        .status();
    let _ = child.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Ok(None) = self.driver.try_wait() {
            stop(&mut self.driver);
        }
    }
}
