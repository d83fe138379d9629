//! `warden serve`: the HTTP API over every plugin of a home, with hot reload.
//!
//! - [`config`]: `warden.toml` (listen address, limits, tokens, roles);
//! - [`auth`]: bearer tokens and OAuth access tokens → principal and roles → what
//!   they may do;
//! - [`registry`]: the plugins served, swapped atomically on change;
//! - [`watch`]: reload on file changes in the home;
//! - [`api`] and [`plugins`]: the routes; [`error`]: their error answers;
//! - [`metrics`]: Prometheus metrics;
//! - [`console`]: the web console at `/console`;
//! - [`runs`]: agent runs and the approvals queue, driven in background tasks;
//! - [`idle_poll`]: idle workers polling for the next request before they sleep
//!   (`[server] idle_poll_us`).
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use warden_server::{Server, ServeOptions};
//! let home = warden_runtime::home::Home::at(".warden");
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = Server::start(ServeOptions::new(home), listener).await?;
//! println!("http://{}", server.addr());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod auth;
pub mod cluster;
pub mod console;
pub mod error;
mod gateway;
pub mod idle_poll;
pub mod mcp;
mod mcp_route;
pub mod metrics;
pub mod plugins;
pub mod refusals;
pub mod registry;
pub mod runs;
pub mod storage;
pub mod watch;

use axum::serve::ListenerExt as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use self::api::AppState;
use self::auth::Access;
use self::error::ServeError;
use self::registry::Registry;
use warden_config::home as config;
use warden_config::home::Config;
use warden_runtime::Runtime;
use warden_runtime::error::{BoxError, chain};
use warden_runtime::home::Home;

/// How to serve.
pub struct ServeOptions {
    /// The home whose plugins are served.
    pub home: Home,
    /// The config (tokens, roles, limits).
    pub config: Config,
    /// Where `config` was read from: watched, and re-read when it changes.
    pub config_path: Option<PathBuf>,
    /// Watch the home for changes (hot reload).
    pub watch: bool,
}

impl ServeOptions {
    /// Serve `home` with the default config (no tokens) and hot reload on.
    pub fn new(home: Home) -> Self {
        Self {
            home,
            config: Config::default(),
            config_path: None,
            watch: true,
        }
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    app: axum::Router,
    _watch: Option<watch::Watch>,
    _cluster: Option<cluster::HomeSync>,
}

impl Server {
    /// Loads every plugin of the home and serves the API on `listener`.
    pub async fn start(
        options: ServeOptions,
        listener: tokio::net::TcpListener,
    ) -> Result<Self, ServeError> {
        let runtime = Runtime::new()?;
        let audit_options = options
            .config
            .audit_options(warden_audit::Durability::Full)
            .map_err(|err| ServeError::Config(err.into()))?;
        let storage =
            storage::Storage::open(&options.config.storage).map_err(ServeError::Storage)?;
        let audit = storage
            .audit(options.home.root(), audit_options)
            .map_err(|err| ServeError::Audit {
                location: storage.audit_location(options.home.root()),
                source: err.into(),
            })?;
        runtime.set_audit(audit)?;
        // The cluster's plugins, grants and policy, in this home before it is served.
        let home_sync = match storage.pool() {
            Some(pool) => Some(
                cluster::HomeSync::start(pool.url(), options.home.clone(), config::POLICY_FILE)
                    .map_err(ServeError::Storage)?,
            ),
            None => None,
        };
        let memory = storage
            .memory(options.home.root())
            .map_err(|err| ServeError::Memory {
                path: options.home.root().join(storage::MEMORY_FILE),
                source: err.into(),
            })?;
        runtime.set_memory(memory)?;
        if let Some(router) = warden_models::Router::from_config(&options.config.models)
            .map_err(|err| ServeError::Models(err.into()))?
        {
            let ledger = storage
                .ledger(options.home.root())
                .map_err(|err| ServeError::Models(err.into()))?;
            runtime.set_router(Arc::new(router.with_ledger(ledger)))?;
        }
        if let Some(embedder) =
            warden_memory::Embedder::from_config(&options.config.memory, &options.config.models)
                .map_err(|err| ServeError::Embedder(err.into()))?
        {
            runtime.set_embedder(Arc::new(embedder))?;
        }
        let config_dir = config_dir(&options);
        let policy = options
            .config
            .policy(options.home.root(), &config_dir)
            .map_err(|err| ServeError::Policy(err.into()))?;
        for warning in policy.warnings() {
            tracing::warn!("access policy: {warning}");
        }
        let policy = Arc::new(warden_policy::Reloadable::new(Arc::new(policy)));
        runtime.set_policy(policy.clone())?;
        let issuers = Arc::new(auth::oauth::Issuers::from_config(
            &options.config.auth,
            &config_dir,
            None,
        )?);
        let trust = warden_oci::TrustPolicy::load(&options.config.trust, &config_dir)
            .map_err(|err| ServeError::Trust(err.into()))?;
        let registry = Arc::new(Registry::new(Arc::new(runtime), options.home.clone())?);
        registry.sync(watch::WATCH_PRINCIPAL, "start").await?;
        let runs = runs::Runs::open(&registry, &storage, &options.config.runs)
            .map_err(ServeError::Runs)?;
        let state = Arc::new(AppState {
            registry: registry.clone(),
            access: RwLock::new(Arc::new(
                Access::with_policy(&options.config, policy.clone()).with_issuers(issuers),
            )),
            metrics: Arc::new(metrics::Metrics::new()),
            config: options.config.server.clone(),
            runs: Some(runs.clone()),
            refusals: Default::default(),
            console: Default::default(),
            trust: RwLock::new(Arc::new(trust)),
            storage,
        });
        runs::Runs::resume_in_background(Arc::downgrade(&runs));
        console::sample_in_background(Arc::downgrade(&state));
        if state.access().is_empty() {
            tracing::warn!(
                "no API tokens and no OAuth issuers are configured: every request but /healthz will be refused (create a token with `warden token create NAME --role admin`)"
            );
        }
        let watching = if options.watch {
            let reload_state = Arc::downgrade(&state);
            let (config, path) = (options.config.clone(), options.config_path.clone());
            let home = options.home.root().to_path_buf();
            let mut files: Vec<PathBuf> = options.config_path.iter().cloned().collect();
            files.push(match &options.config.policy.file {
                Some(file) => config_dir.join(file),
                None => home.join(config::POLICY_FILE),
            });
            Some(watch::start_with(registry, files, move || {
                reload(&reload_state, &policy, &home, &config, path.as_deref())
            })?)
        } else {
            None
        };
        let addr = listener.local_addr()?;
        let app = api::router(
            state.clone(),
            mcp_route::router(
                state.registry.clone(),
                state.metrics.clone(),
                addr,
                holds(&options.config.server, &runs, addr),
            ),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = app.clone();
        // Idle workers poll the listener and every connection before they sleep, when
        // the config asks for it.
        idle_poll::enable(std::time::Duration::from_micros(
            options.config.server.idle_poll_us,
        ))?;
        idle_poll::watch(&listener);
        // Without Nagle's delay: a streamed answer (server-sent events, a model's
        // tokens) writes small pieces, and each one held back until the last is
        // acknowledged can wait on the client's delayed acknowledgement.
        let listener = listener.tap_io(|stream| {
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%err, "could not turn off Nagle's delay on a connection");
            }
            idle_poll::watch(stream);
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, served)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        tracing::info!(%addr, "serving");
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            task,
            app,
            _watch: watching,
            _cluster: home_sync,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The plugins served.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.state.registry
    }

    /// The router it serves (the API, `/mcp`, the console, with their middleware), to
    /// answer a request in process without a connection: the fuzz targets (`fuzz/`,
    /// `warden-fuzz`) send their inputs through it. Not part of the API.
    #[doc(hidden)]
    pub fn router(&self) -> axum::Router {
        self.app.clone()
    }

    /// Stops accepting, lets requests in flight finish, and returns.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(Err(err)) => tracing::warn!("server: {err}"),
            Err(err) => tracing::warn!("server task: {err}"),
            Ok(Ok(())) => {}
        }
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> Result<(), ServeError> {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut sig) => {
                    sig.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            () = terminate => {}
        }
        tracing::info!("shutting down: finishing the requests in flight");
        self.shutdown().await;
        Ok(())
    }
}

/// Where a relative `[policy] file` is read from: the config file's directory.
/// Where `/mcp` holds a call the access policy holds for a person: the run store's
/// approvals queue, decided at this server's approvals routes; an older-revision
/// client waits within the request's timeout.
fn holds(
    config: &warden_config::home::ServerConfig,
    runs: &runs::Runs,
    addr: SocketAddr,
) -> mcp::Holds {
    let base = match &config.public_url {
        Some(url) => url.clone(),
        None if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
        None => format!("http://{addr}"),
    };
    let mut holds = mcp::Holds::new(runs.runner().store().clone(), base);
    holds.wait = std::time::Duration::from_millis(config.request_timeout_ms * 9 / 10);
    holds
}

fn config_dir(options: &ServeOptions) -> PathBuf {
    options
        .config_path
        .as_deref()
        .and_then(std::path::Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(
            || options.home.root().to_path_buf(),
            std::path::Path::to_path_buf,
        )
}

/// Re-reads the config (the file at `path`, else the one the server started with) and
/// the access policy; keeps both as they were if either is invalid.
fn reload(
    state: &std::sync::Weak<AppState>,
    policy: &Arc<warden_policy::Reloadable>,
    home: &std::path::Path,
    started_with: &Config,
    path: Option<&std::path::Path>,
) {
    let Some(state) = state.upgrade() else {
        return;
    };
    let dir = path
        .and_then(std::path::Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(home);
    let config = match path {
        Some(path) => Config::load(path).map_err(BoxError::from),
        None => Ok(started_with.clone()),
    };
    let previous = state.access();
    let loaded = config.and_then(|config| {
        let cedar = config.policy(home, dir)?;
        // Issuers whose entry did not change keep the keys they fetched.
        let issuers =
            auth::oauth::Issuers::from_config(&config.auth, dir, Some(previous.issuers()))?;
        let trust = warden_oci::TrustPolicy::load(&config.trust, dir)?;
        Ok::<_, BoxError>((config, cedar, issuers, trust))
    });
    match loaded {
        Ok((config, cedar, issuers, trust)) => {
            for warning in cedar.warnings() {
                tracing::warn!("access policy: {warning}");
            }
            policy.replace(Arc::new(cedar));
            let access =
                Access::with_policy(&config, policy.clone()).with_issuers(Arc::new(issuers));
            tracing::info!(
                tokens = access.len(),
                issuers = access.issuers().identifiers().len(),
                "tokens, OAuth issuers and access policy reloaded"
            );
            if let Ok(mut current) = state.access.write() {
                *current = Arc::new(access);
            }
            if let Ok(mut current) = state.trust.write() {
                *current = Arc::new(trust);
            }
        }
        Err(err) => tracing::warn!(
            "keeping the tokens, OAuth issuers, access policy and trust policy as they were: {}",
            chain(err)
        ),
    }
}
