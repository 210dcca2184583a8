//! Binary encoding of [`Message`].
//!
//! Wire format: one version byte ([`WIRE_VERSION`]), one tag byte, then the fields in
//! declaration order, big-endian; zxids as `u64`, byte strings as a `u32` length
//! (bounded by [`PAYLOAD_MAX_BYTES`] or [`SNAPSHOT_MAX_BYTES`]) followed by the bytes.
//! Decoding never panics and never allocates more than the input: byte fields are
//! zero-copy slices of the input [`Bytes`].

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::messages::{Entry, Message, PeerState, Vote};
use crate::zxid::{ServerId, Zxid};

/// Version byte at the start of every encoded message.
pub const WIRE_VERSION: u8 = 1;
/// Largest txn payload or forwarded request accepted on the wire.
pub const PAYLOAD_MAX_BYTES: usize = 16 << 20;
/// Largest snapshot accepted in one SNAP message.
pub const SNAPSHOT_MAX_BYTES: usize = 1 << 30;

/// Why bytes could not be decoded into a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the message did.
    #[error("truncated message")]
    Truncated,
    /// Unknown wire version.
    #[error("unsupported wire version {0}")]
    Version(u8),
    /// Unknown message tag.
    #[error("unknown message tag {0}")]
    Tag(u8),
    /// A byte string longer than its bound.
    #[error("field of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// Declared length.
        len: usize,
        /// Allowed maximum.
        max: usize,
    },
    /// An enum field holds an unknown value.
    #[error("invalid value {0} for an enum field")]
    BadEnum(u8),
    /// Bytes left after the message.
    #[error("{0} trailing bytes")]
    Trailing(usize),
}

const T_NOTIFICATION: u8 = 1;
const T_FOLLOWER_INFO: u8 = 2;
const T_LEADER_INFO: u8 = 3;
const T_ACK_EPOCH: u8 = 4;
const T_DIFF: u8 = 5;
const T_TRUNC: u8 = 6;
const T_SNAP: u8 = 7;
const T_PROPOSAL: u8 = 8;
const T_COMMIT: u8 = 9;
const T_NEW_LEADER: u8 = 10;
const T_ACK_NEW_LEADER: u8 = 11;
const T_UP_TO_DATE: u8 = 12;
const T_ACK: u8 = 13;
const T_INFORM: u8 = 14;
const T_PING: u8 = 15;
const T_PING_REPLY: u8 = 16;
const T_REQUEST: u8 = 17;
const T_SNAP_CHUNK: u8 = 18;

/// The most bytes a message takes besides its variable-length field.
pub const FIXED_LEN_MAX: usize = 40;

impl Message {
    /// Encodes the message in the wire format.
    pub fn encode(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(self.encoded_len_max());
        self.encode_into(&mut b);
        b.freeze()
    }

    /// At least the encoded size of the message (its fixed fields are at most
    /// `FIXED_LEN_MAX` bytes), for reserving and for batching decisions.
    pub fn encoded_len_max(&self) -> usize {
        FIXED_LEN_MAX
            + match self {
                Message::Snap { data, .. } | Message::SnapChunk { data, .. } => data.len(),
                Message::Proposal { entry, .. } | Message::Inform { entry, .. } => {
                    entry.payload.len()
                }
                Message::Request { payload, .. } => payload.len(),
                _ => 0,
            }
    }

    /// Appends the message's wire encoding to `b` (no intermediate buffer: the node
    /// writes messages straight into its batch frames).
    pub fn encode_into(&self, b: &mut BytesMut) {
        b.put_u8(WIRE_VERSION);
        match self {
            Message::Notification {
                vote,
                election_epoch,
                state,
            } => {
                b.put_u8(T_NOTIFICATION);
                b.put_u64(vote.leader.0);
                b.put_u64(vote.zxid.to_u64());
                b.put_u32(vote.peer_epoch);
                b.put_u64(*election_epoch);
                b.put_u8(match state {
                    PeerState::Looking => 0,
                    PeerState::Following => 1,
                    PeerState::Leading => 2,
                    PeerState::Observing => 3,
                });
            }
            Message::FollowerInfo {
                accepted_epoch,
                last_zxid,
            } => {
                b.put_u8(T_FOLLOWER_INFO);
                b.put_u32(*accepted_epoch);
                b.put_u64(last_zxid.to_u64());
            }
            Message::LeaderInfo { epoch } => {
                b.put_u8(T_LEADER_INFO);
                b.put_u32(*epoch);
            }
            Message::AckEpoch {
                epoch,
                fresh,
                current_epoch,
                last_zxid,
            } => {
                b.put_u8(T_ACK_EPOCH);
                b.put_u32(*epoch);
                b.put_u8(u8::from(*fresh));
                b.put_u32(*current_epoch);
                b.put_u64(last_zxid.to_u64());
            }
            Message::Diff { epoch, echo } => {
                b.put_u8(T_DIFF);
                b.put_u32(*epoch);
                b.put_u64(echo.to_u64());
            }
            Message::Trunc { epoch, echo, to } => {
                b.put_u8(T_TRUNC);
                b.put_u32(*epoch);
                b.put_u64(echo.to_u64());
                b.put_u64(to.to_u64());
            }
            Message::Snap {
                epoch,
                echo,
                zxid,
                chunked,
                data,
            } => {
                b.put_u8(T_SNAP);
                b.put_u32(*epoch);
                b.put_u64(echo.to_u64());
                b.put_u64(zxid.to_u64());
                b.put_u64(*chunked);
                put_bytes(b, data);
            }
            Message::SnapChunk {
                epoch,
                zxid,
                offset,
                data,
            } => {
                b.put_u8(T_SNAP_CHUNK);
                b.put_u32(*epoch);
                b.put_u64(zxid.to_u64());
                b.put_u64(*offset);
                put_bytes(b, data);
            }
            Message::Proposal { epoch, prev, entry } | Message::Inform { epoch, prev, entry } => {
                let tag = if matches!(self, Message::Proposal { .. }) {
                    T_PROPOSAL
                } else {
                    T_INFORM
                };
                b.put_u8(tag);
                b.put_u32(*epoch);
                b.put_u64(prev.to_u64());
                b.put_u64(entry.zxid.to_u64());
                put_bytes(b, &entry.payload);
            }
            Message::Commit { epoch, zxid } => put_epoch_zxid(b, T_COMMIT, *epoch, *zxid),
            Message::NewLeader { epoch, zxid } => put_epoch_zxid(b, T_NEW_LEADER, *epoch, *zxid),
            Message::AckNewLeader { epoch, zxid } => {
                put_epoch_zxid(b, T_ACK_NEW_LEADER, *epoch, *zxid)
            }
            Message::UpToDate { epoch, committed } => {
                put_epoch_zxid(b, T_UP_TO_DATE, *epoch, *committed)
            }
            Message::Ack { epoch, zxid } => put_epoch_zxid(b, T_ACK, *epoch, *zxid),
            Message::Ping {
                epoch,
                last_zxid,
                committed,
            } => {
                b.put_u8(T_PING);
                b.put_u32(*epoch);
                b.put_u64(last_zxid.to_u64());
                b.put_u64(committed.to_u64());
            }
            Message::PingReply { epoch } => {
                b.put_u8(T_PING_REPLY);
                b.put_u32(*epoch);
            }
            Message::Request { epoch, payload } => {
                b.put_u8(T_REQUEST);
                b.put_u32(*epoch);
                put_bytes(b, payload);
            }
        }
    }

    /// Decodes one message that fills `input` exactly.
    pub fn decode(input: &Bytes) -> Result<Message, DecodeError> {
        Message::decode_owned(input.clone())
    }

    /// [`Message::decode`] taking the input: a payload at the end of the message
    /// (a proposal's) becomes that very handle, with no reference count to take.
    pub fn decode_owned(input: Bytes) -> Result<Message, DecodeError> {
        let mut r = Reader(input);
        let version = r.u8()?;
        if version != WIRE_VERSION {
            return Err(DecodeError::Version(version));
        }
        let tag = r.u8()?;
        let msg = match tag {
            T_NOTIFICATION => {
                let leader = ServerId(r.u64()?);
                let zxid = r.zxid()?;
                let peer_epoch = r.u32()?;
                let election_epoch = r.u64()?;
                let state = match r.u8()? {
                    0 => PeerState::Looking,
                    1 => PeerState::Following,
                    2 => PeerState::Leading,
                    3 => PeerState::Observing,
                    x => return Err(DecodeError::BadEnum(x)),
                };
                Message::Notification {
                    vote: Vote {
                        leader,
                        zxid,
                        peer_epoch,
                    },
                    election_epoch,
                    state,
                }
            }
            T_FOLLOWER_INFO => Message::FollowerInfo {
                accepted_epoch: r.u32()?,
                last_zxid: r.zxid()?,
            },
            T_LEADER_INFO => Message::LeaderInfo { epoch: r.u32()? },
            T_ACK_EPOCH => {
                let epoch = r.u32()?;
                let fresh = match r.u8()? {
                    0 => false,
                    1 => true,
                    x => return Err(DecodeError::BadEnum(x)),
                };
                Message::AckEpoch {
                    epoch,
                    fresh,
                    current_epoch: r.u32()?,
                    last_zxid: r.zxid()?,
                }
            }
            T_DIFF => Message::Diff {
                epoch: r.u32()?,
                echo: r.zxid()?,
            },
            T_TRUNC => Message::Trunc {
                epoch: r.u32()?,
                echo: r.zxid()?,
                to: r.zxid()?,
            },
            T_SNAP => Message::Snap {
                epoch: r.u32()?,
                echo: r.zxid()?,
                zxid: r.zxid()?,
                chunked: r.u64()?,
                data: r.bytes(SNAPSHOT_MAX_BYTES)?,
            },
            T_SNAP_CHUNK => Message::SnapChunk {
                epoch: r.u32()?,
                zxid: r.zxid()?,
                offset: r.u64()?,
                data: r.bytes(SNAPSHOT_MAX_BYTES)?,
            },
            T_PROPOSAL | T_INFORM => {
                let epoch = r.u32()?;
                let prev = r.zxid()?;
                let entry = Entry {
                    zxid: r.zxid()?,
                    payload: r.bytes(PAYLOAD_MAX_BYTES)?,
                };
                if tag == T_PROPOSAL {
                    Message::Proposal { epoch, prev, entry }
                } else {
                    Message::Inform { epoch, prev, entry }
                }
            }
            T_COMMIT => Message::Commit {
                epoch: r.u32()?,
                zxid: r.zxid()?,
            },
            T_NEW_LEADER => Message::NewLeader {
                epoch: r.u32()?,
                zxid: r.zxid()?,
            },
            T_ACK_NEW_LEADER => Message::AckNewLeader {
                epoch: r.u32()?,
                zxid: r.zxid()?,
            },
            T_UP_TO_DATE => Message::UpToDate {
                epoch: r.u32()?,
                committed: r.zxid()?,
            },
            T_ACK => Message::Ack {
                epoch: r.u32()?,
                zxid: r.zxid()?,
            },
            T_PING => Message::Ping {
                epoch: r.u32()?,
                last_zxid: r.zxid()?,
                committed: r.zxid()?,
            },
            T_PING_REPLY => Message::PingReply { epoch: r.u32()? },
            T_REQUEST => Message::Request {
                epoch: r.u32()?,
                payload: r.bytes(PAYLOAD_MAX_BYTES)?,
            },
            other => return Err(DecodeError::Tag(other)),
        };
        if r.0.has_remaining() {
            return Err(DecodeError::Trailing(r.0.remaining()));
        }
        Ok(msg)
    }
}

fn put_epoch_zxid(b: &mut BytesMut, tag: u8, epoch: u32, zxid: Zxid) {
    b.put_u8(tag);
    b.put_u32(epoch);
    b.put_u64(zxid.to_u64());
}

fn put_bytes(b: &mut BytesMut, data: &Bytes) {
    // Senders only build payloads within the bounds (checked by `propose` and by the
    // decoder on the other side); a longer field would be refused by the receiver.
    b.put_u32(u32::try_from(data.len()).unwrap_or(u32::MAX));
    b.put_slice(data);
}

struct Reader(Bytes);

impl Reader {
    fn need(&self, n: usize) -> Result<(), DecodeError> {
        if self.0.remaining() < n {
            Err(DecodeError::Truncated)
        } else {
            Ok(())
        }
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        self.need(1)?;
        Ok(self.0.get_u8())
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.need(4)?;
        Ok(self.0.get_u32())
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.need(8)?;
        Ok(self.0.get_u64())
    }
    fn zxid(&mut self) -> Result<Zxid, DecodeError> {
        Ok(Zxid::from_u64(self.u64()?))
    }
    fn bytes(&mut self, max: usize) -> Result<Bytes, DecodeError> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(DecodeError::TooLong { len, max });
        }
        self.need(len)?;
        Ok(take_front(&mut self.0, len))
    }
}

/// The first `len` bytes of `buf` (which holds at least that many) as a handle of
/// their own; when they are all of it, `buf`'s own handle, so that the common case of
/// a byte string at the end of its input costs no reference-count traffic.
pub(crate) fn take_front(buf: &mut Bytes, len: usize) -> Bytes {
    if len == buf.len() {
        std::mem::take(buf)
    } else {
        buf.split_to(len)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    /// A proposal's payload ends its message: decoding the owned input gives the
    /// payload intact, sharing the input's buffer; `take_front` hands over the whole
    /// handle when asked for all of it and splits otherwise.
    #[test]
    fn a_trailing_payload_shares_the_input() {
        let m = Message::Proposal {
            epoch: 1,
            prev: Zxid::new(1, 1),
            entry: Entry {
                zxid: Zxid::new(1, 2),
                payload: Bytes::from_static(b"payload"),
            },
        };
        let enc = m.encode();
        let range = enc.as_ptr_range();
        let got = Message::decode_owned(enc.clone()).unwrap();
        let Message::Proposal { entry, .. } = &got else {
            panic!("{got:?}")
        };
        assert!(range.contains(&entry.payload.as_ptr()));
        assert_eq!(got, m);
        let mut buf = Bytes::from_static(b"abcdef");
        assert_eq!(take_front(&mut buf, 2), Bytes::from_static(b"ab"));
        assert_eq!(take_front(&mut buf, 4), Bytes::from_static(b"cdef"));
        assert!(buf.is_empty());
    }

    pub(crate) fn zxid() -> impl Strategy<Value = Zxid> {
        any::<u64>().prop_map(Zxid::from_u64)
    }

    pub(crate) fn bytes() -> impl Strategy<Value = Bytes> {
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Bytes::from)
    }

    /// Any message, for property tests elsewhere too.
    pub(crate) fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            (any::<u64>(), zxid(), any::<u32>(), any::<u64>(), 0u8..4).prop_map(
                |(l, z, p, e, s)| Message::Notification {
                    vote: Vote {
                        leader: ServerId(l),
                        zxid: z,
                        peer_epoch: p
                    },
                    election_epoch: e,
                    state: [
                        PeerState::Looking,
                        PeerState::Following,
                        PeerState::Leading,
                        PeerState::Observing
                    ][s as usize],
                }
            ),
            (any::<u32>(), zxid()).prop_map(|(a, z)| Message::FollowerInfo {
                accepted_epoch: a,
                last_zxid: z
            }),
            any::<u32>().prop_map(|e| Message::LeaderInfo { epoch: e }),
            (any::<u32>(), any::<bool>(), any::<u32>(), zxid()).prop_map(|(e, f, c, z)| {
                Message::AckEpoch {
                    epoch: e,
                    fresh: f,
                    current_epoch: c,
                    last_zxid: z,
                }
            }),
            (any::<u32>(), zxid()).prop_map(|(e, z)| Message::Diff { epoch: e, echo: z }),
            (any::<u32>(), zxid(), zxid()).prop_map(|(e, a, t)| Message::Trunc {
                epoch: e,
                echo: a,
                to: t
            }),
            (any::<u32>(), zxid(), zxid(), any::<u64>(), bytes()).prop_map(|(e, a, z, c, d)| {
                Message::Snap {
                    epoch: e,
                    echo: a,
                    zxid: z,
                    chunked: c,
                    data: d,
                }
            }),
            (any::<u32>(), zxid(), any::<u64>(), bytes()).prop_map(|(e, z, o, d)| {
                Message::SnapChunk {
                    epoch: e,
                    zxid: z,
                    offset: o,
                    data: d,
                }
            }),
            (any::<u32>(), zxid(), zxid(), bytes()).prop_map(|(e, p, z, d)| Message::Proposal {
                epoch: e,
                prev: p,
                entry: Entry {
                    zxid: z,
                    payload: d
                }
            }),
            (any::<u32>(), zxid(), zxid(), bytes()).prop_map(|(e, p, z, d)| Message::Inform {
                epoch: e,
                prev: p,
                entry: Entry {
                    zxid: z,
                    payload: d
                }
            }),
            (any::<u32>(), zxid()).prop_map(|(e, z)| Message::Commit { epoch: e, zxid: z }),
            (any::<u32>(), zxid()).prop_map(|(e, z)| Message::NewLeader { epoch: e, zxid: z }),
            (any::<u32>(), zxid()).prop_map(|(e, z)| Message::AckNewLeader { epoch: e, zxid: z }),
            (any::<u32>(), zxid()).prop_map(|(e, z)| Message::UpToDate {
                epoch: e,
                committed: z
            }),
            (any::<u32>(), zxid()).prop_map(|(e, z)| Message::Ack { epoch: e, zxid: z }),
            (any::<u32>(), zxid(), zxid()).prop_map(|(e, l, c)| Message::Ping {
                epoch: e,
                last_zxid: l,
                committed: c
            }),
            any::<u32>().prop_map(|e| Message::PingReply { epoch: e }),
            (any::<u32>(), bytes()).prop_map(|(e, p)| Message::Request {
                epoch: e,
                payload: p
            }),
        ]
    }

    proptest! {
        #[test]
        fn roundtrip(m in message()) {
            let enc = m.encode();
            prop_assert!(enc.len() <= m.encoded_len_max());
            // Appending after other bytes writes the same encoding.
            let mut b = BytesMut::from(&b"xy"[..]);
            m.encode_into(&mut b);
            prop_assert_eq!(&b[2..], &enc[..]);
            prop_assert_eq!(Message::decode(&enc).unwrap(), m);
        }

        #[test]
        fn decode_never_panics(data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = Message::decode(&Bytes::from(data));
        }

        #[test]
        fn every_strict_prefix_is_rejected(m in message()) {
            let enc = m.encode();
            for cut in 0..enc.len() {
                prop_assert!(Message::decode(&enc.slice(..cut)).is_err());
            }
        }

        #[test]
        fn mutated_messages_never_panic(m in message(), idx in any::<usize>(), byte in any::<u8>()) {
            let mut v = m.encode().to_vec();
            let i = idx % v.len();
            v[i] = byte;
            let _ = Message::decode(&Bytes::from(v));
        }
    }

    /// A SNAP chunk from a peer: a declared length over the snapshot bound, a body
    /// cut short or bytes after it are typed errors, never an allocation or a panic.
    #[test]
    fn bad_snap_chunks_are_typed_errors() {
        let ok = Message::SnapChunk {
            epoch: 1,
            zxid: Zxid::new(1, 2),
            offset: 7,
            data: Bytes::from_static(b"abc"),
        }
        .encode();
        // Version, tag, epoch (4), zxid (8), offset (8), then the u32 length.
        let len_at = 2 + 4 + 8 + 8;
        let mut huge = ok.to_vec();
        huge[len_at..len_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Message::decode(&Bytes::from(huge)),
            Err(DecodeError::TooLong { .. })
        ));
        assert_eq!(
            Message::decode(&ok.slice(..ok.len() - 1)),
            Err(DecodeError::Truncated)
        );
        let mut long = ok.to_vec();
        long.push(0);
        assert!(Message::decode(&Bytes::from(long)).is_err());
    }

    #[test]
    fn typed_errors() {
        assert_eq!(Message::decode(&Bytes::new()), Err(DecodeError::Truncated));
        assert_eq!(
            Message::decode(&Bytes::from_static(&[9, 1])),
            Err(DecodeError::Version(9))
        );
        assert_eq!(
            Message::decode(&Bytes::from_static(&[1, 200])),
            Err(DecodeError::Tag(200))
        );
        let mut v = Message::PingReply { epoch: 3 }.encode().to_vec();
        v.push(0);
        assert_eq!(
            Message::decode(&Bytes::from(v)),
            Err(DecodeError::Trailing(1))
        );
        // A length prefix far beyond the bound is refused before any allocation.
        let huge = [1u8, T_REQUEST, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            Message::decode(&Bytes::copy_from_slice(&huge)),
            Err(DecodeError::TooLong { .. })
        ));
    }
}
