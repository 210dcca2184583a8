//! Recovery of a [`super::FileLog`] directory on open.
//!
//! Rules (issue 3):
//! - A torn final record (in the last segment, with no valid record after it) is
//!   truncated, with a warning.
//! - A bad record anywhere else, a bad record in the last segment that valid records
//!   follow, a segment whose header or order is wrong, or a missing segment between two
//!   others is a [`StorageError::Corrupt`] or [`StorageError::Gap`] naming file and
//!   offset. Nothing is skipped silently.
//! - Every length is checked against the maximum record size and the file size before
//!   anything is read or allocated for it.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::frame::{
    parse_record, Parsed, SegmentHeader, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::fsutil::{list_hex_files, remove_file};
use crate::StorageError;

use super::segment::Segment;

/// What the scan of one segment found.
#[derive(Debug)]
pub(crate) struct Scanned {
    pub header: SegmentHeader,
    pub index: Vec<(u64, u64)>,
    /// End of the valid records.
    pub end: u64,
    /// True when a torn tail was found at `end` and must be cut off.
    pub torn: bool,
    pub file_len: u64,
}

/// Scans one segment file's bytes. `is_last` selects the torn-tail rule.
pub(crate) fn scan_segment(
    path: &Path,
    name_zxid: u64,
    bytes: &[u8],
    is_last: bool,
    max_payload: usize,
) -> Result<Option<Scanned>, StorageError> {
    let file_len = bytes.len() as u64;
    let mut hdr = [0u8; SEGMENT_HEADER_BYTES];
    let header = if bytes.len() < SEGMENT_HEADER_BYTES {
        None
    } else {
        hdr.copy_from_slice(&bytes[..SEGMENT_HEADER_BYTES]);
        SegmentHeader::decode(&hdr).ok()
    };
    let Some(header) = header else {
        // A segment is created and fsynced (header only) before any record goes into
        // it, so a last segment with a torn header holds no records: drop it.
        let rest_zero =
            bytes.len() <= SEGMENT_HEADER_BYTES || all_zero(&bytes[SEGMENT_HEADER_BYTES..]);
        if is_last && rest_zero {
            return Ok(None);
        }
        return Err(StorageError::corrupt(path, 0, "bad segment header"));
    };
    if header.name_zxid != name_zxid {
        return Err(StorageError::corrupt(
            path,
            0,
            format!(
                "header names zxid {:#x}, file name {:#x}",
                header.name_zxid, name_zxid
            ),
        ));
    }
    if header.prev_zxid >= header.name_zxid {
        return Err(StorageError::corrupt(
            path,
            0,
            "segment prev zxid not below its name",
        ));
    }
    let mut index = Vec::new();
    let mut at = SEGMENT_HEADER_BYTES;
    let mut prev = header.prev_zxid;
    loop {
        let bad = match parse_record(&bytes[at..], max_payload) {
            Parsed::Record { zxid, size, .. } => {
                if index.is_empty() && zxid != header.name_zxid {
                    return Err(StorageError::corrupt(
                        path,
                        at as u64,
                        format!("first record {zxid:#x} does not match the segment name"),
                    ));
                }
                if zxid <= prev {
                    return Err(StorageError::corrupt(
                        path,
                        at as u64,
                        format!("record zxid {zxid:#x} out of order after {prev:#x}"),
                    ));
                }
                index.push((zxid, at as u64));
                prev = zxid;
                at += size;
                continue;
            }
            Parsed::End => {
                if all_zero(&bytes[at..]) {
                    return Ok(Some(Scanned {
                        header,
                        index,
                        end: at as u64,
                        torn: false,
                        file_len,
                    }));
                }
                "zeroed record header followed by data"
            }
            Parsed::Bad(reason) => reason,
        };
        if !is_last {
            return Err(StorageError::corrupt(path, at as u64, bad));
        }
        if let Some(later) = find_valid_record(bytes, at + 1, prev, max_payload) {
            return Err(StorageError::corrupt(
                path,
                at as u64,
                format!(
                    "{bad}; a valid record follows at offset {later}, so this is not a torn tail"
                ),
            ));
        }
        tracing::warn!(file = %path.display(), offset = at, reason = bad, "truncating torn log tail");
        return Ok(Some(Scanned {
            header,
            index,
            end: at as u64,
            torn: true,
            file_len,
        }));
    }
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| *b == 0)
}

/// Looks for any valid record with a zxid above `prev` starting at or after `from`.
fn find_valid_record(bytes: &[u8], from: usize, prev: u64, max_payload: usize) -> Option<usize> {
    let last_start = bytes.len().checked_sub(RECORD_HEADER_BYTES)?;
    (from..=last_start).find(|&at| {
        let rest = &bytes[at..];
        // Cheap filters first: zxid above prev and a length that fits.
        let mut z = [0u8; 8];
        z.copy_from_slice(&rest[8..16]);
        let zxid = u64::from_le_bytes(z);
        if zxid <= prev {
            return false;
        }
        matches!(parse_record(rest, max_payload), Parsed::Record { zxid: got, .. } if got > prev)
    })
}

/// The recovered state of a log directory.
#[derive(Debug)]
pub(crate) struct Recovered {
    pub segments: Vec<Segment>,
    pub report: RecoveryReport,
}

/// What [`super::FileLog::open`] repaired. Everything here is also logged with
/// `tracing::warn!`; a Node should surface it to operators.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// A torn final record was cut off: the segment and the offset where it started,
    /// and how many bytes (up to the end of the file) were discarded.
    pub torn_tail: Option<(PathBuf, u64, u64)>,
    /// Segment files removed: a last segment with a torn header, or an empty segment
    /// followed by another.
    pub removed_segments: Vec<PathBuf>,
}

/// Opens and checks every segment in `dir`, repairing a torn tail.
pub(crate) fn recover_dir(dir: &Path, max_payload: usize) -> Result<Recovered, StorageError> {
    remove_temp_segments(dir)?;
    let files = list_hex_files(dir, "log.")?;
    let mut segments: Vec<Segment> = Vec::with_capacity(files.len());
    let mut report = RecoveryReport::default();
    let count = files.len();
    for (i, (name_zxid, path)) in files.into_iter().enumerate() {
        let is_last = i + 1 == count;
        let len = std::fs::metadata(&path)
            .map_err(|e| StorageError::io("stat segment", &path, e))?
            .len();
        if len > super::MAX_SEGMENT_FILE_BYTES {
            // Checked before reading the file into memory.
            return Err(StorageError::corrupt(
                &path,
                0,
                format!("segment file of {len} bytes is larger than any segment this log writes"),
            ));
        }
        let bytes = std::fs::read(&path).map_err(|e| StorageError::io("read segment", &path, e))?;
        let Some(scanned) = scan_segment(&path, name_zxid, &bytes, is_last, max_payload)? else {
            tracing::warn!(file = %path.display(), "removing last segment with a torn header");
            remove_file(&path)?;
            report.removed_segments.push(path);
            continue;
        };
        drop(bytes);
        if scanned.torn {
            report.torn_tail = Some((path.clone(), scanned.end, scanned.file_len - scanned.end));
        }
        if let Some(prev) = segments.last() {
            check_chain(prev.last_or_prev(), &scanned.header, &path)?;
            if prev.index.is_empty() {
                // An empty segment followed by another (a crash while replacing an
                // empty segment): the chain check proved it holds nothing needed.
                let empty = segments.pop().map(|s| s.path);
                if let Some(empty) = empty {
                    remove_file(&empty)?;
                    report.removed_segments.push(empty);
                }
            }
        }
        segments.push(open_scanned(path, scanned)?);
    }
    Ok(Recovered { segments, report })
}

/// Removes `log.<hex>.tmp` files left by a crash while creating a segment, and
/// `log.<hex>.purged` files a purge renamed away but had not deleted yet.
fn remove_temp_segments(dir: &Path) -> Result<(), StorageError> {
    let rd = std::fs::read_dir(dir).map_err(|e| StorageError::io("read directory", dir, e))?;
    for item in rd {
        let item = item.map_err(|e| StorageError::io("read directory", dir, e))?;
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("log.")
            && (name.ends_with(".tmp") || name.ends_with(super::PURGED_SUFFIX))
        {
            remove_file(&item.path())?;
        }
    }
    Ok(())
}

fn check_chain(prev_last: u64, header: &SegmentHeader, path: &PathBuf) -> Result<(), StorageError> {
    if header.prev_zxid == prev_last {
        return Ok(());
    }
    if header.prev_zxid > prev_last {
        return Err(StorageError::Gap {
            file: path.clone(),
            offset: 0,
            required_after: prev_last,
            held_after: header.prev_zxid,
        });
    }
    Err(StorageError::corrupt(
        path,
        0,
        format!(
            "segment continues zxid {:#x} but the previous segment ends at {prev_last:#x}",
            header.prev_zxid
        ),
    ))
}

fn open_scanned(path: PathBuf, scanned: Scanned) -> Result<Segment, StorageError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| StorageError::io("open segment", &path, e))?;
    let mut seg = Segment {
        path,
        file: Arc::new(file),
        header: scanned.header,
        index: scanned.index,
        written: scanned.end,
        allocated: scanned.file_len,
    };
    if scanned.torn {
        seg.cut(scanned.end, true)?;
    }
    Ok(seg)
}
