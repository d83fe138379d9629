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

// The tools are exported by hand instead of with the generated `export!(Files)`.
//
// `export!` names each core-wasm export after its WIT function (the "legacy" naming:
// `read`, `write`, `cabi_post_read`, ...), and on wasm32 an export name is also the
// link-time symbol name. Our `read` and `write` then *are* the C symbols `read` and
// `write` for the whole module: wasm-ld resolves wasi-libc's callers (Rust std's
// `File::read`, `File::write`, ...) to them instead of pulling in libc's own, so the
// first `std::fs` read or write jumped into the tool's lifting code with a file
// descriptor and a buffer as arguments: "out of bounds memory access" (debug builds
// link an `unreachable` signature-mismatch stub instead).
//
// The component model's standard core names (`cm32p2||read` and `cm32p2||read_post`,
// https://github.com/WebAssembly/component-model/pull/378), which `wit-component`
// accepts alongside the legacy ones, cannot clash with any C symbol. The lifting code
// is still the generated one; the compiler checks each signature against it.
#[cfg(target_arch = "wasm32")]
mod exports {
    use super::{
        __post_return_list, __post_return_read, __post_return_roots, __post_return_search,
        __post_return_write, _export_list_cabi, _export_read_cabi, _export_roots_cabi,
        _export_search_cabi, _export_write_cabi, Files,
    };

    /// Exports world function `$name` as `cm32p2||$name`, with its post-return function
    /// (which frees the returned value) as `cm32p2||${name}_post`.
    macro_rules! export_tool {
        ($name:literal, $lift:ident($($arg:ident: $ty:ty),*), $post:ident) => {
            const _: () = {
                #[unsafe(export_name = concat!("cm32p2||", $name))]
                unsafe extern "C" fn export($($arg: $ty),*) -> *mut u8 {
                    // SAFETY: called only by the component model's canonical lift with
                    // the arguments of the function's core signature.
                    unsafe { $lift::<Files>($($arg),*) }
                }

                #[unsafe(export_name = concat!("cm32p2||", $name, "_post"))]
                unsafe extern "C" fn post_return(ret: *mut u8) {
                    // SAFETY: called only once per call, with the pointer `export` returned.
                    unsafe { $post::<Files>(ret) }
                }
            };
        };
    }

    export_tool!("roots", _export_roots_cabi(), __post_return_roots);
    export_tool!("list", _export_list_cabi(path: *mut u8, path_len: usize), __post_return_list);
    export_tool!(
        "read",
        _export_read_cabi(
            path: *mut u8,
            path_len: usize,
            offset_tag: i32,
            offset: i64,
            limit_tag: i32,
            limit: i64
        ),
        __post_return_read
    );
    export_tool!(
        "write",
        _export_write_cabi(
            path: *mut u8,
            path_len: usize,
            content: *mut u8,
            content_len: usize,
            mode: i32
        ),
        __post_return_write
    );
    export_tool!(
        "search",
        _export_search_cabi(
            dir: *mut u8,
            dir_len: usize,
            pattern: *mut u8,
            pattern_len: usize,
            max_tag: i32,
            max: i32
        ),
        __post_return_search
    );
}
