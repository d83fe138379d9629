//! Push, add by tag and by digest, update a moved tag, and every way a pull is refused.

use warden_tests::guests;

use super::{Env, TestRegistry, digest_after};

fn plugin_manifest(name: &str) -> String {
    format!(
        "{}/../../plugins/{name}/warden.toml",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn a_pushed_component_is_added_by_tag_and_by_digest_with_its_provenance() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let reference = registry.reference("tools/text:1.0");
    let manifest = plugin_manifest("text");
    let (out, _) = env.run(
        &[
            "plugin",
            "push",
            guests::TEXT,
            &reference,
            "--manifest",
            &manifest,
        ],
        0,
    );
    let manifest_digest = digest_after(&out, "manifest");
    let component = digest_after(&out, "component");
    assert!(
        out.contains(&format!(
            "pinned    {}@{manifest_digest}",
            registry.reference("tools/text")
        )),
        "{out}"
    );

    // By tag: the name and the manifest come from the artifact's annotations.
    let (out, _) = env.run(&["plugin", "add", &reference], 0);
    assert!(
        out.starts_with(&format!("added text ({component})")),
        "{out}"
    );
    assert!(out.contains("text/word-count"), "{out}");
    assert!(
        out.contains(&format!(
            "from {reference} (manifest {manifest_digest}), not signed by a trusted key"
        )),
        "{out}"
    );
    let doc = env.inspect("text");
    assert_eq!(doc["digest"], component.as_str());
    assert_eq!(doc["source"], reference.as_str());
    assert_eq!(doc["provenance"]["reference"], reference.as_str());
    assert_eq!(
        doc["provenance"]["manifest_digest"],
        manifest_digest.as_str()
    );
    assert_eq!(doc["provenance"]["signature"], serde_json::Value::Null);
    assert_eq!(doc["manifest"]["version"], "0.1.0");
    let (out, _) = env.run(
        &[
            "call",
            "text/word-count",
            "--input",
            r#"{"text": "one two three"}"#,
        ],
        0,
    );
    assert!(out.contains('3'), "{out}");

    // By digest: the same component, pinned; nothing to update.
    let pinned = format!("{}@{manifest_digest}", registry.reference("tools/text"));
    let (out, _) = env.run(&["plugin", "add", &pinned, "--name", "pinned"], 0);
    assert!(
        out.starts_with(&format!("added pinned ({component})")),
        "{out}"
    );
    assert_eq!(
        env.inspect("pinned")["provenance"]["reference"],
        pinned.as_str()
    );
    let (out, _) = env.run(&["plugin", "update", "pinned"], 0);
    assert!(out.contains("nothing to update"), "{out}");
    let (out, _) = env.run(&["plugin", "update", "text"], 0);
    assert!(out.contains("text is up to date"), "{out}");

    // On the record: where each came from.
    let (out, _) = env.run(&["audit", "query", "--kind", "plugin.add", "--json"], 0);
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2, "{out}");
    let text = serde_json::to_string(&records[0]).unwrap();
    assert!(
        text.contains(&format!("\"reference\":\"{reference}\"")),
        "{text}"
    );
    assert!(
        text.contains(&format!("\"manifest_digest\":\"{manifest_digest}\"")),
        "{text}"
    );
    assert!(text.contains("\"signer\":null"), "{text}");
}

#[test]
fn a_moved_tag_shows_the_change_and_replaces_only_when_confirmed() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let reference = registry.reference("tools/calc:latest");
    let text_manifest = plugin_manifest("text");
    let (out, _) = env.run(
        &[
            "plugin",
            "push",
            guests::TEXT,
            &reference,
            "--manifest",
            &text_manifest,
        ],
        0,
    );
    let first = digest_after(&out, "manifest");
    env.run(&["plugin", "add", &reference, "--name", "calc"], 0);

    // The tag moves to another component, whose manifest requests the network.
    let manifest = env.file("adder.toml");
    std::fs::write(
        &manifest,
        "name = \"calc\"\n[requests]\nnet = { reason = \"looks numbers up\" }\n",
    )
    .unwrap();
    let (out, _) = env.run(
        &[
            "plugin",
            "push",
            guests::ADDER,
            &reference,
            "--manifest",
            manifest.to_str().unwrap(),
        ],
        0,
    );
    let second = digest_after(&out, "manifest");
    let component = digest_after(&out, "component");
    let old_digest = env.inspect("calc")["digest"].as_str().unwrap().to_string();

    // A script (no terminal) sees the change and nothing is replaced.
    let (out, err) = env.run(&["plugin", "update", "calc"], 2);
    assert!(
        out.contains(&format!("  manifest  {first} -> {second}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("  digest    {old_digest} -> {component}")),
        "{out}"
    );
    assert!(out.contains("  signature unsigned -> unsigned"), "{out}");
    assert!(out.contains("  tool      + calc/add"), "{out}");
    assert!(out.contains("  tool      - calc/word-count"), "{out}");
    assert!(
        out.contains("  requests  + net (looks numbers up)"),
        "{out}"
    );
    assert!(
        err.contains(
            "not replaced: no terminal to confirm on; run `warden plugin update calc --yes`"
        ),
        "{err}"
    );
    assert_eq!(env.inspect("calc")["digest"], old_digest.as_str());

    let (out, _) = env.run(&["plugin", "update", "calc", "--yes"], 0);
    assert!(
        out.contains(&format!("updated calc ({component})")),
        "{out}"
    );
    let doc = env.inspect("calc");
    assert_eq!(doc["digest"], component.as_str());
    assert_eq!(doc["provenance"]["manifest_digest"], second.as_str());
    env.run(&["call", "calc/add", "--input", r#"{"a": 2, "b": 3}"#], 0);
    let (out, _) = env.run(&["audit", "query", "--kind", "plugin.replace", "--json"], 0);
    assert!(out.contains(&second) && out.contains(&old_digest), "{out}");
}

#[test]
fn a_tampered_blob_is_refused_and_nothing_is_installed() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let reference = registry.reference("tools/text:1");
    let (out, _) = env.run(&["plugin", "push", guests::TEXT, &reference], 0);
    let component = digest_after(&out, "component");
    let blob = registry.blob_file(&component);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&blob, bytes).unwrap();

    let (_, err) = env.run(&["plugin", "add", &reference, "--name", "text"], 2);
    assert!(
        err.contains(&reference) && err.contains("does not match its digest"),
        "{err}"
    );
    assert!(err.contains(&format!("expected {component}")), "{err}");
    assert!(env.names().is_empty());
}

#[test]
fn an_unreachable_registry_a_missing_tag_and_a_non_wasm_artifact_install_nothing() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_, err) = env.run(
        &["plugin", "add", &format!("oci://{closed}/tools/text:1")],
        1,
    );
    assert!(
        err.contains(&format!(
            "registry {closed} is unreachable (oci://{closed}/tools/text:1)"
        )),
        "{err}"
    );

    let reference = registry.reference("tools/text:1");
    env.run(&["plugin", "push", guests::TEXT, &reference], 0);
    let missing = registry.reference("tools/text:2");
    let (_, err) = env.run(&["plugin", "add", &missing], 2);
    assert!(
        err.contains(&format!("{missing} was not found in the registry")),
        "{err}"
    );
    let (_, err) = env.run(
        &["plugin", "add", &registry.reference("tools/nothing:1")],
        2,
    );
    assert!(err.contains("was not found in the registry"), "{err}");

    // A signature manifest is an artifact too, but not a component.
    let key = env.file("author");
    env.run(&["plugin", "keygen", "--out", key.to_str().unwrap()], 0);
    let (out, _) = env.run(
        &[
            "plugin",
            "sign",
            &reference,
            "--key",
            &format!("{}.key", key.display()),
        ],
        0,
    );
    let signed = out
        .split('@')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    let sig = registry.reference(&format!("tools/text:{}.sig", signed.replace(':', "-")));
    let (_, err) = env.run(&["plugin", "add", &sig, "--name", "sig"], 2);
    assert!(err.contains("is not a Wasm component artifact"), "{err}");
    assert!(
        err.contains("expected the config \"application/vnd.wasm.config.v0+json\" and one \"application/wasm\" layer"),
        "{err}"
    );

    let (_, err) = env.run(&["plugin", "add", "oci://tools/text:1"], 2);
    assert!(err.contains("is not a registry reference"), "{err}");
    assert!(env.names().is_empty());
}
