//! Tests shared by the file and memory snapshot stores.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};

use super::*;

fn body(zxid: u64, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u64 ^ zxid) as u8).collect()
}

fn save(store: &dyn SnapshotStore, zxid: u64, len: usize) -> SnapshotInfo {
    let mut w = store.begin(zxid).unwrap();
    // Stream in uneven chunks, as a serializer would.
    for chunk in body(zxid, len).chunks(777) {
        w.write_all(chunk).unwrap();
    }
    w.finish().unwrap()
}

fn read_all(opened: OpenedSnapshot) -> (SnapshotInfo, Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut reader = opened.reader;
    reader.read_to_end(&mut out).unwrap();
    (opened.info, out, opened.skipped.len())
}

fn common_cases(store: &dyn SnapshotStore) {
    assert!(store.open_newest_valid().unwrap().is_none());
    let info = save(store, 10, 5000);
    assert_eq!(
        info,
        SnapshotInfo {
            zxid: 10,
            size_bytes: 5000
        }
    );
    save(store, 20, 0);
    save(store, 30, 100_000);
    let listed: Vec<u64> = store.list().unwrap().iter().map(|i| i.zxid).collect();
    assert_eq!(listed, vec![30, 20, 10]);
    let (info, bytes, skipped) = read_all(store.open_newest_valid().unwrap().unwrap());
    assert_eq!(info.zxid, 30);
    assert_eq!(bytes, body(30, 100_000));
    assert_eq!(skipped, 0);
    // An abandoned writer leaves nothing behind.
    let mut w = store.begin(40).unwrap();
    w.write_all(b"partial").unwrap();
    drop(w);
    assert_eq!(store.list().unwrap().len(), 3);
    assert_eq!(store.retain_newest(2).unwrap(), vec![10]);
    let listed: Vec<u64> = store.list().unwrap().iter().map(|i| i.zxid).collect();
    assert_eq!(listed, vec![30, 20]);
}

#[test]
fn memory_store_cases() {
    common_cases(&MemSnapshotStore::new());
}

#[test]
fn file_store_cases() {
    let dir = tempfile::tempdir().unwrap();
    common_cases(&FileSnapshotStore::open(dir.path()).unwrap());
}

#[test]
fn damaged_newest_snapshot_is_skipped_and_reported() {
    let mem = MemSnapshotStore::new();
    save(&mem, 1, 3000);
    save(&mem, 2, 3000);
    assert!(mem.flip_bit(2, 1000, 3));
    let opened = mem.open_newest_valid().unwrap().unwrap();
    assert_eq!(opened.info.zxid, 1);
    assert_eq!(opened.skipped.len(), 1);
    assert!(opened.skipped[0].error.is_damage());
    // Retention never drops the newest valid snapshot.
    assert_eq!(mem.retain_newest(1).unwrap(), Vec::<u64>::new());

    let dir = tempfile::tempdir().unwrap();
    let store = FileSnapshotStore::open(dir.path()).unwrap();
    save(&store, 1, 3000);
    save(&store, 2, 3000);
    let path = store.path_of(2);
    crate::fault::flip_bit_in_file(&path, 24 + 100, 0).unwrap();
    let (info, bytes, skipped) = read_all(store.open_newest_valid().unwrap().unwrap());
    assert_eq!((info.zxid, skipped), (1, 1));
    assert_eq!(bytes, body(1, 3000));
    assert_eq!(store.retain_newest(1).unwrap(), Vec::<u64>::new());
    // A truncated (incomplete) file is invalid too.
    crate::fault::truncate_file(&store.path_of(1), 500).unwrap();
    assert!(store.open_newest_valid().unwrap().is_none());
}

#[test]
fn file_store_removes_temp_leftovers_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path().join(format!("snapshot.{:016x}.tmp", 5));
    std::fs::write(&tmp, b"crashed mid-write").unwrap();
    let store = FileSnapshotStore::open(dir.path()).unwrap();
    assert!(!tmp.exists());
    assert!(store.list().unwrap().is_empty());
}

#[test]
fn body_reader_detects_change_after_verification() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileSnapshotStore::open(dir.path()).unwrap();
    save(&store, 7, 200_000);
    let opened = store.open_newest_valid().unwrap().unwrap();
    crate::fault::flip_bit_in_file(&store.path_of(7), 24 + 150_000, 4).unwrap();
    let mut reader = opened.reader;
    let mut out = Vec::new();
    let err = reader.read_to_end(&mut out).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
}

#[test]
fn zxids_to_remove_keeps_newest_valid() {
    assert_eq!(zxids_to_remove(&[5, 4, 3, 2], 2, |_| true), vec![3, 2]);
    assert_eq!(zxids_to_remove(&[5, 4, 3, 2], 2, |z| z == 2), vec![3]);
    assert_eq!(zxids_to_remove(&[5, 4], 0, |z| z == 4), vec![5]);
}
