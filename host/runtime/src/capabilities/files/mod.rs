//! WASI functions Warden wraps to record what a guest touched at the host boundary:
//! every file or directory opened (path as the guest sees it, mode, outcome), every
//! change to the file system ([`change`]: unlink, rmdir, rename, mkdir, symlink, link,
//! set-times, set-size) and every read of its environment (the variable names, never
//! their values).
//!
//! The wrappers are linked over wasmtime-wasi's own definitions (shadowing). They
//! observe and never widen what the grant allows. `open-at` opens as wasmtime-wasi
//! does ([`open`]), except that it opens only regular files and directories: a FIFO, a
//! socket or a device file in a granted directory is refused (a `capability.denied`
//! naming its kind; the guest sees `not-permitted`), as its open could block past the
//! call's deadline. A refusal by a read-only preopen (`read-only`, `not-permitted`,
//! `access`) is recorded as a denial naming the read-only grant. A guest holds at most
//! [`MAX_OPEN_FILES`] open at once: each is a host descriptor. A call records at most
//! [`MAX_FILE_USES`] opens and changes; past that it counts. Writes through a
//! descriptor's streams are not recorded one by one: the open that gave the
//! descriptor is, with its mode.

use std::collections::HashMap;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime::error::Context as _;
use wasmtime_wasi::cli::WasiCliView;
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::cli::environment::Host as _;
use wasmtime_wasi::p2::bindings::filesystem::preopens::Host as _;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, ErrorCode, OpenFlags, PathFlags,
};

use self::note::note;
use self::open::Opened;
use crate::denial::Denial;
use crate::state::CallState;

mod change;
mod note;
mod open;

/// The WASI version whose instances are wrapped (the one wasmtime-wasi links; guests
/// importing any 0.2.x are matched to it).
const WASI: &str = "0.2.12";

/// Opens and changes recorded one by one per call; more are counted in
/// [`FileUses::unrecorded`].
pub const MAX_FILE_USES: usize = 1000;

/// Most files and directories (preopens included) one call's guest may hold open at
/// once. Each is a descriptor of the host process, whose soft limit is often 1 024,
/// so the resource table's own cap ([`MAX_HANDLES`](crate::state::MAX_HANDLES)) is far
/// too high for them: one more open is refused (`quota`, and a denial naming the cap).
pub const MAX_OPEN_FILES: usize = 256;

/// One open of a file or directory, or one change to the file system.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileUse {
    /// `open`, or the change: `mkdir`, `rmdir`, `unlink`, `rename`, `link`,
    /// `symlink`, `set-times`, `set-size`.
    pub op: &'static str,
    /// The path as the guest named it, joined to its preopen (`/data/a.txt`): the
    /// file opened or changed, the source of a rename or link, the link a symlink makes.
    pub path: String,
    /// `rename`, `link`: the new path, joined to its preopen; `symlink`: what the link
    /// points to, as the guest wrote it.
    pub to: Option<String>,
    /// `open`: `read`, `write`, `read-write`, with `+create`, `+truncate`,
    /// `+exclusive`, `+directory` as asked.
    pub mode: Option<String>,
    /// `None` when it was done, else the WASI error code (`no-entry`, `read-only`…).
    pub error: Option<&'static str>,
    /// Why it was refused, when the grant (or the host's permissions on a granted
    /// directory) refused it rather than, say, the file not existing.
    pub denied: Option<String>,
}

impl FileUse {
    /// True when the grant refused it (rather than, say, the file not existing).
    pub fn is_denied(&self) -> bool {
        self.denied.is_some()
    }
}

/// What a call opened, changed and read, for its audit records.
#[derive(Debug, Default)]
pub struct FileUses {
    /// Guest paths of the descriptors the guest holds, by resource rep.
    paths: HashMap<u32, String>,
    /// Opens and changes, in order, up to [`MAX_FILE_USES`].
    pub uses: Vec<FileUse>,
    /// Opens and changes past [`MAX_FILE_USES`], not recorded one by one.
    pub unrecorded: u64,
    /// Names of the environment variables the guest read (once per call).
    pub env_read: Option<Vec<String>>,
}

impl FileUses {
    fn push(&mut self, used: FileUse) {
        if self.uses.len() < MAX_FILE_USES {
            self.uses.push(used);
        } else {
            self.unrecorded += 1;
        }
    }

    /// The guest path of descriptor `rep` joined with `path` (see [`join`]).
    fn at(&self, rep: u32, path: &str) -> String {
        join(self.paths.get(&rep).map(String::as_str), path)
    }
}

/// Wraps `open-at`, the changes ([`change`]), `get-directories` and `get-environment`
/// in `linker`, which must already hold wasmtime-wasi's definitions.
pub(crate) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let result = wrap(linker);
    linker.allow_shadowing(false);
    result
}

fn wrap(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    let mut types = linker.instance(&format!("wasi:filesystem/types@{WASI}"))?;
    types
        .func_wrap_async(
            "[method]descriptor.open-at",
            |mut store: StoreContextMut<'_, CallState>,
             (dir, path_flags, path, open, flags): (
                Resource<Descriptor>,
                PathFlags,
                String,
                OpenFlags,
                DescriptorFlags,
            )| {
                Box::new(async move {
                    let full = store.data().files.at(dir.rep(), &path);
                    if at_open_cap(store.data_mut()) {
                        refuse_past_cap(store.data_mut(), &full);
                        return Ok((Err(ErrorCode::Quota),));
                    }
                    let state = store.data_mut();
                    let fs = state.filesystem();
                    let parent = fs.table.get(&dir)?.clone();
                    let opened =
                        match open::open_at(&parent, path_flags, path.clone(), open, flags).await {
                            Ok(Opened::Descriptor(fd)) => Ok(fs.table.push(fd)?),
                            Ok(Opened::Special(kind)) => {
                                refuse_special(store.data_mut(), &full, kind);
                                return Ok((Err(ErrorCode::NotPermitted),));
                            }
                            Err(code) => Err(code),
                        };
                    let state = store.data_mut();
                    if let Ok(fd) = &opened {
                        state.files.paths.insert(fd.rep(), full.clone());
                    }
                    let mode = Some(mode(open, flags));
                    note(state, "open", full, None, mode, opened.as_ref().err());
                    Ok((opened,))
                })
            },
        )
        .context("wrapping wasi:filesystem open-at")?;
    change::wrap(&mut types)?;

    let mut preopens = linker.instance(&format!("wasi:filesystem/preopens@{WASI}"))?;
    preopens
        .func_wrap(
            "get-directories",
            |mut store: StoreContextMut<'_, CallState>, (): ()| {
                let state = store.data_mut();
                let dirs = state.filesystem().get_directories()?;
                for (fd, name) in &dirs {
                    state.files.paths.insert(fd.rep(), name.clone());
                }
                Ok((dirs,))
            },
        )
        .context("wrapping wasi:filesystem get-directories")?;

    let mut environment = linker.instance(&format!("wasi:cli/environment@{WASI}"))?;
    environment
        .func_wrap(
            "get-environment",
            |mut store: StoreContextMut<'_, CallState>, (): ()| {
                let state = store.data_mut();
                let vars = state.cli().get_environment()?;
                // A read of an empty environment exposes nothing: not recorded.
                if !vars.is_empty() && state.files.env_read.is_none() {
                    state.files.env_read = Some(vars.iter().map(|(k, _)| k.clone()).collect());
                }
                Ok((vars,))
            },
        )
        .context("wrapping wasi:cli get-environment")?;
    Ok(())
}

/// Whether the guest holds [`MAX_OPEN_FILES`] files and directories already (those it
/// dropped are forgotten first, when the count reaches the cap).
fn at_open_cap(state: &mut CallState) -> bool {
    if state.files.paths.len() < MAX_OPEN_FILES {
        return false;
    }
    let mut paths = std::mem::take(&mut state.files.paths);
    let fs = state.filesystem();
    paths.retain(|rep, _| {
        fs.table
            .get(&Resource::<Descriptor>::new_borrow(*rep))
            .is_ok()
    });
    state.files.paths = paths;
    state.files.paths.len() >= MAX_OPEN_FILES
}

/// Records the refusal to open `path` past [`MAX_OPEN_FILES`]; the guest sees `quota`.
fn refuse_past_cap(state: &mut CallState, path: &str) {
    let denial = Denial::new(
        "fs",
        path.to_string(),
        format!(
            "plugin \"{}\": {path} not opened: the call holds {MAX_OPEN_FILES} files and directories open already, the most one call may (each is a descriptor of the host's); close files it is done with",
            state.plugin
        ),
    );
    tracing::info!(plugin = %state.plugin, call = state.call_id, %denial, "file open denied");
    state.denials.push(denial);
}

/// Records the refusal to open `path`, a `kind` (FIFO, socket, device), for the call's
/// caller and its audit record; the guest sees `not-permitted`.
fn refuse_special(state: &mut CallState, path: &str, kind: &'static str) {
    let denial = Denial::new(
        "fs",
        path.to_string(),
        format!(
            "plugin \"{}\": {path} is a {kind}, not a regular file or directory; a grant opens only files and directories (a {kind} could block the call past its deadline); keep such files out of granted [[fs]] directories",
            state.plugin
        ),
    );
    tracing::info!(plugin = %state.plugin, call = state.call_id, %denial, "file open denied");
    state.denials.push(denial);
}

/// `parent/path`, without `.` segments; `path` alone when the parent is unknown.
fn join(parent: Option<&str>, path: &str) -> String {
    let rest = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/");
    match parent {
        None => rest,
        Some(p) if rest.is_empty() => p.to_string(),
        Some(p) => format!("{}/{rest}", p.trim_end_matches('/')),
    }
}

fn mode(open: OpenFlags, flags: DescriptorFlags) -> String {
    let mut mode = match (
        flags.contains(DescriptorFlags::READ),
        flags.contains(DescriptorFlags::WRITE),
    ) {
        (true, true) => "read-write",
        (false, true) => "write",
        _ => "read",
    }
    .to_string();
    for (flag, name) in [
        (OpenFlags::CREATE, "+create"),
        (OpenFlags::TRUNCATE, "+truncate"),
        (OpenFlags::EXCLUSIVE, "+exclusive"),
        (OpenFlags::DIRECTORY, "+directory"),
    ] {
        if open.contains(flag) {
            mode.push_str(name);
        }
    }
    mode
}

fn error_name(code: &ErrorCode) -> &'static str {
    use ErrorCode as E;
    match code {
        E::Access => "access",
        E::WouldBlock => "would-block",
        E::Already => "already",
        E::BadDescriptor => "bad-descriptor",
        E::Busy => "busy",
        E::Deadlock => "deadlock",
        E::Quota => "quota",
        E::Exist => "exist",
        E::FileTooLarge => "file-too-large",
        E::IllegalByteSequence => "illegal-byte-sequence",
        E::InProgress => "in-progress",
        E::Interrupted => "interrupted",
        E::Invalid => "invalid",
        E::Io => "io",
        E::IsDirectory => "is-directory",
        E::Loop => "loop",
        E::TooManyLinks => "too-many-links",
        E::MessageSize => "message-size",
        E::NameTooLong => "name-too-long",
        E::NoDevice => "no-device",
        E::NoEntry => "no-entry",
        E::NoLock => "no-lock",
        E::InsufficientMemory => "insufficient-memory",
        E::InsufficientSpace => "insufficient-space",
        E::NotDirectory => "not-directory",
        E::NotEmpty => "not-empty",
        E::NotRecoverable => "not-recoverable",
        E::Unsupported => "unsupported",
        E::NoTty => "no-tty",
        E::NoSuchDevice => "no-such-device",
        E::Overflow => "overflow",
        E::NotPermitted => "not-permitted",
        E::Pipe => "pipe",
        E::ReadOnly => "read-only",
        E::InvalidSeek => "invalid-seek",
        E::TextFileBusy => "text-file-busy",
        E::CrossDevice => "cross-device",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_to_the_preopen() {
        assert_eq!(join(Some("/data"), "a/./b.txt"), "/data/a/b.txt");
        assert_eq!(join(Some("/data/"), "."), "/data/");
        assert_eq!(join(Some("/"), "x"), "/x");
        assert_eq!(join(None, "x//y"), "x/y");
    }

    #[test]
    fn opens_and_changes_share_one_cap() {
        let mut files = FileUses::default();
        for op in ["open", "unlink"].iter().cycle().take(MAX_FILE_USES + 3) {
            files.push(FileUse {
                op,
                path: "/rw/a".into(),
                to: None,
                mode: None,
                error: None,
                denied: None,
            });
        }
        assert_eq!(files.uses.len(), MAX_FILE_USES);
        assert_eq!(files.unrecorded, 3);
    }

    #[test]
    fn modes() {
        assert_eq!(mode(OpenFlags::empty(), DescriptorFlags::READ), "read");
        assert_eq!(
            mode(
                OpenFlags::CREATE | OpenFlags::TRUNCATE,
                DescriptorFlags::WRITE
            ),
            "write+create+truncate"
        );
        assert_eq!(
            mode(
                OpenFlags::DIRECTORY,
                DescriptorFlags::READ | DescriptorFlags::WRITE
            ),
            "read-write+directory"
        );
    }
}
