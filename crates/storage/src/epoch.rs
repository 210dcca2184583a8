//! Durable protocol state: ZAB's `accepted_epoch` and `current_epoch`.

use std::path::{Path, PathBuf};

use crate::fsutil::{ensure_dir, remove_file, write_atomic};
use crate::StorageError;

/// The two epochs ZAB must keep across restarts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Epochs {
    /// The last epoch this server accepted in a NEWEPOCH/LEADERINFO (sent ACKEPOCH for).
    pub accepted_epoch: u32,
    /// The epoch of the last NEWLEADER this server acknowledged.
    pub current_epoch: u32,
}

/// Durable storage of [`Epochs`].
///
/// # To ensure correctness
/// - `save` returns only once the new value is durable, and a crash at any point leaves
///   either the old or the new value (never a mix, never nothing). The caller acts on
///   the epochs (sends ACKEPOCH, ACKs NEWLEADER) only after `save` returned `Ok`.
/// - Epochs never go backwards: `save` rejects a value with either epoch below the
///   stored one ([`StorageError::EpochRegression`]) and `current_epoch` above
///   `accepted_epoch` is allowed only as ZAB allows it (it is not checked here).
pub trait EpochStore: Send {
    /// The stored epochs ((0, 0) for a new store).
    fn epochs(&self) -> Epochs;
    /// Durably replaces the stored epochs.
    fn save(&mut self, epochs: Epochs) -> Result<(), StorageError>;
}

fn check_monotonic(old: Epochs, new: Epochs) -> Result<(), StorageError> {
    if new.accepted_epoch < old.accepted_epoch {
        return Err(StorageError::EpochRegression {
            what: "accepted_epoch",
            old: old.accepted_epoch,
            new: new.accepted_epoch,
        });
    }
    if new.current_epoch < old.current_epoch {
        return Err(StorageError::EpochRegression {
            what: "current_epoch",
            old: old.current_epoch,
            new: new.current_epoch,
        });
    }
    Ok(())
}

/// An in-memory [`EpochStore`] with an injectable save failure.
#[derive(Debug, Default, Clone)]
pub struct MemEpochStore {
    epochs: Epochs,
    fail_next_save: bool,
}

impl MemEpochStore {
    /// A store holding (0, 0).
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `save` fail with [`StorageError::Injected`], storing nothing.
    pub fn fail_next_save(&mut self) {
        self.fail_next_save = true;
    }
}

impl EpochStore for MemEpochStore {
    fn epochs(&self) -> Epochs {
        self.epochs
    }

    fn save(&mut self, epochs: Epochs) -> Result<(), StorageError> {
        check_monotonic(self.epochs, epochs)?;
        if std::mem::take(&mut self.fail_next_save) {
            return Err(StorageError::Injected { what: "epoch save" });
        }
        self.epochs = epochs;
        Ok(())
    }
}

const EPOCH_FILE: &str = "epochs";
const EPOCH_MAGIC: [u8; 8] = *b"ENSEPO01";
const EPOCH_FILE_BYTES: usize = 20;

/// A file [`EpochStore`]: one 20-byte file `epochs` (magic, both epochs, CRC32C),
/// replaced atomically (temp file, fsync, rename, fsync the directory).
#[derive(Debug)]
pub struct FileEpochStore {
    dir: PathBuf,
    epochs: Epochs,
}

impl FileEpochStore {
    /// Opens the store in `dir` (created if missing). A missing file reads as (0, 0); a
    /// damaged one is [`StorageError::Corrupt`]. A leftover temp file from a crash
    /// during `save` is removed (the rename never happened, so the old value stands).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StorageError> {
        let dir = ensure_dir(dir.as_ref())?;
        remove_file(&dir.join(format!("{EPOCH_FILE}.tmp")))?;
        let path = dir.join(EPOCH_FILE);
        let epochs = match std::fs::read(&path) {
            Ok(bytes) => {
                decode(&bytes).map_err(|reason| StorageError::corrupt(&path, 0, reason))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Epochs::default(),
            Err(e) => return Err(StorageError::io("read", &path, e)),
        };
        Ok(FileEpochStore { dir, epochs })
    }

    /// The path of the epoch file.
    pub fn path(&self) -> PathBuf {
        self.dir.join(EPOCH_FILE)
    }
}

fn encode(e: Epochs) -> [u8; EPOCH_FILE_BYTES] {
    let mut out = [0u8; EPOCH_FILE_BYTES];
    out[..8].copy_from_slice(&EPOCH_MAGIC);
    out[8..12].copy_from_slice(&e.accepted_epoch.to_le_bytes());
    out[12..16].copy_from_slice(&e.current_epoch.to_le_bytes());
    let crc = crc32c::crc32c(&out[..16]);
    out[16..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<Epochs, &'static str> {
    if bytes.len() != EPOCH_FILE_BYTES {
        return Err("epoch file has the wrong size");
    }
    if bytes[..8] != EPOCH_MAGIC {
        return Err("bad epoch file magic");
    }
    let word =
        |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if word(16) != crc32c::crc32c(&bytes[..16]) {
        return Err("epoch file checksum mismatch");
    }
    Ok(Epochs {
        accepted_epoch: word(8),
        current_epoch: word(12),
    })
}

impl EpochStore for FileEpochStore {
    fn epochs(&self) -> Epochs {
        self.epochs
    }

    fn save(&mut self, epochs: Epochs) -> Result<(), StorageError> {
        check_monotonic(self.epochs, epochs)?;
        write_atomic(&self.dir, EPOCH_FILE, &encode(epochs))?;
        self.epochs = epochs;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn check_store(store: &mut dyn EpochStore) {
        assert_eq!(store.epochs(), Epochs::default());
        let e = Epochs {
            accepted_epoch: 3,
            current_epoch: 2,
        };
        store.save(e).unwrap();
        assert_eq!(store.epochs(), e);
        let back = Epochs {
            accepted_epoch: 2,
            current_epoch: 2,
        };
        assert!(matches!(
            store.save(back),
            Err(StorageError::EpochRegression {
                what: "accepted_epoch",
                ..
            })
        ));
        assert_eq!(store.epochs(), e);
    }

    #[test]
    fn mem_and_file_stores_behave_alike() {
        check_store(&mut MemEpochStore::new());
        let dir = tempfile::tempdir().unwrap();
        check_store(&mut FileEpochStore::open(dir.path()).unwrap());
    }

    #[test]
    fn file_store_survives_reopen_and_ignores_temp_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let e = Epochs {
            accepted_epoch: 7,
            current_epoch: 7,
        };
        FileEpochStore::open(dir.path()).unwrap().save(e).unwrap();
        std::fs::write(dir.path().join("epochs.tmp"), b"half-written").unwrap();
        let store = FileEpochStore::open(dir.path()).unwrap();
        assert_eq!(store.epochs(), e);
        assert!(!dir.path().join("epochs.tmp").exists());
    }

    #[test]
    fn damaged_epoch_file_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = FileEpochStore::open(dir.path()).unwrap();
        s.save(Epochs {
            accepted_epoch: 1,
            current_epoch: 1,
        })
        .unwrap();
        let path = s.path();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[9] ^= 0x10;
        std::fs::write(&path, bytes).unwrap();
        assert!(matches!(
            FileEpochStore::open(dir.path()),
            Err(StorageError::Corrupt { offset: 0, .. })
        ));
    }

    #[test]
    fn injected_save_failure_keeps_old_value() {
        let mut s = MemEpochStore::new();
        s.fail_next_save();
        let e = Epochs {
            accepted_epoch: 1,
            current_epoch: 0,
        };
        assert!(s.save(e).is_err());
        assert_eq!(s.epochs(), Epochs::default());
        s.save(e).unwrap();
        assert_eq!(s.epochs(), e);
    }
}
