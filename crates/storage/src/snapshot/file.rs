//! [`FileSnapshotStore`]: snapshots as files `snapshot.<zxid as 16 hex digits>`.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::envelope::{open_body, verify, EnvelopeWriter, HEADER_BYTES, TRAILER_BYTES};
use super::{
    zxids_to_remove, OpenedSnapshot, SkippedSnapshot, SnapshotInfo, SnapshotStore, SnapshotWriter,
};
use crate::fsutil::{ensure_dir, list_hex_files, remove_file, sync_dir};
use crate::StorageError;

const PREFIX: &str = "snapshot.";

/// Snapshots in a directory. Each is written to `snapshot.<hex>.tmp`, fsynced, renamed
/// to `snapshot.<hex>` and the directory fsynced.
#[derive(Debug, Clone)]
pub struct FileSnapshotStore {
    dir: PathBuf,
}

impl FileSnapshotStore {
    /// Opens the store in `dir` (created if missing), removing temp files left by a
    /// crash during a snapshot.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let dir = ensure_dir(dir.as_ref())?;
        let rd =
            std::fs::read_dir(&dir).map_err(|e| StorageError::io("read directory", &dir, e))?;
        for item in rd {
            let item = item.map_err(|e| StorageError::io("read directory", &dir, e))?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(PREFIX) && name.ends_with(".tmp") {
                remove_file(&item.path())?;
            }
        }
        Ok(FileSnapshotStore { dir })
    }

    /// The path of the snapshot for `zxid`.
    pub fn path_of(&self, zxid: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{zxid:016x}"))
    }

    /// Verifies one snapshot file; returns its info and body CRC.
    fn check(&self, zxid: u64) -> Result<(SnapshotInfo, u32, u64), StorageError> {
        let path = self.path_of(zxid);
        let file = File::open(&path).map_err(|e| StorageError::io("open snapshot", &path, e))?;
        let len = file
            .metadata()
            .map_err(|e| StorageError::io("stat snapshot", &path, e))?
            .len();
        let (got, crc) = verify(BufReader::with_capacity(1 << 16, file), len)
            .map_err(|(offset, reason)| StorageError::corrupt(&path, offset, reason))?;
        if got != zxid {
            return Err(StorageError::corrupt(
                &path,
                8,
                format!("snapshot header says zxid {got:#x}, its name {zxid:#x}"),
            ));
        }
        let info = SnapshotInfo {
            zxid,
            size_bytes: len - HEADER_BYTES - TRAILER_BYTES,
        };
        Ok((info, crc, len))
    }
}

/// Bytes a snapshot may write before they are pushed to disk: bounding the dirty
/// pages keeps a concurrent log fsync from waiting behind a whole snapshot's write-back
/// (a 1M-znode snapshot is ~200 MB).
const SNAPSHOT_SYNC_EVERY_BYTES: u64 = 4 << 20;

struct FileSnapshotWriter {
    env: Option<EnvelopeWriter<BufWriter<File>>>,
    /// Bytes written since the last part-way `sync_data`.
    unsynced: u64,
    tmp: PathBuf,
    dst: PathBuf,
    dir: PathBuf,
    zxid: u64,
}

impl Write for FileSnapshotWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(env) = self.env.as_mut() else {
            return Err(std::io::Error::other("snapshot writer already finished"));
        };
        let n = env.write(buf)?;
        self.unsynced += n as u64;
        if self.unsynced >= SNAPSHOT_SYNC_EVERY_BYTES {
            self.unsynced = 0;
            env.flush()?;
            env.inner_mut().get_ref().sync_data()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.env.as_mut() {
            Some(env) => env.flush(),
            None => Ok(()),
        }
    }
}

impl SnapshotWriter for FileSnapshotWriter {
    fn finish(mut self: Box<Self>) -> Result<SnapshotInfo, StorageError> {
        let Some(env) = self.env.take() else {
            return Err(StorageError::Poisoned);
        };
        let tmp = self.tmp.clone();
        let (buf, size_bytes) = env
            .finish()
            .map_err(|e| StorageError::io("write snapshot", &tmp, e))?;
        let file = buf
            .into_inner()
            .map_err(|e| StorageError::io("write snapshot", &tmp, e.into_error()))?;
        file.sync_all()
            .map_err(|e| StorageError::io("fsync snapshot", &tmp, e))?;
        drop(file);
        std::fs::rename(&tmp, &self.dst)
            .map_err(|e| StorageError::io("rename snapshot", &self.dst, e))?;
        sync_dir(&self.dir)?;
        Ok(SnapshotInfo {
            zxid: self.zxid,
            size_bytes,
        })
    }
}

impl Drop for FileSnapshotWriter {
    fn drop(&mut self) {
        if self.env.take().is_some() {
            // Abandoned: the temp file is garbage. Best effort; `open` cleans up too.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

impl SnapshotStore for FileSnapshotStore {
    fn begin(&self, zxid: u64) -> Result<Box<dyn SnapshotWriter>, StorageError> {
        let dst = self.path_of(zxid);
        let tmp = self.dir.join(format!("{PREFIX}{zxid:016x}.tmp"));
        let file = File::create(&tmp).map_err(|e| StorageError::io("create snapshot", &tmp, e))?;
        let env = EnvelopeWriter::start(BufWriter::with_capacity(1 << 20, file), zxid)
            .map_err(|e| StorageError::io("write snapshot", &tmp, e))?;
        Ok(Box::new(FileSnapshotWriter {
            env: Some(env),
            unsynced: 0,
            tmp,
            dst,
            dir: self.dir.clone(),
            zxid,
        }))
    }

    fn list(&self) -> Result<Vec<SnapshotInfo>, StorageError> {
        let mut out = Vec::new();
        for (zxid, path) in list_hex_files(&self.dir, PREFIX)?.into_iter().rev() {
            let len = std::fs::metadata(&path)
                .map_err(|e| StorageError::io("stat snapshot", &path, e))?
                .len();
            out.push(SnapshotInfo {
                zxid,
                size_bytes: len.saturating_sub(HEADER_BYTES + TRAILER_BYTES),
            });
        }
        Ok(out)
    }

    fn open_newest_valid(&self) -> Result<Option<OpenedSnapshot>, StorageError> {
        let mut skipped = Vec::new();
        for info in self.list()? {
            match self.check(info.zxid) {
                Ok((info, crc, len)) => {
                    let path = self.path_of(info.zxid);
                    let file = File::open(&path)
                        .map_err(|e| StorageError::io("open snapshot", &path, e))?;
                    let body = open_body(BufReader::with_capacity(1 << 16, file), len, crc)
                        .map_err(|(offset, reason)| StorageError::corrupt(&path, offset, reason))?;
                    return Ok(Some(OpenedSnapshot {
                        info,
                        reader: Box::new(body),
                        skipped,
                    }));
                }
                Err(error) => {
                    tracing::warn!(zxid = info.zxid, %error, "skipping invalid snapshot");
                    skipped.push(SkippedSnapshot {
                        zxid: info.zxid,
                        error,
                    });
                }
            }
        }
        Ok(None)
    }

    fn retain_newest(&self, n: usize) -> Result<Vec<u64>, StorageError> {
        let zxids: Vec<u64> = self.list()?.iter().map(|i| i.zxid).collect();
        let remove = zxids_to_remove(&zxids, n, |z| self.check(z).is_ok());
        for z in &remove {
            remove_file(&self.path_of(*z))?;
        }
        if !remove.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(remove)
    }
}
