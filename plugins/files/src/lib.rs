//! The `files` plugin: list, read, write and search files in the directories granted to
//! it (WASI preopens). It touches nothing else; the host enforces the sandbox, this
//! crate only turns every failure into an error text that names the path.
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(
        dead_code,
        reason = "tools are exported only to wasm; natively only unit tests run"
    )
)]

mod paths;
mod search;

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::time::UNIX_EPOCH;

use warden_sdk::log;

warden_sdk::wit_bindgen::generate!({
    world: "warden:files/files",
    path: ["../../wit", "wit"],
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: { "warden:host/log@0.1.0": warden_sdk::host::log },
});

use paths::Roots;

/// Largest number of bytes `read` returns at once.
const MAX_READ: u64 = 1 << 20;
/// Largest number of entries `list` returns.
const MAX_ENTRIES: usize = 1000;

struct Files;

impl Guest for Files {
    fn roots() -> Result<Vec<String>, String> {
        Ok(Roots::granted()?.names().to_vec())
    }

    fn list(path: String) -> Result<Vec<Entry>, String> {
        let full = Roots::granted()?.resolve(&path)?;
        let dir = fs::read_dir(&full).map_err(|e| format!("list {full}: {e}"))?;
        let mut entries = Vec::new();
        for item in dir {
            let item = item.map_err(|e| format!("list {full}: {e}"))?;
            let name = item.file_name().to_string_lossy().into_owned();
            let meta = item
                .metadata()
                .map_err(|e| format!("list {full}: {name}: {e}"))?;
            let ft = meta.file_type();
            let kind = if ft.is_symlink() {
                EntryKind::Symlink
            } else if ft.is_dir() {
                EntryKind::Directory
            } else if ft.is_file() {
                EntryKind::File
            } else {
                EntryKind::Other
            };
            let modified = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_secs());
            let size = if ft.is_dir() { 0 } else { meta.len() };
            entries.push(Entry {
                name,
                kind,
                size,
                modified,
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.truncate(MAX_ENTRIES);
        log::debug_with("listed directory", &[("path", &full)]);
        Ok(entries)
    }

    fn read(path: String, offset: Option<u64>, limit: Option<u64>) -> Result<String, String> {
        let full = Roots::granted()?.resolve(&path)?;
        let mut file = fs::File::open(&full).map_err(|e| format!("read {full}: {e}"))?;
        if file.metadata().is_ok_and(|m| m.is_dir()) {
            return Err(format!(
                "read {full}: is a directory; use `list` for directories"
            ));
        }
        let offset = offset.unwrap_or(0);
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .map_err(|e| format!("read {full}: seek to byte {offset}: {e}"))?;
        }
        let limit = limit.unwrap_or(MAX_READ).min(MAX_READ);
        let mut bytes = Vec::new();
        file.take(limit)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("read {full}: {e}"))?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    fn write(path: String, content: String, mode: WriteMode) -> Result<u64, String> {
        let full = Roots::granted()?.resolve(&path)?;
        let mut options = fs::OpenOptions::new();
        match mode {
            WriteMode::Create => options.write(true).create_new(true),
            WriteMode::Overwrite => options.write(true).create(true).truncate(true),
            WriteMode::Append => options.append(true).create(true),
        };
        let mut file = options.open(&full).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("write {full}: the file already exists; use mode `overwrite` or `append`")
            }
            _ => format!("write {full}: {e}"),
        })?;
        file.write_all(content.as_bytes())
            .and_then(|()| file.flush())
            .map_err(|e| format!("write {full}: {e}"))?;
        log::info_with(
            "wrote file",
            &[("path", &full), ("bytes", &content.len().to_string())],
        );
        Ok(content.len() as u64)
    }

    fn search(
        dir: String,
        pattern: String,
        max_results: Option<u32>,
    ) -> Result<Vec<SearchHit>, String> {
        let full = Roots::granted()?.resolve(&dir)?;
        let max = max_results.unwrap_or(50).clamp(1, 500) as usize;
        search::search(&full, &pattern, max)
    }
}

// Exported only when building the component: natively (unit tests) the export symbols
// would be named like libc's `read` and `write` and replace them in the test binary.
#[cfg(target_arch = "wasm32")]
export!(Files);
