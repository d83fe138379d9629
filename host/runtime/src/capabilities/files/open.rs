//! `open-at` for a guest: wasmtime-wasi's semantics (flags, symlinks, the preopen's
//! read-only permission, paths kept beneath the granted directory by cap-primitives),
//! except that only regular files and directories are opened.
//!
//! A FIFO, a socket or a device file inside a granted directory must not be opened for
//! a guest: a plain `open` of a FIFO waits for a writer forever, on a thread of the
//! blocking pool that no deadline can stop, and that thread then keeps the process
//! from exiting (and, under `serve`, holds a pool thread for good). So the path is
//! first looked at without opening it (`stat`), and anything but a file or a directory
//! is refused; then it is opened with `O_NONBLOCK`, so that a path swapped for a FIFO
//! in between still cannot block, and the descriptor's own type is checked again
//! (`fstat`) before the guest gets it. `O_NONBLOCK` stays on the descriptor: it has no
//! effect on regular files and directories.
//!
//! Warden never lets WASI block the calling thread (`allow_blocking_current_thread`
//! is off in `CallState::new`), so the descriptors made here run their I/O on the
//! blocking pool, as wasmtime-wasi's own would.

use std::path::Path;

use cap_primitives::fs::{FollowSymlinks, OpenOptions};
use wasmtime_wasi::OpenMode;
use wasmtime_wasi::filesystem::{Descriptor, Dir, File};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, ErrorCode, OpenFlags, PathFlags,
};

/// What an open came to.
pub(super) enum Opened {
    /// A regular file or a directory, for the guest's table.
    Descriptor(Descriptor),
    /// Something a grant never opens: `FIFO`, `socket`, `character device`, …
    Special(&'static str),
}

/// Opens `path` under `parent` as `open-at` asks, refusing anything but regular files
/// and directories (see the module docs).
pub(super) async fn open_at(
    parent: &Descriptor,
    path_flags: PathFlags,
    path: String,
    open: OpenFlags,
    flags: DescriptorFlags,
) -> Result<Opened, ErrorCode> {
    let Descriptor::Dir(parent) = parent else {
        return Err(ErrorCode::NotDirectory);
    };
    let (options, open_mode) = options(parent, path_flags, open, flags)?;
    let follow = follow(path_flags);
    let dir = parent.dir.clone();
    let opened = wasmtime_wasi::runtime::spawn_blocking(move || {
        let path = Path::new(&path);
        // Look first, so that a FIFO or a device is not even opened (opening some
        // devices has effects of its own). A missing path is left to the open.
        if let Ok(seen) = cap_primitives::fs::stat(&dir, path, follow)
            && let Some(kind) = special(&seen.file_type())
        {
            return Ok(Err(kind));
        }
        let file = cap_primitives::fs::open(&dir, path, &options)?;
        let kind = file.metadata()?.file_type();
        match special_std(&kind) {
            Some(kind) => Ok(Err(kind)),
            None => Ok(Ok((file, kind.is_dir()))),
        }
    })
    .await
    .map_err(|err: std::io::Error| ErrorCode::from(&err))?;
    let (file, is_dir) = match opened {
        Ok(file) => file,
        Err(kind) => return Ok(Opened::Special(kind)),
    };
    if is_dir {
        return Ok(Opened::Descriptor(Descriptor::Dir(Dir::new(
            file,
            parent.perms,
            open_mode,
            false,
        ))));
    }
    if open.contains(OpenFlags::DIRECTORY) {
        return Err(ErrorCode::NotDirectory);
    }
    Ok(Opened::Descriptor(Descriptor::File(File::new(
        file,
        parent.perms,
        open_mode,
        false,
    ))))
}

/// The open options and mode for `open` and `flags`, as wasmtime-wasi builds them,
/// plus `O_NONBLOCK`; the refusals it makes before touching the file system.
fn options(
    parent: &Dir,
    path_flags: PathFlags,
    open: OpenFlags,
    flags: DescriptorFlags,
) -> Result<(OpenOptions, OpenMode), ErrorCode> {
    let mut options = OpenOptions::new();
    let mut mode = OpenMode::empty();
    let create = open.contains(OpenFlags::CREATE);
    if create {
        if open.contains(OpenFlags::EXCLUSIVE) {
            options.create_new(true);
        } else {
            options.create(true);
        }
        options.write(true);
        mode |= OpenMode::WRITE;
    }
    if open.contains(OpenFlags::TRUNCATE) {
        options.truncate(true).write(true);
        mode |= OpenMode::WRITE;
    }
    if flags.contains(DescriptorFlags::READ) {
        options.read(true);
        mode |= OpenMode::READ;
    }
    if flags.contains(DescriptorFlags::WRITE) {
        options.write(true);
        mode |= OpenMode::WRITE;
    } else {
        // Opened for reading at least, so the OS opens it; the permissions then
        // refuse what the descriptor was not opened for.
        options.read(true);
        mode |= OpenMode::READ;
    }
    options._cap_fs_ext_follow(follow(path_flags));
    if flags.intersects(
        DescriptorFlags::FILE_INTEGRITY_SYNC
            | DescriptorFlags::DATA_INTEGRITY_SYNC
            | DescriptorFlags::REQUESTED_WRITE_SYNC,
    ) {
        return Err(ErrorCode::Unsupported);
    }
    if open.contains(OpenFlags::DIRECTORY)
        && open.intersects(OpenFlags::CREATE | OpenFlags::EXCLUSIVE | OpenFlags::TRUNCATE)
    {
        return Err(ErrorCode::Invalid);
    }
    if parent.perms.write_not_permitted() && (create || mode.contains(OpenMode::WRITE)) {
        return Err(ErrorCode::NotPermitted);
    }
    #[cfg(unix)]
    {
        use cap_primitives::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    Ok((options, mode))
}

fn follow(path_flags: PathFlags) -> FollowSymlinks {
    if path_flags.contains(PathFlags::SYMLINK_FOLLOW) {
        FollowSymlinks::Yes
    } else {
        FollowSymlinks::No
    }
}

/// What kind of special file `kind` is, or `None` for a file, a directory or a
/// symbolic link (which the open then follows or refuses as asked).
fn special(kind: &cap_primitives::fs::FileType) -> Option<&'static str> {
    if kind.is_file() || kind.is_dir() || kind.is_symlink() {
        return None;
    }
    #[cfg(unix)]
    {
        use cap_primitives::fs::FileTypeExt as _;
        Some(name(
            kind.is_fifo(),
            kind.is_socket(),
            kind.is_char_device(),
            kind.is_block_device(),
        ))
    }
    #[cfg(not(unix))]
    Some("special file")
}

/// [`special`] for an opened descriptor's type: only files and directories pass.
fn special_std(kind: &std::fs::FileType) -> Option<&'static str> {
    if kind.is_file() || kind.is_dir() {
        return None;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        Some(name(
            kind.is_fifo(),
            kind.is_socket(),
            kind.is_char_device(),
            kind.is_block_device(),
        ))
    }
    #[cfg(not(unix))]
    Some("special file")
}

fn name(fifo: bool, socket: bool, char_device: bool, block_device: bool) -> &'static str {
    match (fifo, socket, char_device, block_device) {
        (true, ..) => "FIFO",
        (_, true, ..) => "socket",
        (_, _, true, _) => "character device",
        (.., true) => "block device",
        _ => "special file",
    }
}
