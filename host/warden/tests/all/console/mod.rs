//! The web console (`/console` on `warden serve`) in a real browser: headless Chromium
//! driven over WebDriver ([`browser`]). A home with the `refunds` plugin and its
//! policy (a refund above 100 waits for a person) and the `scripted` test agent, whose
//! task issues a refund; three people: `user:ops` (admin, starts the runs),
//! `user:ana` (admin, decides them) and `user:aud` (auditor). Every page a test opens
//! passes the accessibility check and leaves a screenshot ([`a11y`]).
//!
//! - [`signin`]: signing in and out, the session cookie, the Content-Security-Policy,
//!   the overview;
//! - [`approvals`]: the inbox: approve, edit and approve, reject, live updates; a run's
//!   timeline and cancel; the auditor's view and forged approvals;
//! - [`grants`]: a plugin's page and its grant editor;
//! - [`audit`]: the log filtered to a denial, a record, the export;
//! - [`forms`]: sign-in, CSRF and origin checks over plain HTTP (no browser needed).

mod a11y;
mod approvals;
mod audit;
mod browser;
mod forms;
mod grants;
mod signin;

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use warden::config::home::{Config, hash_token};
use warden::grant::{Access, Grant, MemoryGrant, ToolsGrant};
use warden::home::{Home, InstalledMeta};
use warden::manifest::Manifest;
use warden::serve::{ServeOptions, Server};
use warden_tests::guests;

use self::browser::Browser;

/// `user:ops`, an admin: starts the runs.
pub(crate) const OPS: &str = "wdn_console-ops";
/// `user:ana`, an admin: decides what `user:ops` started (four eyes).
pub(crate) const ANA: &str = "wdn_console-ana";
/// `user:aud`, an auditor: reads the log and the metrics.
pub(crate) const AUD: &str = "wdn_console-aud";

const REFUNDS_POLICY: &str = include_str!("../../../../../plugins/refunds/policy.cedar");
const REFUNDS_MANIFEST: &str = include_str!("../../../../../plugins/refunds/warden.toml");

/// The home: `refunds` (its manifest, its memory namespace) and `scripted` (granted
/// `refunds/*`), the refunds policy.
fn home(dir: &std::path::Path) -> Home {
    let home = Home::at(dir);
    for (name, path, manifest) in [
        ("scripted", guests::SCRIPTED, None),
        ("refunds", guests::REFUNDS, Some(REFUNDS_MANIFEST)),
    ] {
        let wasm = std::fs::read(path).unwrap();
        let meta = InstalledMeta {
            name: name.into(),
            digest: warden::plugin::digest(&wasm),
            added_at: 0,
            source: format!("{name}.wasm"),
            manifest: manifest.map(|m| Manifest::parse(m).unwrap()),
            wit_docs: None,
            provenance: None,
        };
        home.install(&meta, &wasm).unwrap();
    }
    let agent = Grant {
        tools: Some(ToolsGrant {
            allow: vec!["refunds/*".into()],
        }),
        ..Grant::default()
    };
    home.set_grant("scripted", &agent).unwrap();
    let refunds = Grant {
        memory: [("refunds".to_string(), MemoryGrant::new(Access::ReadWrite))].into(),
        ..Grant::default()
    };
    home.set_grant("refunds", &refunds).unwrap();
    std::fs::write(dir.join("policy.cedar"), REFUNDS_POLICY).unwrap();
    home
}

fn config(extra: &str) -> Config {
    let token = |name: &str, secret: &str, role: &str| {
        format!(
            "[[tokens]]\nname = \"{name}\"\nsha256 = \"{}\"\nroles = [\"{role}\"]\nprincipal = \"user:{name}\"\n\n",
            hash_token(secret)
        )
    };
    let text = format!(
        "[policy.args]\namount = \"Long\"\n\n{}{}{}{extra}",
        token("ops", OPS, "admin"),
        token("ana", ANA, "admin"),
        token("aud", AUD, "auditor"),
    );
    Config::parse(&text, "test config").unwrap()
}

/// A server on loopback, a browser, and an HTTP client for the API.
pub(crate) struct Console {
    pub(crate) url: String,
    browser: Option<Browser>,
    pub(crate) http: reqwest::Client,
    server: Option<Server>,
    _dir: tempfile::TempDir,
    _one_at_a_time: Option<tokio::sync::MutexGuard<'static, ()>>,
}

impl Console {
    /// Serves a fresh home and starts a browser; `None` when there is no browser (the
    /// test is skipped, see [`Browser::start`]).
    pub(crate) async fn start() -> Option<Self> {
        let lock = browser::LOCK.lock().await;
        let browser = Browser::start().await?;
        let mut console = Self::serve().await;
        console.browser = Some(browser);
        console._one_at_a_time = Some(lock);
        Some(console)
    }

    /// Serves a fresh home, without a browser.
    pub(crate) async fn serve() -> Self {
        Self::serve_with("").await
    }

    /// [`Console::serve`] with `extra` lines in `warden.toml`.
    pub(crate) async fn serve_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let options = ServeOptions {
            config: config(extra),
            watch: false,
            ..ServeOptions::new(home(dir.path()))
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::start(options, listener).await.unwrap();
        Self {
            url: format!("http://{}", server.addr()),
            browser: None,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            server: Some(server),
            _dir: dir,
            _one_at_a_time: None,
        }
    }

    /// The browser (of a console made by [`Console::start`]).
    pub(crate) fn browser(&self) -> &Browser {
        self.browser
            .as_ref()
            .expect("a console started with a browser")
    }

    /// Stops the browser (if any) and the server.
    pub(crate) async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
        if let Some(browser) = self.browser.take() {
            browser.stop().await;
        }
    }

    /// Opens `path` of the console.
    pub(crate) async fn open(&self, path: &str) {
        self.browser().goto(&format!("{}{path}", self.url)).await;
    }

    /// Signs in with `token` (and lands on the first page).
    pub(crate) async fn sign_in(&self, token: &str) {
        self.open("/console/signin").await;
        self.browser().fill("#token", token).await;
        self.browser()
            .click("form.signin button[type=submit]")
            .await;
        self.browser().wait_for("header.top nav").await;
    }

    /// An API request with `token`.
    pub(crate) async fn api(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `user:ops` starts a run whose agent asks for a refund of `amount`; it parks on
    /// the hold. The run's id.
    pub(crate) async fn start_refund(&self, amount: u32) -> String {
        let task = json!({ "script": [
            { "call": [{ "id": "r", "tool": "refunds/issue",
                "arguments": { "order": "A-17", "amount": amount, "reason": "broken kettle" } }] },
            { "finish": "done" },
        ] });
        let (status, body) = self
            .api(
                OPS,
                reqwest::Method::POST,
                "/v1/runs",
                Some(json!({ "agent": "scripted", "task": task, "wait": true })),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["run"]["status"], "awaiting-approval", "{body}");
        body["run"]["id"].as_str().unwrap().to_string()
    }

    /// The run, once its status is `status` (the server drives it in the background).
    pub(crate) async fn run_when(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (code, body) = self
                .api(OPS, reqwest::Method::GET, &format!("/v1/runs/{id}"), None)
                .await;
            assert_eq!(code, StatusCode::OK, "{body}");
            if body["run"]["status"] == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "run {id} never became {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The audit records matching `query` (as `GET /v1/audit` takes it).
    pub(crate) async fn records(&self, query: &str) -> Vec<Value> {
        let (status, body) = self
            .api(
                AUD,
                reqwest::Method::GET,
                &format!("/v1/audit?{query}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["records"].as_array().cloned().unwrap_or_default()
    }

    /// Opens `path` until the page says `needle` (a page that shows a run the server
    /// drives in the background).
    pub(crate) async fn reload_until(&self, path: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            self.open(path).await;
            let text = self.browser().text().await;
            if text.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} never appeared on {path}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
