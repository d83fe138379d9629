//! Plugins from OCI registries, against a real registry: Debian's `docker-registry`
//! (the CNCF distribution registry), started by each test on a free loopback port
//! with its own storage directory, and stopped when the test ends. Without it the
//! tests are skipped with a message, unless `WARDEN_REQUIRE_REGISTRY` is set (`.ci/run`
//! installs it and sets it).
//!
//! - [`pull`]: push, add by tag and by digest, update, and every way a pull fails;
//! - [`sign`]: signatures, the trust policy, signer-pinned grants, and the HTTP route;
//! - [`sigstore`]: keyless signatures, Sigstore bundles against a test's own root.

mod fake_sigstore;
mod pull;
mod sign;
mod sigstore;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A registry of this test's own.
pub(crate) struct TestRegistry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub(crate) addr: String,
    storage: tempfile::TempDir,
}

const REGISTRY_BIN: &str = "docker-registry";

fn find_registry() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(REGISTRY_BIN))
        .find(|p| p.is_file())
}

impl TestRegistry {
    /// Starts a registry, or `None` (with a message) when `docker-registry` is not
    /// installed and not required.
    pub(crate) fn start() -> Option<Self> {
        let Some(bin) = find_registry() else {
            if std::env::var_os("WARDEN_REQUIRE_REGISTRY").is_some() {
                panic!(
                    "docker-registry is not installed and WARDEN_REQUIRE_REGISTRY is set: apt-get install docker-registry (or run .ci/run)"
                );
            }
            eprintln!(
                "skipped: docker-registry is not installed (apt-get install docker-registry, or run .ci/run); set WARDEN_REQUIRE_REGISTRY=1 to fail instead"
            );
            return None;
        };
        let storage = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = storage.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                storage.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let registry = Self {
            child,
            addr,
            storage,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(&registry.addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen on {} within 20 s",
                registry.addr
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(registry)
    }

    /// `oci://127.0.0.1:PORT/{path}`.
    pub(crate) fn reference(&self, path: &str) -> String {
        format!("oci://{}/{path}", self.addr)
    }

    /// The file the registry keeps the blob with `digest` in.
    pub(crate) fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A home to add plugins to, and a directory for the test's files (keys, grants, an
/// empty Docker config so that no login of this machine is read).
pub(crate) struct Env {
    pub(crate) home: tempfile::TempDir,
    pub(crate) files: tempfile::TempDir,
}

impl Env {
    pub(crate) fn new() -> Self {
        let env = Self {
            home: tempfile::tempdir().unwrap(),
            files: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(env.files.path().join("docker")).unwrap();
        env
    }

    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.files.path().join(name)
    }

    /// Writes `text` as the home's `warden.toml`.
    pub(crate) fn config(&self, text: &str) {
        std::fs::write(self.home.path().join("warden.toml"), text).unwrap();
    }

    /// Runs `warden --home HOME ARGS…`.
    pub(crate) fn warden(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_warden"))
            .arg("--home")
            .arg(self.home.path())
            .args(args)
            .env_remove("RUST_LOG")
            .env_remove("WARDEN_REGISTRY_USERNAME")
            .env_remove("WARDEN_REGISTRY_PASSWORD")
            .env("DOCKER_CONFIG", self.files.path().join("docker"))
            .stdin(Stdio::null())
            .output()
            .expect("running warden")
    }

    /// Runs warden, expects exit `code`, returns stdout and stderr.
    #[track_caller]
    pub(crate) fn run(&self, args: &[&str], code: i32) -> (String, String) {
        let out = self.warden(args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert_eq!(
            out.status.code(),
            Some(code),
            "warden {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        (stdout, stderr)
    }

    /// The installed plugin `name`, as `inspect --json` describes it.
    pub(crate) fn inspect(&self, name: &str) -> serde_json::Value {
        let (out, _) = self.run(&["plugin", "inspect", name, "--json"], 0);
        serde_json::from_str(&out).unwrap()
    }

    /// The installed plugins' names.
    pub(crate) fn names(&self) -> Vec<String> {
        let (out, _) = self.run(&["plugin", "list", "--json"], 0);
        let list: serde_json::Value = serde_json::from_str(&out).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    }
}

/// `wasm` with one more custom section, written to `dir`: another component (another
/// digest) that does the same.
pub(crate) fn variant(wasm: &str, label: &str, dir: &Path) -> PathBuf {
    let mut bytes = std::fs::read(wasm).unwrap();
    let name = b"warden-test";
    let mut payload = vec![name.len() as u8];
    payload.extend_from_slice(name);
    payload.extend_from_slice(label.as_bytes());
    bytes.push(0);
    let mut size = payload.len();
    loop {
        let byte = (size & 0x7f) as u8;
        size >>= 7;
        if size == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    bytes.extend_from_slice(&payload);
    let path = dir.join(format!("{label}.wasm"));
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The `sha256:…` after `label` in `text` (as `push` prints them).
pub(crate) fn digest_after(text: &str, label: &str) -> String {
    text.lines()
        .find_map(|line| line.trim().strip_prefix(label))
        .map(|rest| rest.trim().to_string())
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{text}"))
}
