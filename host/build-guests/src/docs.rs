//! The `package-docs` custom section: a guest's WIT doc comments, carried in the
//! component (the format of `wit_parser::PackageMetadata`, as wit-docs-inject writes it).

use std::path::Path;

use anyhow::{Context, Result, bail};
use wit_parser::{PackageMetadata, Resolve};

const SECTION: &str = PackageMetadata::SECTION_NAME;

/// The encoded `package-docs` payload of the WIT package in `crate_wit`, after parsing
/// `shared_wit` (the packages it includes or uses) when given.
pub fn package_docs(shared_wit: Option<&Path>, crate_wit: &Path) -> Result<Vec<u8>> {
    let mut resolve = Resolve::new();
    if let Some(shared) = shared_wit {
        resolve
            .push_dir(shared)
            .with_context(|| format!("parsing WIT in {}", shared.display()))?;
    }
    let (package, _) = resolve
        .push_dir(crate_wit)
        .with_context(|| format!("parsing WIT in {}", crate_wit.display()))?;
    PackageMetadata::extract(&resolve, package).encode()
}

/// `component` with one `package-docs` custom section holding `docs`: an existing
/// top-level one is replaced, else the section is appended.
pub fn inject_package_docs(component: &[u8], docs: &[u8]) -> Result<Vec<u8>> {
    if component.len() < 8 || &component[..4] != b"\0asm" {
        bail!("not a WebAssembly binary");
    }
    let mut out = Vec::with_capacity(component.len() + docs.len() + 32);
    out.extend_from_slice(&component[..8]);
    let mut at = 8;
    while at < component.len() {
        let start = at;
        let id = component[at];
        at += 1;
        let size = read_leb(component, &mut at)? as usize;
        let body = at;
        at = at
            .checked_add(size)
            .filter(|&end| end <= component.len())
            .context("a section runs past the end of the binary")?;
        if id == 0 {
            let mut name_at = body;
            let name_len = read_leb(component, &mut name_at)? as usize;
            let name = component.get(name_at..name_at + name_len);
            if name == Some(SECTION.as_bytes()) {
                continue;
            }
        }
        out.extend_from_slice(&component[start..at]);
    }
    let mut payload = Vec::new();
    write_leb(&mut payload, SECTION.len() as u64);
    payload.extend_from_slice(SECTION.as_bytes());
    payload.extend_from_slice(docs);
    out.push(0);
    write_leb(&mut out, payload.len() as u64);
    out.extend_from_slice(&payload);
    Ok(out)
}

fn read_leb(bytes: &[u8], at: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).context("truncated LEB128")?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("LEB128 too long")
}

fn write_leb(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header of an empty component (layer 1, version 0xd).
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    fn custom_sections(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut at = 8;
        let mut found = Vec::new();
        while at < bytes.len() {
            let id = bytes[at];
            at += 1;
            let size = read_leb(bytes, &mut at).unwrap() as usize;
            let end = at + size;
            if id == 0 {
                let mut name_at = at;
                let len = read_leb(bytes, &mut name_at).unwrap() as usize;
                let name = String::from_utf8(bytes[name_at..name_at + len].to_vec()).unwrap();
                found.push((name, bytes[name_at + len..end].to_vec()));
            }
            at = end;
        }
        found
    }

    #[test]
    fn appends_then_replaces_the_section() {
        let docs = vec![7u8; 300];
        let once = inject_package_docs(EMPTY_COMPONENT, &docs).unwrap();
        assert_eq!(custom_sections(&once), [(SECTION.to_owned(), docs.clone())]);
        let twice = inject_package_docs(&once, b"new").unwrap();
        assert_eq!(
            custom_sections(&twice),
            [(SECTION.to_owned(), b"new".to_vec())]
        );
    }

    #[test]
    fn refuses_what_is_not_wasm() {
        assert!(inject_package_docs(b"hello world", b"").is_err());
        assert!(inject_package_docs(b"\0asm\x0d\0\x01\0\x00\x05ab", b"").is_err());
    }

    #[test]
    fn leb_round_trip() {
        for value in [0, 1, 127, 128, 300, 1 << 20, u64::from(u32::MAX)] {
            let mut bytes = Vec::new();
            write_leb(&mut bytes, value);
            let mut at = 0;
            assert_eq!(read_leb(&bytes, &mut at).unwrap(), value);
            assert_eq!(at, bytes.len());
        }
    }

    #[test]
    fn docs_of_a_package_that_includes_the_shared_world() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let docs = package_docs(
            Some(&root.join("wit")),
            &root.join("tests/guests/logger/wit"),
        )
        .unwrap();
        let text = String::from_utf8_lossy(&docs);
        assert!(text.contains("hello, <name>"), "{text}");
    }
}
