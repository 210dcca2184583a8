//! [`MemSnapshotStore`]: snapshots in memory, same envelope, for tests and the simulator.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use bytes::Bytes;
use parking_lot::Mutex;

use super::envelope::{open_body, verify, EnvelopeWriter, HEADER_BYTES, TRAILER_BYTES};
use super::{
    zxids_to_remove, OpenedSnapshot, SkippedSnapshot, SnapshotInfo, SnapshotStore, SnapshotWriter,
};
use crate::error::MEMORY_FILE;
use crate::StorageError;

/// Snapshots in memory (whole envelopes, so damage can be injected and detected).
/// Clones share the same snapshots.
#[derive(Debug, Clone, Default)]
pub struct MemSnapshotStore {
    snaps: Arc<Mutex<BTreeMap<u64, Bytes>>>,
}

impl MemSnapshotStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Flips one bit of the stored envelope of `zxid` (byte offset into the envelope,
    /// header included). Returns false if there is no such snapshot or byte.
    pub fn flip_bit(&self, zxid: u64, byte: usize, bit: u8) -> bool {
        let mut snaps = self.snaps.lock();
        let Some(bytes) = snaps.get_mut(&zxid) else {
            return false;
        };
        let mut v = bytes.to_vec();
        let Some(b) = v.get_mut(byte) else {
            return false;
        };
        *b ^= 1 << (bit % 8);
        *bytes = Bytes::from(v);
        true
    }

    fn check(&self, zxid: u64, bytes: &Bytes) -> Result<(SnapshotInfo, u32), StorageError> {
        let len = bytes.len() as u64;
        let (got, crc) = verify(bytes.as_ref(), len)
            .map_err(|(offset, reason)| StorageError::corrupt(MEMORY_FILE, offset, reason))?;
        if got != zxid {
            return Err(StorageError::corrupt(
                MEMORY_FILE,
                8,
                "snapshot zxid mismatch",
            ));
        }
        Ok((
            SnapshotInfo {
                zxid,
                size_bytes: len - HEADER_BYTES - TRAILER_BYTES,
            },
            crc,
        ))
    }
}

struct MemWriter {
    env: Option<EnvelopeWriter<Vec<u8>>>,
    zxid: u64,
    snaps: Arc<Mutex<BTreeMap<u64, Bytes>>>,
}

impl Write for MemWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.env.as_mut() {
            Some(env) => env.write(buf),
            None => Err(std::io::Error::other("snapshot writer already finished")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl SnapshotWriter for MemWriter {
    fn finish(mut self: Box<Self>) -> Result<SnapshotInfo, StorageError> {
        let Some(env) = self.env.take() else {
            return Err(StorageError::Poisoned);
        };
        let (bytes, size_bytes) = env
            .finish()
            .map_err(|e| StorageError::io("write snapshot", MEMORY_FILE, e))?;
        self.snaps.lock().insert(self.zxid, Bytes::from(bytes));
        Ok(SnapshotInfo {
            zxid: self.zxid,
            size_bytes,
        })
    }
}

impl SnapshotStore for MemSnapshotStore {
    fn begin(&self, zxid: u64) -> Result<Box<dyn SnapshotWriter>, StorageError> {
        let env = EnvelopeWriter::start(Vec::new(), zxid)
            .map_err(|e| StorageError::io("write snapshot", MEMORY_FILE, e))?;
        Ok(Box::new(MemWriter {
            env: Some(env),
            zxid,
            snaps: self.snaps.clone(),
        }))
    }

    fn list(&self) -> Result<Vec<SnapshotInfo>, StorageError> {
        Ok(self
            .snaps
            .lock()
            .iter()
            .rev()
            .map(|(z, b)| SnapshotInfo {
                zxid: *z,
                size_bytes: (b.len() as u64).saturating_sub(HEADER_BYTES + TRAILER_BYTES),
            })
            .collect())
    }

    fn open_newest_valid(&self) -> Result<Option<OpenedSnapshot>, StorageError> {
        let all: Vec<(u64, Bytes)> = self
            .snaps
            .lock()
            .iter()
            .rev()
            .map(|(z, b)| (*z, b.clone()))
            .collect();
        let mut skipped = Vec::new();
        for (zxid, bytes) in all {
            match self.check(zxid, &bytes) {
                Ok((info, crc)) => {
                    let len = bytes.len() as u64;
                    let body = open_body(std::io::Cursor::new(bytes), len, crc).map_err(
                        |(offset, reason)| StorageError::corrupt(MEMORY_FILE, offset, reason),
                    )?;
                    return Ok(Some(OpenedSnapshot {
                        info,
                        reader: Box::new(body),
                        skipped,
                    }));
                }
                Err(error) => skipped.push(SkippedSnapshot { zxid, error }),
            }
        }
        Ok(None)
    }

    fn retain_newest(&self, n: usize) -> Result<Vec<u64>, StorageError> {
        let mut snaps = self.snaps.lock();
        let zxids: Vec<u64> = snaps.keys().rev().copied().collect();
        let remove = zxids_to_remove(&zxids, n, |z| {
            snaps.get(&z).is_some_and(|b| self.check(z, b).is_ok())
        });
        for z in &remove {
            snaps.remove(z);
        }
        Ok(remove)
    }
}
