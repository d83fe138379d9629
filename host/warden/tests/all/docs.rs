//! Where tool descriptions come from: the component's `package-docs` section, WIT
//! source given at add time, the manifest, or the signature.

use warden::PluginSource;
use warden::docs::PackageDocs;
use warden::manifest::Manifest;
use warden::tools::{DocSource, ExtraDocs};
use warden_tests::guests;

use crate::runtime;

/// The component without its `package-docs` section, as a plain toolchain writes it.
fn strip_docs(wasm: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    for payload in wasmparser::Parser::new(0).parse_all(wasm) {
        let payload = payload.unwrap();
        match &payload {
            wasmparser::Payload::Version { .. } => depth += 1,
            wasmparser::Payload::End(_) => depth -= 1,
            _ => {}
        }
        if let wasmparser::Payload::CustomSection(reader) = &payload
            && depth == 1
            && reader.name() == "package-docs"
        {
            let range = reader.range();
            // Section id and size precede the section's contents.
            let header_start = wasm[..range.start].iter().rposition(|&b| b == 0).unwrap();
            out.extend_from_slice(&wasm[..header_start]);
            out.extend_from_slice(&wasm[range.end..]);
            return out;
        }
    }
    panic!("no package-docs section");
}

fn load(wasm: &[u8], extra: ExtraDocs<'_>) -> warden::Plugin {
    runtime()
        .load(
            PluginSource {
                name: "text",
                wasm,
                extra_docs: extra,
                grant: None,
                signer: None,
            },
            None,
        )
        .unwrap()
}

#[test]
fn first_party_plugins_carry_their_docs_in_the_binary() {
    let wasm = std::fs::read(guests::TEXT).unwrap();
    assert!(PackageDocs::from_component(&wasm).is_some());
    let plugin = load(&wasm, ExtraDocs::default());
    let tool = plugin.tool("word-count").unwrap();
    assert_eq!(tool.description_source, DocSource::Component);
    assert!(
        tool.description.starts_with("Counts words"),
        "{}",
        tool.description
    );
    let iface = plugin.tool("transform.case-convert").unwrap();
    assert_eq!(iface.description_source, DocSource::Component);
}

#[test]
fn without_a_docs_section_wit_then_manifest_then_signature() {
    let wasm = strip_docs(&std::fs::read(guests::TEXT).unwrap());
    assert!(PackageDocs::from_component(&wasm).is_none());

    let wit_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../plugins/text/wit");
    let wit = PackageDocs::from_wit_dir(&wit_dir).unwrap();
    let plugin = load(
        &wasm,
        ExtraDocs {
            wit: Some(&wit),
            manifest: None,
        },
    );
    let tool = plugin.tool("word-count").unwrap();
    assert_eq!(tool.description_source, DocSource::Wit);
    assert!(tool.description.starts_with("Counts words"));

    let manifest = Manifest::parse("[tools]\nword-count = \"Counts things.\"\n").unwrap();
    let plugin = load(
        &wasm,
        ExtraDocs {
            wit: None,
            manifest: Some(&manifest),
        },
    );
    let tool = plugin.tool("word-count").unwrap();
    assert_eq!(tool.description_source, DocSource::Manifest);
    assert_eq!(tool.description, "Counts things.");

    let tool = plugin.tool("diff").unwrap();
    assert_eq!(tool.description_source, DocSource::Signature);
    assert_eq!(
        tool.description,
        "diff(old: string, new: string, context: option<u32>) -> list<record>"
    );
}
