//! One segment file of a [`super::FileLog`].

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::frame::{parse_record, Parsed, SegmentHeader, SEGMENT_HEADER_BYTES};
use crate::{LogEntry, StorageError};

/// Zeros written per call when preallocating.
const ZERO_CHUNK_BYTES: usize = 256 << 10;

/// The zeros preallocation writes: a static in `.bss`, so neither an allocation nor a
/// memset per preallocation step (a fresh zeroed 1 MiB buffer per 256 KiB step was 9 %
/// of a log writer thread's time with fsync on).
static ZEROS: [u8; ZERO_CHUNK_BYTES] = [0; ZERO_CHUNK_BYTES];

/// The file name of the segment whose first zxid is `zxid`.
pub(crate) fn segment_name(zxid: u64) -> String {
    format!("log.{zxid:016x}")
}

/// An open segment: its header, an index of its records, and write positions.
#[derive(Debug)]
pub(crate) struct Segment {
    pub path: PathBuf,
    pub file: Arc<File>,
    pub header: SegmentHeader,
    /// `(zxid, offset of the record header)` for every record, in order.
    pub index: Vec<(u64, u64)>,
    /// End of the records handed to the OS (the next write goes here).
    pub written: u64,
    /// Current file length (preallocated zeros beyond `written`).
    pub allocated: u64,
}

impl Segment {
    /// Creates a new, empty segment durably: the header is written to a temp file,
    /// fsynced, and renamed into place, so a segment file never has a torn header.
    /// The caller fsyncs the directory.
    pub fn create(dir: &Path, header: SegmentHeader) -> Result<Segment, StorageError> {
        let path = dir.join(segment_name(header.name_zxid));
        let tmp = dir.join(format!("{}.tmp", segment_name(header.name_zxid)));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| StorageError::io("create segment", &tmp, e))?;
        file.write_all_at(&header.encode(), 0)
            .map_err(|e| StorageError::io("write segment header", &tmp, e))?;
        file.sync_all()
            .map_err(|e| StorageError::io("fsync segment", &tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| StorageError::io("rename segment", &path, e))?;
        Ok(Segment {
            path,
            file: Arc::new(file),
            header,
            index: Vec::new(),
            written: SEGMENT_HEADER_BYTES as u64,
            allocated: SEGMENT_HEADER_BYTES as u64,
        })
    }

    /// The last zxid in this segment, or its `prev_zxid` if it is empty.
    pub fn last_or_prev(&self) -> u64 {
        self.index.last().map_or(self.header.prev_zxid, |r| r.0)
    }

    /// Writes `bytes` at `written`, preallocating zeros in `prealloc_bytes` steps first.
    pub fn write(&mut self, bytes: &[u8], prealloc_bytes: u64) -> Result<(), StorageError> {
        let end = self.written + bytes.len() as u64;
        if end > self.allocated && prealloc_bytes > 0 {
            let target = end.div_ceil(prealloc_bytes) * prealloc_bytes;
            self.zero_fill(self.allocated, target)?;
            self.allocated = target;
        }
        self.file
            .write_all_at(bytes, self.written)
            .map_err(|e| StorageError::io("write", &self.path, e))?;
        self.written = end;
        self.allocated = self.allocated.max(end);
        Ok(())
    }

    fn zero_fill(&self, from: u64, to: u64) -> Result<(), StorageError> {
        let mut at = from;
        while at < to {
            let n = usize::try_from(to - at).map_or(ZERO_CHUNK_BYTES, |n| n.min(ZERO_CHUNK_BYTES));
            self.file
                .write_all_at(&ZEROS[..n], at)
                .map_err(|e| StorageError::io("preallocate", &self.path, e))?;
            at += n as u64;
        }
        Ok(())
    }

    /// Cuts the segment to `end` durably, then (with `keep_allocation`) restores the
    /// preallocation with fresh zeros. The shrink is made durable first: it is one
    /// journaled metadata change, so after a power loss the cut-off records can never
    /// reappear (a zero-fill that was only partly written could otherwise leave old,
    /// valid records behind zeros).
    pub fn cut(&mut self, end: u64, keep_allocation: bool) -> Result<(), StorageError> {
        let map = |e| StorageError::io("truncate segment", &self.path, e);
        self.file.set_len(end).map_err(map)?;
        self.sync()?;
        self.written = end;
        self.index.retain(|r| r.1 < end);
        if keep_allocation && self.allocated > end {
            self.zero_fill(end, self.allocated)?;
            self.sync()?;
        } else {
            self.allocated = end;
        }
        Ok(())
    }

    /// Fsyncs the segment's data.
    pub fn sync(&self) -> Result<(), StorageError> {
        self.file
            .sync_data()
            .map_err(|e| StorageError::io("fsync", &self.path, e))
    }

    /// Reads and checks the records `index[from..to]`, which must all be written.
    pub fn read(
        &self,
        from: usize,
        to: usize,
        max_payload: usize,
    ) -> Result<Vec<LogEntry>, StorageError> {
        if from >= to {
            return Ok(Vec::new());
        }
        let start = self.index[from].1;
        let end = self.index.get(to).map_or(self.written, |r| r.1);
        let len = usize::try_from(end - start)
            .map_err(|_| StorageError::corrupt(&self.path, start, "range too large"))?;
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(|e| StorageError::io("read", &self.path, e))?;
        let buf = bytes::Bytes::from(buf);
        let mut out = Vec::with_capacity(to - from);
        let mut at = 0usize;
        for &(zxid, offset) in &self.index[from..to] {
            match parse_record(&buf[at..], max_payload) {
                Parsed::Record {
                    zxid: got,
                    payload_start,
                    size,
                } if got == zxid => {
                    out.push(LogEntry {
                        zxid,
                        payload: buf.slice(at + payload_start..at + size),
                    });
                    at += size;
                }
                Parsed::Bad(reason) => {
                    return Err(StorageError::corrupt(&self.path, offset, reason))
                }
                _ => {
                    return Err(StorageError::corrupt(
                        &self.path,
                        offset,
                        "record changed on disk since it was indexed",
                    ))
                }
            }
        }
        Ok(out)
    }
}
