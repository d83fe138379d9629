//! The `wasi:filesystem` functions that change the file system, wrapped to put each
//! change on the call's record: `create-directory-at` (`mkdir`),
//! `remove-directory-at` (`rmdir`), `unlink-file-at` (`unlink`), `rename-at`
//! (`rename`), `link-at` (`link`), `symlink-at` (`symlink`), `set-times` and
//! `set-times-at` (`set-times`), `set-size` (`set-size`).
//!
//! Each wrapper calls wasmtime-wasi's own implementation (its `HostDescriptor` for the
//! call's file-system view), so the grant's read-only preopens refuse exactly as
//! before, and then notes the change with its guest path(s) and outcome; a refusal is
//! noted as a denial. Nothing here decides: it only records.

use wasmtime::StoreContextMut;
use wasmtime::component::{LinkerInstance, Resource};
use wasmtime::error::Context as _;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView as _};
use wasmtime_wasi::p2::FsResult;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    ErrorCode, Filesize, HostDescriptor as _, NewTimestamp, PathFlags,
};

use super::note::note;
use crate::state::CallState;

/// What a change wrapper returns to the guest.
type Changed = wasmtime::Result<(Result<(), ErrorCode>,)>;

/// Wraps `[method]descriptor.$method` (a directory and a path) as the change `$op`.
macro_rules! wrap_at {
    ($types:expr, $method:literal, $op:literal, $call:ident) => {
        $types
            .func_wrap_async(
                concat!("[method]descriptor.", $method),
                |mut store: StoreContextMut<'_, CallState>,
                 (dir, path): (Resource<Descriptor>, String)| {
                    Box::new(async move {
                        let full = store.data().files.at(dir.rep(), &path);
                        let done = store.data_mut().filesystem().$call(dir, path).await;
                        finish(store.data_mut(), $op, full, None, done)
                    })
                },
            )
            .context(concat!("wrapping wasi:filesystem ", $method))?;
    };
}

/// Wraps the changes in `types`, the `wasi:filesystem/types` instance of the linker.
pub(super) fn wrap(types: &mut LinkerInstance<'_, CallState>) -> wasmtime::Result<()> {
    // The three that take a directory and a path, and change only what is there.
    wrap_at!(types, "create-directory-at", "mkdir", create_directory_at);
    wrap_at!(types, "remove-directory-at", "rmdir", remove_directory_at);
    wrap_at!(types, "unlink-file-at", "unlink", unlink_file_at);

    types
        .func_wrap_async(
            "[method]descriptor.rename-at",
            |mut store: StoreContextMut<'_, CallState>,
             (dir, path, new_dir, new_path): (
                Resource<Descriptor>,
                String,
                Resource<Descriptor>,
                String,
            )| {
                Box::new(async move {
                    let files = &store.data().files;
                    let full = files.at(dir.rep(), &path);
                    let to = files.at(new_dir.rep(), &new_path);
                    let done = store
                        .data_mut()
                        .filesystem()
                        .rename_at(dir, path, new_dir, new_path)
                        .await;
                    finish(store.data_mut(), "rename", full, Some(to), done)
                })
            },
        )
        .context("wrapping wasi:filesystem rename-at")?;

    types
        .func_wrap_async(
            "[method]descriptor.link-at",
            |mut store: StoreContextMut<'_, CallState>,
             (dir, path_flags, path, new_dir, new_path): (
                Resource<Descriptor>,
                PathFlags,
                String,
                Resource<Descriptor>,
                String,
            )| {
                Box::new(async move {
                    let files = &store.data().files;
                    let full = files.at(dir.rep(), &path);
                    let to = files.at(new_dir.rep(), &new_path);
                    let done = store
                        .data_mut()
                        .filesystem()
                        .link_at(dir, path_flags, path, new_dir, new_path)
                        .await;
                    finish(store.data_mut(), "link", full, Some(to), done)
                })
            },
        )
        .context("wrapping wasi:filesystem link-at")?;

    types
        .func_wrap_async(
            "[method]descriptor.symlink-at",
            |mut store: StoreContextMut<'_, CallState>,
             (dir, points_to, path): (Resource<Descriptor>, String, String)| {
                Box::new(async move {
                    let full = store.data().files.at(dir.rep(), &path);
                    let done = store
                        .data_mut()
                        .filesystem()
                        .symlink_at(dir, points_to.clone(), path)
                        .await;
                    finish(store.data_mut(), "symlink", full, Some(points_to), done)
                })
            },
        )
        .context("wrapping wasi:filesystem symlink-at")?;

    types
        .func_wrap_async(
            "[method]descriptor.set-times-at",
            |mut store: StoreContextMut<'_, CallState>,
             (dir, path_flags, path, atim, mtim): (
                Resource<Descriptor>,
                PathFlags,
                String,
                NewTimestamp,
                NewTimestamp,
            )| {
                Box::new(async move {
                    let full = store.data().files.at(dir.rep(), &path);
                    let done = store
                        .data_mut()
                        .filesystem()
                        .set_times_at(dir, path_flags, path, atim, mtim)
                        .await;
                    finish(store.data_mut(), "set-times", full, None, done)
                })
            },
        )
        .context("wrapping wasi:filesystem set-times-at")?;

    types
        .func_wrap_async(
            "[method]descriptor.set-times",
            |mut store: StoreContextMut<'_, CallState>,
             (fd, atim, mtim): (Resource<Descriptor>, NewTimestamp, NewTimestamp)| {
                Box::new(async move {
                    let full = store.data().files.at(fd.rep(), "");
                    let done = store
                        .data_mut()
                        .filesystem()
                        .set_times(fd, atim, mtim)
                        .await;
                    finish(store.data_mut(), "set-times", full, None, done)
                })
            },
        )
        .context("wrapping wasi:filesystem set-times")?;

    types
        .func_wrap_async(
            "[method]descriptor.set-size",
            |mut store: StoreContextMut<'_, CallState>,
             (fd, size): (Resource<Descriptor>, Filesize)| {
                Box::new(async move {
                    let full = store.data().files.at(fd.rep(), "");
                    let done = store.data_mut().filesystem().set_size(fd, size).await;
                    finish(store.data_mut(), "set-size", full, None, done)
                })
            },
        )
        .context("wrapping wasi:filesystem set-size")?;
    Ok(())
}

/// The guest's answer for a change that came to `done`, once noted in `state`. An
/// error that is not a WASI error code (a host failure) traps, as wasmtime-wasi's
/// bindings do.
fn finish(
    state: &mut CallState,
    op: &'static str,
    path: String,
    to: Option<String>,
    done: FsResult<()>,
) -> Changed {
    let done = match done {
        Ok(()) => Ok(()),
        Err(err) => Err(err.downcast()?),
    };
    note(state, op, path, to, None, done.as_ref().err());
    Ok((done,))
}
