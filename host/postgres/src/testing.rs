//! A throwaway PostgreSQL server for tests: `initdb` in a temporary directory, owned by
//! an unprivileged user when the tests run as root (the server refuses root), listening
//! on 127.0.0.1 on a free port, with password authentication. Stopped when dropped, and
//! by a watchdog if the test process dies first.
//!
//! Without PostgreSQL's programs, [`TestCluster::start`] returns `None` after printing
//! how to get them, unless `WARDEN_REQUIRE_POSTGRES=1` (then it panics).

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::DatabaseUrl;

/// The password of the test cluster's user `warden`.
pub const PASSWORD: &str = "warden-test";

/// A running test server.
pub struct TestCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
    user: Option<(u32, u32)>,
    running: bool,
}

impl TestCluster {
    /// Starts a server, or `None` (with a message) where PostgreSQL is not installed.
    pub fn start() -> Option<Self> {
        let Some(bin) = find_bin() else {
            let message = "PostgreSQL's programs (initdb, pg_ctl) are not installed: the PostgreSQL tests are skipped. Install Debian's `postgresql` package (as .ci/run does) or set PG_BIN to the directory holding them; WARDEN_REQUIRE_POSTGRES=1 makes this a failure";
            if std::env::var_os("WARDEN_REQUIRE_POSTGRES").is_some_and(|v| v == "1") {
                panic!("{message}");
            }
            eprintln!("skipped: {message}");
            return None;
        };
        let user = unprivileged_user();
        // The server's user must reach the directory: under root, a TMPDIR inside
        // root's home would not do, so it goes in /tmp.
        let parent = match user {
            Some(_) => PathBuf::from("/tmp"),
            None => std::env::temp_dir(),
        };
        let dir = tempfile::Builder::new()
            .prefix("warden-pg-")
            .tempdir_in(parent)
            .expect("a temporary directory");
        if let Some((uid, gid)) = user {
            chown(dir.path(), uid, gid);
        }
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("the cluster directory's mode");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).expect("the password file");
        if let Some((uid, gid)) = user {
            chown(&pwfile, uid, gid);
        }
        let mut cluster = Self {
            dir,
            bin,
            port: 0,
            user,
            running: false,
        };
        let data = cluster.data();
        cluster.run(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                "warden".as_ref(),
                "--auth=scram-sha-256".as_ref(),
                "--pwfile".as_ref(),
                pwfile.as_os_str(),
                "-E".as_ref(),
                "UTF8".as_ref(),
                "--no-locale".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        cluster.port = free_port();
        cluster.start_again();
        cluster.watchdog();
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs `program` of PostgreSQL's as the cluster's user; panics with its output if
    /// it fails.
    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let mut command = Command::new(self.bin.join(program));
        command.args(args).current_dir(self.dir.path());
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        let output = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("running {program}: {err}"));
        assert!(
            output.status.success(),
            "{program} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Starts the server again after [`TestCluster::stop`] (same data, same port).
    pub fn start_again(&mut self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
                "-o".as_ref(),
                options.as_ref(),
                "-w".as_ref(),
                "start".as_ref(),
            ],
        );
        self.running = true;
    }

    /// Stops the server at once (`immediate`: as a crash would).
    pub fn stop(&mut self) {
        if self.running {
            let data = self.data();
            self.run(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "-w".as_ref(),
                    "stop".as_ref(),
                ],
            );
            self.running = false;
        }
    }

    /// A new, empty database of its own, for one test.
    pub fn database(&self) -> DatabaseUrl {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let admin = self.url_of("postgres");
        // A test may call this from a task.
        crate::off_runtime(|| {
            let mut client = admin.connect().expect("connecting to the test cluster");
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .expect("creating a test database");
        });
        self.url_of(&name)
    }

    /// The URL of database `name` on this server.
    pub fn url_of(&self, name: &str) -> DatabaseUrl {
        DatabaseUrl::parse(&format!(
            "postgres://warden:{PASSWORD}@127.0.0.1:{}/{name}",
            self.port
        ))
        .expect("a test cluster URL")
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A process that stops the server when this test process is gone (killed
    /// included), so no server outlives its tests.
    fn watchdog(&self) {
        let script = format!(
            "while [ -d /proc/{pid} ]; do sleep 1; done; {ctl} -D {data} -m immediate stop >/dev/null 2>&1; rm -rf {dir}",
            pid = std::process::id(),
            ctl = self.bin.join("pg_ctl").display(),
            data = self.data().display(),
            dir = self.dir.path().display(),
        );
        let mut command = Command::new("sh");
        command
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        let _ = command.spawn();
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let _ = Command::new(self.bin.join("pg_ctl"))
                .args([
                    "-D".as_ref(),
                    data.as_os_str(),
                    "-m".as_ref(),
                    "immediate".as_ref(),
                    "stop".as_ref(),
                ])
                .current_dir(self.dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .uid(self.user.map_or_else(current_uid, |(uid, _)| uid))
                .status();
        }
    }
}

/// This process's user id (the owner of `/proc/self`).
fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self").map_or(u32::MAX, |m| m.uid())
}

/// The directory with `initdb` and `pg_ctl`: `PG_BIN`, then `PATH`, then Debian's
/// `/usr/lib/postgresql/VERSION/bin` (the newest).
fn find_bin() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    if let Some(dir) = std::env::var_os("PG_BIN").map(PathBuf::from) {
        return has(&dir).then_some(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has(&dir) {
                // Follow a link to the real directory (the programs find their libraries
                // beside themselves).
                let initdb = std::fs::canonicalize(dir.join("initdb")).ok()?;
                return initdb.parent().map(Path::to_path_buf);
            }
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|dir| has(dir))
        .collect();
    versions.sort();
    versions.pop()
}

/// Root may not run the server: the `postgres` user if there is one, else `nobody`.
fn unprivileged_user() -> Option<(u32, u32)> {
    if current_uid() != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for name in ["postgres", "nobody"] {
        let found = passwd.lines().find_map(|line| {
            let mut fields = line.split(':');
            (fields.next() == Some(name)).then_some(())?;
            let uid = fields.nth(1)?.parse().ok()?;
            let gid = fields.next()?.parse().ok()?;
            Some((uid, gid))
        });
        if found.is_some() {
            return found;
        }
    }
    panic!(
        "the tests run as root and there is no `postgres` or `nobody` user to run PostgreSQL as"
    );
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .unwrap_or_else(|err| panic!("chown {}: {err}", path.display()));
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Pool, migrate};

    #[test]
    fn a_cluster_starts_migrates_and_refuses_a_newer_schema() {
        let Some(cluster) = TestCluster::start() else {
            return;
        };
        let url = cluster.database();
        let pool = Pool::connect(&url, 2).unwrap();
        assert_eq!(migrate::version(&pool).unwrap(), 0);
        assert!(matches!(
            migrate::check(&pool),
            Err(crate::PgError::TooOld { .. })
        ));
        let applied = migrate::migrate(&pool).unwrap();
        assert_eq!(applied.len() as i32, migrate::latest());
        assert!(migrate::migrate(&pool).unwrap().is_empty(), "applied once");
        migrate::check(&pool).unwrap();
        pool.run("pretending a newer binary migrated", |c| {
            c.execute(
                "INSERT INTO warden_schema (version, name) VALUES (999, 'from the future')",
                &[],
            )
        })
        .unwrap();
        let err = migrate::migrate(&pool).unwrap_err().to_string();
        assert!(err.contains("schema version 999, newer than"), "{err}");
        assert!(err.contains("upgrade warden"), "{err}");
        assert!(!err.contains(PASSWORD), "{err}");
    }

    #[test]
    fn a_wrong_password_names_the_url_without_the_password() {
        let Some(cluster) = TestCluster::start() else {
            return;
        };
        let url = DatabaseUrl::parse(&format!(
            "postgres://warden:wrong-secret@127.0.0.1:{}/postgres",
            cluster.port()
        ))
        .unwrap();
        let err = Pool::connect(&url, 1).err().unwrap().to_string();
        assert!(
            err.contains(&format!("127.0.0.1:{}", cluster.port())),
            "{err}"
        );
        assert!(err.contains("password"), "{err}");
        assert!(!err.contains("wrong-secret"), "{err}");
    }

    #[test]
    fn the_pool_recovers_when_the_database_returns() {
        let Some(mut cluster) = TestCluster::start() else {
            return;
        };
        let pool = Pool::connect(&cluster.database(), 2).unwrap();
        pool.ping().unwrap();
        cluster.stop();
        let err = pool.ping().unwrap_err();
        assert!(err.is_connection(), "{err}");
        cluster.start_again();
        pool.ping().unwrap();
        pool.ping().unwrap();
        let stats = pool.stats();
        assert!(stats.connects >= 2, "{stats:?}");
        assert!(stats.errors >= 1, "{stats:?}");
    }
}
