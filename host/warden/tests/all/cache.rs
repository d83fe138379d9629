//! The compile cache: a second load is a hit; a corrupt or foreign entry is
//! recompiled, never deserialized.

use warden::PluginSource;
use warden::cache::{CacheOutcome, CompileCache};
use warden_tests::guests;

use crate::runtime;

fn load(cache: &CompileCache, wasm: &[u8]) -> warden::Plugin {
    runtime()
        .load(
            PluginSource {
                name: "counter",
                wasm,
                extra_docs: Default::default(),
                grant: None,
                signer: None,
            },
            Some(cache),
        )
        .unwrap()
}

fn entries(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(root).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                out.push(entry.unwrap().path());
            }
        }
    }
    out
}

#[tokio::test]
async fn second_load_is_a_hit_and_calls_work() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CompileCache::open(dir.path(), runtime().engine()).unwrap();
    let wasm = std::fs::read(guests::COUNTER).unwrap();
    assert_eq!(load(&cache, &wasm).cache, CacheOutcome::Compiled);
    let plugin = load(&cache, &wasm);
    assert_eq!(plugin.cache, CacheOutcome::Hit);
    let out = runtime()
        .call(&plugin, "bump", &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(out, serde_json::json!(1));
}

#[test]
fn a_corrupt_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CompileCache::open(dir.path(), runtime().engine()).unwrap();
    let wasm = std::fs::read(guests::COUNTER).unwrap();
    load(&cache, &wasm);
    let [entry] = entries(dir.path()).try_into().unwrap();
    let mut bytes = std::fs::read(&entry).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&entry, &bytes).unwrap();
    assert_eq!(load(&cache, &wasm).cache, CacheOutcome::Replaced);
    assert_eq!(load(&cache, &wasm).cache, CacheOutcome::Hit);
    std::fs::write(&entry, b"short").unwrap();
    assert_eq!(load(&cache, &wasm).cache, CacheOutcome::Replaced);
}

#[test]
fn an_entry_from_another_cache_is_not_trusted() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let engine = runtime().engine();
    let (cache_a, cache_b) = (
        CompileCache::open(a.path(), engine).unwrap(),
        CompileCache::open(b.path(), engine).unwrap(),
    );
    let wasm = std::fs::read(guests::COUNTER).unwrap();
    load(&cache_a, &wasm);
    load(&cache_b, &wasm);
    let [from_a] = entries(a.path()).try_into().unwrap();
    let [into_b] = entries(b.path()).try_into().unwrap();
    std::fs::copy(&from_a, &into_b).unwrap();
    assert_eq!(load(&cache_b, &wasm).cache, CacheOutcome::Replaced);
}

/// A component compiled ahead of time (`.cwasm`, native code) handed in as a plugin,
/// to the runtime whose engine made it, is refused: plugins are Wasm, compiled here.
#[test]
fn a_precompiled_component_handed_in_as_a_plugin_is_refused() {
    let wasm = std::fs::read(guests::COUNTER).unwrap();
    let cwasm = runtime().engine().precompile_component(&wasm).unwrap();
    let source = |wasm| PluginSource {
        name: "counter",
        wasm,
        extra_docs: Default::default(),
        grant: None,
        signer: None,
    };
    let Err(err) = runtime().load(source(&cwasm), None) else {
        panic!("a precompiled component was loaded");
    };
    let err = err.to_string();
    assert!(err.starts_with("plugin \"counter\": "), "{err}");
    assert!(err.contains("not a WebAssembly binary"), "{err}");
    // The Wasm it was made from loads.
    assert!(runtime().load(source(&wasm), None).is_ok());
}
