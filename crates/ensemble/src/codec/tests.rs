#![allow(clippy::unwrap_used, clippy::expect_used)]
use super::*;
use crate::ops::{ConnId, SessionId, Xid};
use bytes::Bytes;
use datatree::{Acl, CreateMode, OpResult, WriteOp};
use proptest::prelude::*;

fn sample_envelope() -> Envelope {
    Envelope {
        origin: 2,
        conn: ConnId(9),
        xid: Xid(4),
        session: SessionId(77),
        check: (5, 123),
        body: Body::Error(Failure::Multi(vec![
            OpResult::Ok,
            OpResult::Error(datatree::Error::NoNode("/a".into())),
            OpResult::Error(datatree::Error::RuntimeInconsistency),
        ])),
    }
}

#[test]
fn envelope_round_trips() {
    let e = sample_envelope();
    assert_eq!(Envelope::decode(e.encode()).unwrap(), e);
    let create = Envelope {
        body: Body::CreateSession { timeout_ms: 4000 },
        ..sample_envelope()
    };
    assert_eq!(Envelope::decode(create.encode()).unwrap(), create);
}

fn set_data_envelope(i: u64, len: usize) -> Envelope {
    Envelope {
        origin: 1,
        conn: ConnId(i),
        xid: Xid(i),
        session: SessionId(5),
        check: (i, i * 7),
        body: Body::Tree(datatree::Txn {
            zxid: i as i64,
            time_ms: 1_000 + i as i64,
            op: datatree::TxnOp::SetData {
                path: format!("/k{i}"),
                data: Bytes::from(vec![i as u8; len]),
                version: -1,
            },
        }),
    }
}

/// The replica's split read of a tree envelope (header, then the txn's encoding)
/// gives back exactly what the whole-envelope decoder does; other bodies are left to
/// that decoder.
#[test]
fn tree_envelopes_split_into_header_and_txn() {
    let e = set_data_envelope(3, 10);
    let bytes = e.encode();
    let Split::Tree(h, txn) = Envelope::decode_split(bytes.clone()).unwrap() else {
        panic!("a tree body")
    };
    assert_eq!(h, e.header());
    assert_eq!(
        h.with_body(Body::Tree(decode_txn_bytes(&txn).unwrap())),
        Envelope::decode(bytes.clone()).unwrap()
    );
    let sd = datatree::txn_codec::decode_set_data(&txn).unwrap().unwrap();
    let Body::Tree(t) = &e.body else {
        unreachable!("a tree body")
    };
    assert_eq!(&sd.to_txn(), t);
    for other in [
        sample_envelope(),
        Envelope {
            body: Body::Noop,
            ..sample_envelope()
        },
    ] {
        assert_eq!(
            Envelope::decode_split(other.encode()).unwrap(),
            Split::Other(other)
        );
    }
    for cut in 0..bytes.len() {
        assert!(
            Envelope::decode_split(bytes.slice(..cut)).is_err(),
            "cut {cut}"
        );
    }
    let mut long = bytes.to_vec();
    long.push(0);
    assert!(Envelope::decode_split(Bytes::from(long)).is_err());
}

/// `Reader::bytes` at and around the end of its input: a string that ends the input
/// takes the reader's handle (the reader is then empty), shorter ones are split off,
/// longer ones are errors.
#[test]
fn reader_bytes_at_the_end_of_the_input() {
    let input = Bytes::from_static(&[0, 0, 0, 2, b'a', b'b', 0, 0, 0, 1, b'c']);
    let mut r = Reader { buf: input.clone() };
    assert_eq!(r.bytes(10).unwrap(), Bytes::from_static(b"ab"));
    assert_eq!(r.bytes(10).unwrap(), Bytes::from_static(b"c"));
    assert!(r.buf.is_empty());
    assert!(r.finish().is_ok());
    let mut r = Reader {
        buf: Bytes::from_static(&[0, 0, 0, 0]),
    };
    assert_eq!(r.bytes(10).unwrap(), Bytes::new());
    assert!(r.finish().is_ok());
    let mut r = Reader {
        buf: Bytes::from_static(&[0, 0, 0, 3, b'a', b'b']),
    };
    assert_eq!(r.bytes(10), Err(CodecError::Truncated));
    let mut r = Reader { buf: input };
    assert!(matches!(
        r.bytes(1),
        Err(CodecError::TooLong { len: 2, max: 1 })
    ));
}

#[test]
fn envelopes_split_from_one_arena_round_trip_and_share_its_buffer() {
    let mut arena = EncodeArena::new();
    // Sizes around and above the chunk size force new buffers mid-sequence.
    let sizes = [
        100,
        100,
        40_000,
        30_000,
        100,
        ARENA_CHUNK_BYTES + 10,
        0,
        100,
    ];
    let envs: Vec<Envelope> = sizes
        .iter()
        .enumerate()
        .map(|(i, n)| set_data_envelope(i as u64, *n))
        .collect();
    let encoded: Vec<Bytes> = envs.iter().map(|e| e.encode_in(&mut arena)).collect();
    for (e, b) in envs.iter().zip(&encoded) {
        assert_eq!(b, &e.encode(), "same bytes as a standalone encoding");
        assert_eq!(&Envelope::decode(b.clone()).unwrap(), e);
    }
    // The first two small envelopes sit next to each other in one buffer.
    let end0 = encoded[0].as_ptr() as usize + encoded[0].len();
    assert_eq!(end0, encoded[1].as_ptr() as usize);
    // Dropping some envelopes leaves the others intact.
    let kept = encoded[4].clone();
    drop(encoded);
    assert_eq!(Envelope::decode(kept).unwrap(), envs[4]);
}

#[test]
fn forward_round_trips() {
    let f = Forward {
        conn: ConnId(1),
        xid: Xid(2),
        session: SessionId(3),
        auth: vec![datatree::Id::new("digest", "bob:abc=")],
        op: ForwardOp::Write(WriteOp::Multi(vec![
            WriteOp::Create {
                path: "/a".into(),
                data: Bytes::from_static(b"x"),
                acl: Acl::open_unsafe(),
                mode: CreateMode::EphemeralSequential,
                ttl_ms: 0,
            },
            WriteOp::Check {
                path: "/a".into(),
                version: -1,
            },
        ])),
    };
    assert_eq!(Forward::decode(f.encode().unwrap()).unwrap(), f);
    let t = Forward {
        op: ForwardOp::Touches(vec![SessionId(1), SessionId(2)]),
        ..f
    };
    assert_eq!(Forward::decode(t.encode().unwrap()).unwrap(), t);
    let q = Forward {
        op: ForwardOp::Write(WriteOp::SetQuota {
            path: "/q".into(),
            quota: datatree::Quota {
                count: 3,
                bytes: -1,
            },
        }),
        ..t.clone()
    };
    assert_eq!(Forward::decode(q.encode().unwrap()).unwrap(), q);
}

#[test]
fn state_round_trips() {
    let tree = datatree::DataTree::new();
    let bytes = encode_state(&[(SessionId(5), 3000)], &tree);
    let (s, t) = decode_state(&bytes).unwrap();
    assert_eq!(s, vec![(SessionId(5), 3000)]);
    assert_eq!(t.digest(), tree.digest());
    assert!(decode_state(&bytes[..bytes.len() - 3]).is_err());
    assert!(decode_state(&bytes[..10]).is_err());
}

#[test]
fn batches_split_back_into_their_messages() {
    use zab_core::{Entry, Message, Zxid};
    let z = |c| Zxid::new(1, c);
    let commit = Message::Commit {
        epoch: 1,
        zxid: z(7),
    };
    let proposal = Message::Proposal {
        epoch: 1,
        prev: z(6),
        entry: Entry {
            zxid: z(7),
            payload: Bytes::from_static(b"payload"),
        },
    };
    let mut w = BatchWriter::default();
    assert!(w.push(2, &proposal).is_none());
    assert!(w.push(2, &commit).is_none());
    assert!(w.push(3, &commit).is_none());
    let out: Vec<(u64, Bytes)> = w.drain().collect();
    assert_eq!(out.len(), 2);
    let parts = split_batch(&out[0].1).unwrap();
    assert_eq!(parts, vec![proposal.encode(), commit.encode()]);
    // A frame of one message is that message alone.
    assert_eq!(out[1].1, commit.encode());
    assert!(split_batch(&out[1].1).is_none());
    assert_eq!(w.drain().count(), 0);
    // The writer is reusable after a drain.
    assert!(w.push(2, &commit).is_none());
    assert!(w.push(2, &commit).is_none());
    let again: Vec<(u64, Bytes)> = w.drain().collect();
    assert_eq!(
        split_batch(&again[0].1).unwrap(),
        vec![commit.encode(), commit.encode()]
    );
}

#[test]
fn a_big_message_closes_the_open_batch_and_travels_alone() {
    use zab_core::{Entry, Message, Zxid};
    let small = Message::Commit {
        epoch: 1,
        zxid: Zxid::new(1, 1),
    };
    let big = Message::Proposal {
        epoch: 1,
        prev: Zxid::new(1, 1),
        entry: Entry {
            zxid: Zxid::new(1, 2),
            payload: Bytes::from(vec![7u8; BATCH_BYTES_MAX]),
        },
    };
    let mut w = BatchWriter::default();
    assert!(w.push(2, &small).is_none());
    let (to, first) = w.push(2, &big).expect("the open batch closes first");
    assert_eq!((to, first), (2, small.encode()));
    let rest: Vec<(u64, Bytes)> = w.drain().collect();
    assert_eq!(rest, vec![(2, big.encode())]);
}

#[test]
fn reserved_frames_carry_the_same_messages() {
    use zab_core::{Entry, Message, Zxid};
    let msgs: Vec<Message> = (1..=20u32)
        .map(|i| Message::Proposal {
            epoch: 1,
            prev: Zxid::new(1, i - 1),
            entry: Entry {
                zxid: Zxid::new(1, i),
                payload: Bytes::from(vec![i as u8; 100 * i as usize]),
            },
        })
        .collect();
    let expect: Vec<Bytes> = msgs.iter().map(|m| m.encode()).collect();
    for reserve in [false, true] {
        let mut w = BatchWriter::default();
        if reserve {
            // What the node does before a pass: the sum of the messages' bounds.
            let total = msgs.iter().map(|m| 4 + m.encoded_len_max()).sum();
            w.reserve(3, total);
            w.reserve(4, 10); // reserved for a peer that then gets nothing
        }
        for m in &msgs {
            assert!(w.push(3, m).is_none());
        }
        let frames: Vec<(u64, Bytes)> = w.drain().collect();
        assert_eq!(frames.len(), 1, "reserve {reserve}");
        assert_eq!(frames[0].0, 3);
        assert_eq!(
            split_batch(&frames[0].1).unwrap(),
            expect,
            "reserve {reserve}"
        );
        // The peer that got nothing sends nothing, now or with the next message.
        assert!(w.push(4, &msgs[0]).is_none());
        let next: Vec<(u64, Bytes)> = w.drain().collect();
        assert_eq!(next, vec![(4, expect[0].clone())]);
    }
}

proptest! {
    #[test]
    fn batch_split_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
        let mut framed = vec![BATCH_TAG];
        framed.extend(data);
        let _ = split_batch(&Bytes::from(framed));
    }

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = Envelope::decode(Bytes::from(data.clone()));

        let _ = Forward::decode(Bytes::from(data.clone()));
        let _ = decode_state(&data);
    }

    #[test]
    fn forwards_with_auth_round_trip_and_truncations_fail(
        ids in proptest::collection::vec(("[a-z]{0,8}", "[ -~]{0,24}"), 0..6),
        cut in 0usize..400,
    ) {
        let f = Forward {
            conn: ConnId(7),
            xid: Xid(9),
            session: SessionId(11),
            auth: ids.into_iter().map(|(s, i)| datatree::Id::new(s, i)).collect(),
            op: ForwardOp::Write(WriteOp::SetData {
                path: "/a".into(),
                data: Bytes::from_static(b"v"),
                version: -1,
            }),
        };
        let bytes = f.encode().unwrap();
        prop_assert_eq!(Forward::decode(bytes.clone()).unwrap(), f);
        let cut = cut.min(bytes.len() - 1);
        prop_assert!(Forward::decode(bytes.slice(..cut)).is_err());
    }

    /// Damaged setData envelopes (bytes flipped anywhere, header or txn): the split
    /// read, the in-place read and the full decoder never panic, and the in-place read
    /// agrees with the full decoder whenever it reads anything.
    #[test]
    fn damaged_set_data_envelopes_decode_alike(
        flips in proptest::collection::vec((0usize..120, any::<u8>()), 1..4),
    ) {
        let mut raw = set_data_envelope(7, 12).encode().to_vec();
        for (i, b) in flips {
            if let Some(x) = raw.get_mut(i) {
                *x = b;
            }
        }
        let bytes = Bytes::from(raw);
        let full = Envelope::decode(bytes.clone());
        match Envelope::decode_split(bytes) {
            Ok(Split::Tree(h, txn)) => {
                let owned = decode_txn_bytes(&txn);
                match decode_set_data(&txn) {
                    Ok(Some(sd)) => {
                        prop_assert_eq!(&owned, &Ok(sd.to_txn()));
                        prop_assert_eq!(full, Ok(h.with_body(Body::Tree(sd.to_txn()))));
                    }
                    Ok(None) => prop_assert_eq!(full, owned.map(|t| h.with_body(Body::Tree(t)))),
                    Err(_) => prop_assert!(owned.is_err() && full.is_err()),
                }
            }
            Ok(Split::Other(env)) => prop_assert_eq!(full, Ok(env)),
            Err(_) => prop_assert!(full.is_err()),
        }
    }

    #[test]
    fn truncated_envelopes_are_errors(cut in 0usize..60) {
        let bytes = sample_envelope().encode();
        let cut = cut.min(bytes.len() - 1);
        prop_assert!(Envelope::decode(bytes.slice(..cut)).is_err());
    }
}
