//! The home's private files: the databases (audit log, memory, runs, budgets) hold
//! what tools were called with and what they answered, and the home holds the keys
//! and token hashes. Only their owner may read them: directories Warden creates are
//! `0700`, databases `0600` (SQLite gives its `-wal` and `-shm` files the database's
//! mode). A database found readable by others is tightened when it is opened.

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::Path;

/// The mode of the directories Warden creates.
pub const DIR_MODE: u32 = 0o700;

/// The mode of the databases and keys Warden creates.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` and its missing parents, each new one `0700` (directories that exist
/// keep their mode: a home the operator chose, such as a project directory, is theirs).
pub fn create_dir(dir: &Path) -> io::Result<()> {
    DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)
}

/// Makes sure the database at `path` exists with mode `0600` before SQLite opens it
/// (creating its directory with [`create_dir`]), and tightens it and its `-wal` and
/// `-shm` files if they are readable by others.
pub fn database(path: &Path) -> io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        create_dir(dir)?;
    }
    OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        tighten(Path::new(&name))?;
    }
    Ok(())
}

/// Takes group and other permissions off `path`, if it exists.
fn tighten(path: &Path) -> io::Result<()> {
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode(),
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    if mode & 0o077 != 0 {
        std::fs::set_permissions(path, Permissions::from_mode(mode & 0o700))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_directories_and_databases_are_the_owners_only() {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join("a/home");
        database(&home.join("audit.db")).unwrap();
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&home), 0o700);
        assert_eq!(mode(&home.join("audit.db")), 0o600);
    }

    #[test]
    fn a_database_readable_by_others_is_tightened_and_kept() {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), Permissions::from_mode(0o755)).unwrap();
        let db = root.path().join("memory.db");
        std::fs::write(&db, b"kept").unwrap();
        std::fs::write(root.path().join("memory.db-wal"), b"").unwrap();
        std::fs::set_permissions(&db, Permissions::from_mode(0o644)).unwrap();
        database(&db).unwrap();
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&root.path().join("memory.db-wal")), 0o600);
        assert_eq!(std::fs::read(&db).unwrap(), b"kept");
        // A directory that exists keeps its mode.
        assert_eq!(mode(root.path()), 0o755);
    }
}
