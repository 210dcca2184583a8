//! Small file-system helpers shared by the file stores.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::StorageError;

/// Fsyncs a directory so that creations, renames and deletions in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let d = File::open(dir).map_err(|e| StorageError::io("open directory", dir, e))?;
    d.sync_all()
        .map_err(|e| StorageError::io("fsync directory", dir, e))
}

/// Writes `bytes` to `path` atomically: temp file, fsync, rename, fsync directory.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let dst = dir.join(name);
    {
        let mut f = File::create(&tmp).map_err(|e| StorageError::io("create", &tmp, e))?;
        f.write_all(bytes)
            .map_err(|e| StorageError::io("write", &tmp, e))?;
        f.sync_all()
            .map_err(|e| StorageError::io("fsync", &tmp, e))?;
    }
    std::fs::rename(&tmp, &dst).map_err(|e| StorageError::io("rename", &dst, e))?;
    sync_dir(dir)
}

/// Removes a file, treating "already gone" as success.
pub(crate) fn remove_file(path: &Path) -> Result<(), StorageError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StorageError::io("remove", path, e)),
    }
}

/// Creates a directory (and parents) if missing.
pub(crate) fn ensure_dir(dir: &Path) -> Result<PathBuf, StorageError> {
    std::fs::create_dir_all(dir).map_err(|e| StorageError::io("create directory", dir, e))?;
    Ok(dir.to_path_buf())
}

/// Parses `<prefix><16 hex digits>` exactly, returning the number.
pub(crate) fn parse_hex_name(name: &str, prefix: &str) -> Option<u64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Lists `(number, path)` of the files in `dir` named `<prefix><16 hex digits>`, sorted.
pub(crate) fn list_hex_files(
    dir: &Path,
    prefix: &str,
) -> Result<Vec<(u64, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).map_err(|e| StorageError::io("read directory", dir, e))?;
    for item in rd {
        let item = item.map_err(|e| StorageError::io("read directory", dir, e))?;
        let name = item.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = parse_hex_name(name, prefix) {
            out.push((n, item.path()));
        }
    }
    out.sort();
    Ok(out)
}
