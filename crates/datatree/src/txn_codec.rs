//! Binary encoding of [`Txn`]s for the replicated log.
//!
//! Layout: format version `u8`, zxid `i64`, time `i64`, then the op: a tag byte and its
//! fields (strings and byte strings length-prefixed and bounded). A multi holds at most
//! [`MULTI_OPS_MAX`] ops and cannot nest. Decoding never panics and never allocates more
//! than the bounds allow; trailing bytes are an error. The format carries no checksum of
//! its own: the log record and the snapshot that hold it do.

use bytes::Bytes;

use crate::error::DecodeError;
use crate::event::SessionId;
use crate::mode::NodeKind;
use crate::quota::Quota;
use crate::txn::{CreateTxn, SetDataRef, Txn, TxnOp};
use crate::wire::{
    read_acl, write_acl, BufSink, SliceReader, WireRead, WireWrite, DATA_LEN_MAX, PATH_LEN_MAX,
};

const TXN_FORMAT: u8 = 1;
/// Most ops in one encoded multi.
pub const MULTI_OPS_MAX: u32 = 64 * 1024;
/// Most paths in one encoded closeSession.
const CLOSE_PATHS_MAX: u32 = 1 << 20;

const T_CREATE: u8 = 1;
const T_DELETE: u8 = 2;
const T_SET_DATA: u8 = 3;
const T_SET_ACL: u8 = 4;
const T_CHECK: u8 = 5;
const T_CLOSE: u8 = 6;
const T_SET_QUOTA: u8 = 7;
const T_REMOVE_QUOTA: u8 = 8;
const T_MULTI: u8 = 9;

/// Encodes a txn.
pub fn encode(txn: &Txn) -> Bytes {
    let mut out = Vec::with_capacity(size_hint(&txn.op));
    append(txn, &mut out);
    Bytes::from(out)
}

/// Appends the encoding of `txn` to `out` (no intermediate buffer).
pub fn append(txn: &Txn, out: &mut Vec<u8>) {
    out.reserve(size_hint(&txn.op));
    // Writing into a Vec cannot fail.
    let _ = encode_into(&mut BufSink(out), txn);
}

/// About the encoded size of `txn` (exact for the common single ops), for reserving.
pub fn encoded_len_hint(txn: &Txn) -> usize {
    size_hint(&txn.op)
}

/// About the encoded size of `op` (exact for the common single ops), for reserving.
fn size_hint(op: &TxnOp) -> usize {
    let var = match op {
        TxnOp::Create(c) => c.path.len() + c.data.len() + 64 * c.acl.len(),
        TxnOp::SetData { path, data, .. } => path.len() + data.len(),
        TxnOp::Delete { path } | TxnOp::Check { path, .. } | TxnOp::RemoveQuota { path } => {
            path.len()
        }
        TxnOp::SetQuota { path, .. } => path.len(),
        TxnOp::SetAcl { path, acl, .. } => path.len() + 64 * acl.len(),
        TxnOp::CloseSession { paths, .. } => paths.iter().map(|p| p.len() + 4).sum(),
        TxnOp::Multi(ops) => ops.iter().map(size_hint).sum(),
    };
    64 + var
}

fn encode_into<W: WireWrite>(w: &mut W, txn: &Txn) -> std::io::Result<()> {
    w.u8(TXN_FORMAT)?;
    w.i64(txn.zxid)?;
    w.i64(txn.time_ms)?;
    op_into(w, &txn.op)
}

fn op_into<W: WireWrite>(w: &mut W, op: &TxnOp) -> std::io::Result<()> {
    match op {
        TxnOp::Create(c) => {
            w.u8(T_CREATE)?;
            w.bytes(c.path.as_bytes())?;
            w.bytes(&c.data)?;
            write_acl(w, &c.acl)?;
            w.u8(c.kind.tag())?;
            w.i64(c.owner.0)?;
            w.i64(c.ttl_ms)?;
            w.i32(c.parent_creates)
        }
        TxnOp::Delete { path } => {
            w.u8(T_DELETE)?;
            w.bytes(path.as_bytes())
        }
        TxnOp::SetData {
            path,
            data,
            version,
        } => {
            w.u8(T_SET_DATA)?;
            w.bytes(path.as_bytes())?;
            w.bytes(data)?;
            w.i32(*version)
        }
        TxnOp::SetAcl { path, acl, version } => {
            w.u8(T_SET_ACL)?;
            w.bytes(path.as_bytes())?;
            write_acl(w, acl)?;
            w.i32(*version)
        }
        TxnOp::Check { path, version } => {
            w.u8(T_CHECK)?;
            w.bytes(path.as_bytes())?;
            w.i32(*version)
        }
        TxnOp::CloseSession { session, paths } => {
            w.u8(T_CLOSE)?;
            w.i64(session.0)?;
            w.u32(paths.len() as u32)?;
            for p in paths {
                w.bytes(p.as_bytes())?;
            }
            Ok(())
        }
        TxnOp::SetQuota { path, quota } => {
            w.u8(T_SET_QUOTA)?;
            w.bytes(path.as_bytes())?;
            w.i64(quota.count)?;
            w.i64(quota.bytes)
        }
        TxnOp::RemoveQuota { path } => {
            w.u8(T_REMOVE_QUOTA)?;
            w.bytes(path.as_bytes())
        }
        TxnOp::Multi(ops) => {
            w.u8(T_MULTI)?;
            w.u32(ops.len() as u32)?;
            for op in ops {
                op_into(w, op)?;
            }
            Ok(())
        }
    }
}

/// Decodes a txn encoded by [`encode`] (copies the input; see [`decode_shared`]).
pub fn decode(bytes: &[u8]) -> Result<Txn, DecodeError> {
    decode_shared(&Bytes::copy_from_slice(bytes))
}

/// Decodes a txn encoded by [`encode`]; znode data in the result shares `bytes`'
/// buffer instead of being copied.
pub fn decode_shared(bytes: &Bytes) -> Result<Txn, DecodeError> {
    let mut r = SliceReader::new(bytes);
    let (zxid, time_ms) = header(&mut r)?;
    let op = op_from(&mut r, true)?;
    end(&r, bytes)?;
    Ok(Txn { zxid, time_ms, op })
}

/// Reads `bytes` as a single-op setData without allocating (path and data borrow
/// `bytes`), or `Ok(None)` when it encodes any other txn:
/// decode that with [`decode_shared`]. A damaged setData fails as it would there.
pub fn decode_set_data(bytes: &Bytes) -> Result<Option<SetDataRef<'_>>, DecodeError> {
    let mut r = SliceReader::new(bytes);
    let (zxid, time_ms) = header(&mut r)?;
    if r.u8()? != T_SET_DATA {
        return Ok(None);
    }
    let (path, data, version) = set_data_fields(&mut r)?;
    end(&r, bytes)?;
    Ok(Some(SetDataRef {
        zxid,
        time_ms,
        path,
        data,
        version,
    }))
}

/// The format byte, zxid and time.
fn header(r: &mut SliceReader<'_>) -> Result<(i64, i64), DecodeError> {
    let format = r.u8()?;
    if format != TXN_FORMAT {
        return Err(r.corrupt(format!("unknown txn format {format}")));
    }
    Ok((r.i64()?, r.i64()?))
}

/// A setData's fields after its tag (path, data, version), borrowed from the input:
/// the one field list both decoders read.
fn set_data_fields<'a>(r: &mut SliceReader<'a>) -> Result<(&'a str, &'a [u8], i32), DecodeError> {
    Ok((
        r.str_ref(PATH_LEN_MAX, "path")?,
        r.bytes_ref(DATA_LEN_MAX, "data")?,
        r.i32()?,
    ))
}

fn end(r: &SliceReader<'_>, bytes: &Bytes) -> Result<(), DecodeError> {
    if r.offset() != bytes.len() {
        return Err(r.corrupt("trailing bytes after txn".into()));
    }
    Ok(())
}

fn op_from(r: &mut SliceReader<'_>, top: bool) -> Result<TxnOp, DecodeError> {
    let tag = r.u8()?;
    Ok(match tag {
        T_CREATE => {
            let path = r.string(PATH_LEN_MAX, "path")?;
            let data = r.bytes(DATA_LEN_MAX, "data")?;
            let acl = read_acl(r)?;
            let kind =
                NodeKind::from_tag(r.u8()?).ok_or_else(|| r.corrupt("bad node kind".into()))?;
            let owner = SessionId(r.i64()?);
            let ttl_ms = r.i64()?;
            let parent_creates = r.i32()?;
            TxnOp::Create(CreateTxn {
                path,
                data,
                acl,
                kind,
                owner,
                ttl_ms,
                parent_creates,
            })
        }
        T_DELETE => TxnOp::Delete {
            path: r.string(PATH_LEN_MAX, "path")?,
        },
        T_SET_DATA => {
            let (path, data, version) = set_data_fields(r)?;
            TxnOp::SetData {
                path: path.to_owned(),
                data: r.share(data),
                version,
            }
        }
        T_SET_ACL => TxnOp::SetAcl {
            path: r.string(PATH_LEN_MAX, "path")?,
            acl: read_acl(r)?,
            version: r.i32()?,
        },
        T_CHECK => TxnOp::Check {
            path: r.string(PATH_LEN_MAX, "path")?,
            version: r.i32()?,
        },
        T_CLOSE => {
            let session = SessionId(r.i64()?);
            let n = r.u32()?;
            if n > CLOSE_PATHS_MAX {
                return Err(r.corrupt(format!("closeSession with {n} paths")));
            }
            let mut paths = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                paths.push(r.string(PATH_LEN_MAX, "path")?);
            }
            TxnOp::CloseSession { session, paths }
        }
        T_SET_QUOTA => TxnOp::SetQuota {
            path: r.string(PATH_LEN_MAX, "path")?,
            quota: Quota {
                count: r.i64()?,
                bytes: r.i64()?,
            },
        },
        T_REMOVE_QUOTA => TxnOp::RemoveQuota {
            path: r.string(PATH_LEN_MAX, "path")?,
        },
        T_MULTI if top => {
            let n = r.u32()?;
            if n > MULTI_OPS_MAX {
                return Err(r.corrupt(format!("multi with {n} ops")));
            }
            let mut ops = Vec::with_capacity((n as usize).min(1024));
            for _ in 0..n {
                ops.push(op_from(r, false)?);
            }
            TxnOp::Multi(ops)
        }
        other => return Err(r.corrupt(format!("unknown or nested op tag {other}"))),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::error::DecodeError;

    fn sample() -> Txn {
        Txn {
            zxid: 0x1_0000_0007,
            time_ms: 42,
            op: TxnOp::Multi(vec![
                TxnOp::SetData {
                    path: "/a/b".into(),
                    data: Bytes::from_static(b"hello world"),
                    version: 3,
                },
                TxnOp::Delete { path: "/c".into() },
            ]),
        }
    }

    #[test]
    fn shared_decode_round_trips_and_shares_the_buffer() {
        let bytes = encode(&sample());
        let txn = decode_shared(&bytes).unwrap();
        assert_eq!(txn, sample());
        let TxnOp::Multi(ops) = &txn.op else {
            panic!("not a multi")
        };
        let TxnOp::SetData { data, .. } = &ops[0] else {
            panic!("not setData")
        };
        let range = bytes.as_ptr_range();
        assert!(
            range.contains(&data.as_ptr()),
            "data is a slice of the frame"
        );
        // `append` writes the same bytes after whatever the buffer already holds.
        let mut out = b"prefix".to_vec();
        append(&sample(), &mut out);
        assert_eq!(&out[6..], &bytes[..]);
    }

    #[test]
    fn every_truncation_and_trailing_garbage_is_a_typed_error() {
        let bytes = encode(&sample());
        for cut in 0..bytes.len() {
            let r = decode_shared(&bytes.slice(..cut));
            assert!(
                matches!(
                    r,
                    Err(DecodeError::Truncated { .. } | DecodeError::Corrupt { .. })
                ),
                "cut at {cut}: {r:?}"
            );
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(matches!(decode(&long), Err(DecodeError::Corrupt { .. })));
        let mut bad_utf8 = encode(&Txn {
            zxid: 1,
            time_ms: 0,
            op: TxnOp::Delete { path: "/x".into() },
        })
        .to_vec();
        let last = bad_utf8.len() - 1;
        bad_utf8[last] = 0xff;
        assert!(matches!(
            decode(&bad_utf8),
            Err(DecodeError::Corrupt { .. })
        ));
    }

    fn set_data_txn(path: &str) -> Txn {
        Txn {
            zxid: 0x2_0000_0009,
            time_ms: -5,
            op: TxnOp::SetData {
                path: path.into(),
                data: Bytes::from_static(b"value"),
                version: i32::MAX,
            },
        }
    }

    #[test]
    fn set_data_reads_in_place_and_other_ops_are_left_to_the_full_decoder() {
        let txn = set_data_txn("/k/\u{e9}t\u{e9}");
        let bytes = encode(&txn);
        let view = decode_set_data(&bytes).unwrap().expect("a setData");
        assert_eq!(view.to_txn(), txn);
        assert_eq!(view.path, "/k/\u{e9}t\u{e9}");
        let range = bytes.as_ptr_range();
        assert!(
            range.contains(&view.path.as_ptr()),
            "path borrows the input"
        );
        assert!(
            range.contains(&view.data.as_ptr()),
            "data borrows the input"
        );
        // A multi holding a setData, and every other single op, are not read in place.
        for other in [
            sample(),
            Txn {
                zxid: 1,
                time_ms: 0,
                op: TxnOp::Delete { path: "/c".into() },
            },
            Txn {
                zxid: 1,
                time_ms: 0,
                op: TxnOp::Check {
                    path: "/c".into(),
                    version: 1,
                },
            },
        ] {
            assert_eq!(decode_set_data(&encode(&other)).unwrap(), None);
        }
    }

    #[test]
    fn damaged_set_data_fails_in_place_as_in_the_full_decoder() {
        let bytes = encode(&set_data_txn("/a"));
        for cut in 0..bytes.len() {
            let cut = bytes.slice(..cut);
            let r = decode_set_data(&cut);
            assert!(
                matches!(
                    r,
                    Err(DecodeError::Truncated { .. } | DecodeError::Corrupt { .. })
                ),
                "cut at {}: {r:?}",
                cut.len()
            );
            assert!(decode_shared(&cut).is_err());
        }
        let mut long = bytes.to_vec();
        long.push(0);
        let long = Bytes::from(long);
        assert!(matches!(
            decode_set_data(&long),
            Err(DecodeError::Corrupt { .. })
        ));
        // The path "/a" starts after format (1), zxid and time (16), tag (1), length (4).
        let mut bad_utf8 = bytes.to_vec();
        bad_utf8[23] = 0xff;
        let bad_utf8 = Bytes::from(bad_utf8);
        assert!(matches!(
            decode_set_data(&bad_utf8),
            Err(DecodeError::Corrupt { .. })
        ));
        assert!(decode_shared(&bad_utf8).is_err());
        let mut bad_format = bytes.to_vec();
        bad_format[0] = 9;
        assert!(decode_set_data(&Bytes::from(bad_format)).is_err());
    }

    proptest::proptest! {
        /// On any input the in-place read agrees with the full decoder: it never
        /// panics, reads exactly the setData txns the full decoder reads, and what it
        /// reads is what the full decoder returns.
        #[test]
        fn in_place_read_agrees_with_the_full_decoder(
            path in "/[a-z\u{e9}]{0,6}",
            flip in proptest::collection::vec((0usize..64, proptest::prelude::any::<u8>()), 0..3),
            cut in proptest::option::of(0usize..40),
        ) {
            let mut raw = encode(&set_data_txn(&path)).to_vec();
            for (i, b) in flip {
                if let Some(x) = raw.get_mut(i) {
                    *x = b;
                }
            }
            if let Some(cut) = cut {
                raw.truncate(cut);
            }
            let bytes = Bytes::from(raw);
            match (decode_set_data(&bytes), decode_shared(&bytes)) {
                (Ok(Some(view)), full) => proptest::prop_assert_eq!(Ok(view.to_txn()), full),
                (Ok(None), Ok(txn)) => {
                    let set_data = matches!(txn.op, TxnOp::SetData { .. });
                    proptest::prop_assert!(!set_data, "not read in place: {:?}", txn)
                }
                (Ok(None), Err(_)) | (Err(_), Err(_)) => {}
                (Err(e), Ok(txn)) => {
                    proptest::prop_assert!(false, "in place {e:?}, full {txn:?}")
                }
            }
        }
    }
}
