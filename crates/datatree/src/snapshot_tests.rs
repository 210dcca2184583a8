//! Unit tests of the snapshot format (private writer and reader items).
#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;

#[test]
fn empty_tree_round_trips() {
    let t = DataTree::new();
    let b = t.to_bytes();
    let u = DataTree::deserialize(&b[..]).unwrap();
    assert_eq!(u.digest(), t.digest());
    assert_eq!(u.to_bytes(), b);
}

#[test]
fn every_truncation_and_bit_flip_is_rejected() {
    let t = DataTree::new();
    let b = t.to_bytes();
    for cut in 0..b.len() {
        assert!(DataTree::deserialize(&b[..cut]).is_err(), "cut at {cut}");
    }
    for byte in 0..b.len() {
        for bit in 0..8 {
            let mut c = b.clone();
            c[byte] ^= 1 << bit;
            assert!(DataTree::deserialize(&c[..]).is_err(), "flip {byte}:{bit}");
        }
    }
}

/// A snapshot of `t` written record by record, with node `bad_path` given ACL
/// list `bad_acl`; returns the bytes and the offset where the trailer starts.
fn snapshot_with_acl(t: &DataTree, bad_path: &str, bad_acl: &Arc<[Acl]>) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut w = CrcWriter::new(&mut out);
    let mut rw = RecordWriter::new();
    RecordWriter::header(&mut w, 0).unwrap();
    for idx in t.preorder() {
        let n = t.node(idx).unwrap();
        let acl = t.acls.get(n.acl());
        let mut r = t.ref_of(idx, n, &acl);
        if n.path() == bad_path {
            r.acl = bad_acl;
            r.acl_cache_ix = None;
        }
        rw.record(&mut w, r).unwrap();
    }
    let trailer_at = w.written() as usize;
    rw.trailer(&mut w, &[], t.digest()).unwrap();
    (out, trailer_at)
}

#[test]
fn acl_references_are_checked_on_load() {
    let t = DataTree::new();
    let open: Arc<[Acl]> = Arc::from(Acl::open_unsafe());
    // The writer itself, with every node's own list, loads back.
    let (good, trailer_at) = snapshot_with_acl(&t, "", &open);
    assert_eq!(
        DataTree::deserialize(&good[..]).unwrap().digest(),
        t.digest()
    );
    // An empty list is refused, with the node's path.
    let (bad, _) = snapshot_with_acl(&t, "/zookeeper", &Arc::from(Vec::new()));
    let err = DataTree::deserialize(&bad[..]).unwrap_err().to_string();
    assert!(err.contains("empty ACL on /zookeeper"), "{err}");
    // So is a reference past the list table, even with a valid CRC.
    let mut out_of_range = good.clone();
    out_of_range[trailer_at - 4..trailer_at].copy_from_slice(&99u32.to_le_bytes());
    let end = out_of_range.len();
    let crc = crc32c::crc32c(&out_of_range[..end - 4]);
    out_of_range[end - 4..].copy_from_slice(&crc.to_le_bytes());
    let err = DataTree::deserialize(&out_of_range[..])
        .unwrap_err()
        .to_string();
    assert!(err.contains("ACL reference out of range"), "{err}");
}

#[test]
fn shared_acl_lists_keep_their_reference_counts() {
    // 50 nodes share one list and 1 has another: after loading, deleting all but
    // one of the 50 leaves the shared list interned, and the tree still equals a
    // tree built directly.
    fn apply(t: &mut DataTree, zxid: i64, op: crate::txn::TxnOp) {
        t.apply(&crate::txn::Txn {
            zxid,
            time_ms: zxid,
            op,
        })
        .unwrap();
    }
    let create = |path: String, acl: Vec<Acl>, parent_creates: i32| {
        crate::txn::TxnOp::Create(crate::txn::CreateTxn {
            path,
            data: bytes::Bytes::from_static(b"d"),
            acl,
            kind: NodeKind::Persistent,
            owner: SessionId(0),
            ttl_ms: 0,
            parent_creates,
        })
    };
    let mut t = DataTree::new();
    for i in 0..50 {
        let op = create(format!("/n{i}"), Acl::open_unsafe(), i + 1);
        apply(&mut t, i64::from(i) + 1, op);
    }
    apply(&mut t, 51, create("/r".into(), Acl::read_unsafe(), 51));
    let mut back = DataTree::deserialize(&t.to_bytes()[..]).unwrap();
    assert_eq!(back.acl_count(), t.acl_count());
    for i in 1..50 {
        let op = crate::txn::TxnOp::Delete {
            path: format!("/n{i}"),
        };
        apply(&mut t, 100 + i64::from(i), op.clone());
        apply(&mut back, 100 + i64::from(i), op);
    }
    assert_eq!(back.acl("/n0").unwrap().0, Acl::open_unsafe());
    assert_eq!(back.acl_count(), t.acl_count());
    assert_eq!(back.to_bytes(), t.to_bytes());
}

#[test]
fn incremental_snapshot_of_quiet_tree_equals_one_shot() {
    let mut t = DataTree::new();
    let mut out = Vec::new();
    t.begin_snapshot(&mut out).unwrap();
    assert_eq!(
        t.begin_snapshot(&mut Vec::new()),
        Err(SnapshotStateError::AlreadyRunning)
    );
    while t.snapshot_step(1, &mut out).unwrap() == SnapshotProgress::Continue {}
    let back = DataTree::deserialize(&out[..]).unwrap();
    assert_eq!(back.to_bytes(), t.to_bytes());
    assert_eq!(
        t.snapshot_step(1, &mut out),
        Err(SnapshotStateError::NotRunning)
    );
}
