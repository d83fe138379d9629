//! `warden memory ls|get|put|search`: an operator's view of the memory service.
//!
//! These commands act as the operator, not as a plugin: no grant applies, and each
//! change is an audit record with the operator's principal.

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;
use warden::audit::{Event, Outcome};
use warden::home::Home;
use warden::memory::{Document, Entry};

use super::{CliResult, Failure};

#[derive(Subcommand)]
pub(crate) enum MemoryCommand {
    /// List namespaces, or the keys of one namespace.
    Ls {
        /// The namespace (all namespaces when omitted).
        namespace: Option<String>,
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Print the value under KEY (or the document with that id, with --document).
    Get {
        namespace: String,
        key: String,
        /// Read a document instead of a key-value entry.
        #[arg(long)]
        document: bool,
    },
    /// Store VALUE under KEY (or a document with that id and text, with --document).
    Put {
        namespace: String,
        key: String,
        value: String,
        /// Content type of the value.
        #[arg(long, default_value = "text/plain")]
        content_type: String,
        /// Expire after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
        /// Store a searchable document (VALUE is its text) instead of an entry.
        #[arg(long)]
        document: bool,
        /// The document's metadata, a JSON object.
        #[arg(long, value_name = "JSON", requires = "document")]
        metadata: Option<String>,
    },
    /// Search a namespace's documents, best first: full text (BM25), fused with
    /// vector similarity when `[memory] embedding_route` is set.
    Search {
        namespace: String,
        query: String,
        /// Only documents whose metadata has these values, a JSON object.
        #[arg(long, value_name = "JSON")]
        filter: Option<String>,
        #[arg(long, default_value_t = 10)]
        limit: u32,
    },
}

fn check_namespace(namespace: &str) -> CliResult {
    if warden::grant::valid_namespace(namespace) {
        Ok(())
    } else {
        Err(Failure::usage(anyhow::anyhow!(
            "{namespace:?} is not a namespace name: 1 to 64 of a-z, 0-9, '.', '_', '-'"
        )))
    }
}

/// Opens the home's memory store.
/// The embedder of the home's config (`[memory] embedding_route`), if one is set.
fn embedder(home: &Home) -> CliResult<Option<warden::memory::Embedder>> {
    let config = super::settings::load(home)?;
    warden_memory::Embedder::from_config(&config.memory, &config.models).map_err(Failure::usage)
}

pub(crate) fn open_store(home: &Home) -> CliResult<std::sync::Arc<dyn warden::memory::Store>> {
    std::fs::create_dir_all(home.root())
        .with_context(|| format!("creating {}", home.root().display()))?;
    Ok(super::settings::storage(home)?.memory(home.root())?)
}

pub(crate) async fn run(home: &Home, cmd: MemoryCommand) -> CliResult {
    let store = open_store(home)?;
    let now = warden::memory::now();
    match cmd {
        MemoryCommand::Ls {
            namespace: None, ..
        } => {
            for name in store.namespaces()? {
                println!("{name}");
            }
        }
        MemoryCommand::Ls {
            namespace: Some(namespace),
            prefix,
        } => {
            check_namespace(&namespace)?;
            let mut after = None;
            loop {
                let page = store.list_keys(&namespace, &prefix, after.as_deref(), 1000, now)?;
                for key in &page.keys {
                    println!("{key}");
                }
                match page.next {
                    Some(next) => after = Some(next),
                    None => break,
                }
            }
        }
        MemoryCommand::Get {
            namespace,
            key,
            document,
        } => {
            check_namespace(&namespace)?;
            let found = if document {
                store.get_document(&namespace, &key)?.map(|d| {
                    serde_json::to_string_pretty(&json!({
                        "id": d.id,
                        "text": d.text,
                        "metadata": serde_json::from_str::<serde_json::Value>(&d.metadata)
                            .unwrap_or_default(),
                    }))
                    .unwrap_or_default()
                })
            } else {
                store
                    .get(&namespace, &key, now)?
                    .map(|e| String::from_utf8_lossy(&e.value).into_owned())
            };
            match found {
                Some(text) => println!("{text}"),
                None => {
                    return Err(Failure::usage(anyhow::anyhow!(
                        "{namespace}: no {} {key:?} (`warden memory ls {namespace}` lists the keys)",
                        if document { "document" } else { "key" }
                    )));
                }
            }
        }
        MemoryCommand::Put {
            namespace,
            key,
            value,
            content_type,
            ttl,
            document,
            metadata,
        } => {
            check_namespace(&namespace)?;
            let audit = super::audit::open_log(home)?;
            let bytes = value.len();
            if document {
                let metadata = warden::memory::check_metadata(metadata.as_deref().unwrap_or(""))
                    .map_err(Failure::usage)?;
                let doc = Document {
                    id: key.clone(),
                    text: value,
                    metadata,
                };
                let embedder = embedder(home)?;
                warden::memory::hybrid::put_document(
                    store.as_ref(),
                    embedder.as_ref(),
                    &namespace,
                    &doc,
                )
                .await?;
            } else {
                store.set(
                    &namespace,
                    &key,
                    &Entry {
                        value: value.into_bytes(),
                        content_type,
                        expires_at: ttl.map(|t| now.saturating_add(t)),
                    },
                )?;
            }
            audit.append_blocking(
                Event::new("memory.put", warden::config::env::local_principal())
                    .outcome(Outcome::Ok)
                    .field("namespace", namespace.clone())
                    .field(if document { "document" } else { "key" }, key.clone())
                    .field("bytes", bytes),
            )?;
            println!("{namespace}: stored {key:?} ({bytes} bytes)");
        }
        MemoryCommand::Search {
            namespace,
            query,
            filter,
            limit,
        } => {
            check_namespace(&namespace)?;
            let filter = warden::memory::parse_filter(filter.as_deref()).map_err(Failure::usage)?;
            let embedder = embedder(home)?;
            let limit = limit.clamp(1, 100);
            let hits = warden::memory::hybrid::search(
                store.as_ref(),
                embedder.as_ref(),
                &namespace,
                &query,
                &filter,
                limit,
            )
            .await?;
            for hit in hits {
                println!("{:>8.3}  {}  {}", hit.score, hit.id, hit.snippet);
            }
        }
    }
    Ok(())
}
