#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

fn stat(seed: i64) -> Stat {
    Stat {
        czxid: seed,
        mzxid: seed.wrapping_add(1),
        ctime: seed.wrapping_mul(3),
        mtime: seed.wrapping_neg(),
        version: seed as i32,
        cversion: 2,
        aversion: 3,
        ephemeral_owner: seed ^ 0x55,
        data_length: 4,
        num_children: 5,
        pzxid: i64::MAX.wrapping_sub(seed),
    }
}

fn roundtrip_client(m: &ClientMsg) -> ClientMsg {
    let f = m.encode().unwrap();
    ClientMsg::decode(&f[4..]).unwrap()
}

fn roundtrip_server(m: &ServerMsg) -> ServerMsg {
    let f = m.encode().unwrap();
    ServerMsg::decode(&f[4..]).unwrap()
}

fn path() -> impl Strategy<Value = String> {
    "/[a-z]{0,8}(/[a-z0-9]{1,4}){0,2}"
}

fn acl() -> impl Strategy<Value = Vec<Acl>> {
    proptest::collection::vec(
        (0i32..32, "[a-z]{1,6}", "[a-z:]{0,8}").prop_map(|(p, s, i)| Acl {
            perms: Perms(p),
            id: Id { scheme: s, id: i },
        }),
        0..3,
    )
}

fn mode() -> impl Strategy<Value = CreateMode> {
    (0i32..7).prop_map(|f| CreateMode::from_flag(f).unwrap())
}

fn data() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..32).prop_map(Bytes::from)
}

fn write_op() -> impl Strategy<Value = WriteOp> {
    prop_oneof![
        (path(), data(), acl(), mode(), any::<i64>()).prop_map(
            |(path, data, acl, mode, ttl_ms)| {
                WriteOp::Create {
                    path,
                    data,
                    acl,
                    mode,
                    ttl_ms,
                }
            }
        ),
        (path(), any::<i32>()).prop_map(|(path, version)| WriteOp::Delete { path, version }),
        (path(), data(), any::<i32>()).prop_map(|(path, data, version)| WriteOp::SetData {
            path,
            data,
            version
        }),
        (path(), acl(), any::<i32>()).prop_map(|(path, acl, version)| WriteOp::SetAcl {
            path,
            acl,
            version
        }),
        (path(), any::<i32>()).prop_map(|(path, version)| WriteOp::Check { path, version }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        any::<u32>().prop_map(|timeout_ms| Request::Connect { timeout_ms }),
        (any::<i64>(), any::<[u8; 16]>(), any::<i64>()).prop_map(|(s, password, z)| {
            Request::Reattach {
                session: SessionId(s),
                password,
                last_zxid_seen: z,
            }
        }),
        Just(Request::Close),
        (path(), data(), acl(), mode(), any::<i64>()).prop_map(
            |(path, data, acl, mode, ttl_ms)| {
                Request::Create {
                    path,
                    data,
                    acl,
                    mode,
                    ttl_ms,
                }
            }
        ),
        (path(), any::<i32>()).prop_map(|(path, version)| Request::Delete { path, version }),
        (path(), data(), any::<i32>()).prop_map(|(path, data, version)| Request::SetData {
            path,
            data,
            version
        }),
        proptest::collection::vec(write_op(), 0..4).prop_map(Request::Multi),
        path().prop_map(|path| Request::Sync { path }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::Exists { path, watch }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::GetData { path, watch }),
        (path(), any::<bool>()).prop_map(|(path, watch)| Request::GetChildren { path, watch }),
        path().prop_map(|path| Request::GetAcl { path }),
        path().prop_map(|path| Request::AddWatch {
            path,
            mode: AddWatchMode::PersistentRecursive
        }),
        path().prop_map(|path| Request::RemoveWatches {
            path,
            which: WatcherType::Any
        }),
        (
            any::<i64>(),
            proptest::collection::vec((path(), 0u8..5), 0..4)
        )
            .prop_map(|(z, ws)| Request::SetWatches {
                relative_zxid: z,
                watches: ws
                    .into_iter()
                    .map(|(p, k)| {
                        let kind = match k {
                            0 => datatree::WatcherKind::Data,
                            1 => datatree::WatcherKind::Exists,
                            2 => datatree::WatcherKind::Child,
                            3 => datatree::WatcherKind::Persistent,
                            _ => datatree::WatcherKind::PersistentRecursive,
                        };
                        (p, kind)
                    })
                    .collect(),
            }),
        proptest::collection::vec(path(), 0..3).prop_map(|ps| Request::MultiRead(
            ps.into_iter()
                .map(|path| ReadOp::GetChildren { path })
                .collect()
        )),
    ]
}

fn response() -> impl Strategy<Value = Result<Response, Error>> {
    prop_oneof![
        (any::<i64>(), any::<[u8; 16]>(), any::<u32>()).prop_map(|(s, password, t)| Ok(
            Response::Connected {
                session: SessionId(s),
                password,
                timeout_ms: t
            }
        )),
        (path(), any::<i64>()).prop_map(|(path, s)| Ok(Response::Created {
            path,
            stat: stat(s)
        })),
        any::<i64>().prop_map(|s| Ok(Response::Exists(Some(stat(s))))),
        Just(Ok(Response::Exists(None))),
        (data(), any::<i64>()).prop_map(|(d, s)| Ok(Response::Data(d, stat(s)))),
        (proptest::collection::vec("[a-z]{1,5}", 0..5), any::<i64>())
            .prop_map(|(c, s)| Ok(Response::Children(c, stat(s)))),
        any::<u64>().prop_map(|n| Ok(Response::Count(n))),
        (acl(), any::<i64>()).prop_map(|(a, s)| Ok(Response::Acl(a, stat(s)))),
        Just(Ok(Response::Done)),
        path().prop_map(|p| Err(Error::Tree(datatree::Error::NoNode(p)))),
        path().prop_map(|p| Err(Error::Tree(datatree::Error::NodeExists(p)))),
        Just(Err(Error::ConnectionLoss)),
        Just(Err(Error::SessionExpired)),
        "[a-z ]{0,10}".prop_map(|m| Err(Error::NotServing(m))),
        path().prop_map(|p| Err(Error::MultiFailed(vec![
            OpResult::Ok,
            OpResult::Error(datatree::Error::BadVersion(p)),
            OpResult::Error(datatree::Error::RuntimeInconsistency),
        ]))),
    ]
}

proptest! {
    #[test]
    fn requests_roundtrip(xid in any::<u64>(), req in request()) {
        let m = ClientMsg::Request { xid, req };
        prop_assert_eq!(roundtrip_client(&m), m);
    }

    #[test]
    fn replies_roundtrip(xid in any::<u64>(), zxid in any::<i64>(), result in response()) {
        let m = ServerMsg::Reply { xid, zxid, result };
        prop_assert_eq!(roundtrip_server(&m), m);
    }

    /// Arbitrary bytes never panic a decoder.
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = ClientMsg::decode(&bytes);
        let _ = ServerMsg::decode(&bytes);
        let mut framed = vec![WIRE_VERSION, bytes.first().copied().unwrap_or(1) % 6];
        let body = bytes.get(1..).unwrap_or(&[]);
        framed.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        framed.extend_from_slice(body);
        let _ = ClientMsg::decode(&framed);
        let _ = ServerMsg::decode(&framed);
    }

    /// Any single flipped bit of a frame is caught (CRC, version or a decode error),
    /// or yields a different but valid message only if it hit the length prefix
    /// (which `read_frame` checks against the stream).
    #[test]
    fn flipped_bits_are_detected(req in request(), bit in any::<prop::sample::Index>()) {
        let f = ClientMsg::Request { xid: 7, req }.encode().unwrap();
        let mut g = f[4..].to_vec();
        let i = bit.index(g.len() * 8);
        g[i / 8] ^= 1 << (i % 8);
        prop_assert!(ClientMsg::decode(&g).is_err());
    }
}

#[test]
fn events_roundtrip() {
    for e in [
        Event::Session(SessionEvent::Connected),
        Event::Session(SessionEvent::Disconnected),
        Event::Session(SessionEvent::Expired),
        Event::Session(SessionEvent::Closed),
        Event::Watch(WatchedEvent {
            event_type: EventType::NodeChildrenChanged,
            path: "/a/b".into(),
            zxid: 42,
        }),
    ] {
        let m = ServerMsg::Event(e);
        assert_eq!(roundtrip_server(&m), m);
    }
    assert_eq!(roundtrip_server(&ServerMsg::Pong), ServerMsg::Pong);
    assert_eq!(roundtrip_client(&ClientMsg::Ping), ClientMsg::Ping);
}

#[test]
fn hostile_lengths_are_refused_before_allocating() {
    assert!(matches!(
        check_len(u32::MAX),
        Err(WireError::TooLong { what: "frame", .. })
    ));
    assert!(check_len(3).is_err());
    // A children list claiming 2^31 entries in a tiny body.
    let mut w = W::default();
    w.u64(1);
    w.i64(0);
    w.u8(0);
    w.u8(9);
    w.u32(1 << 31);
    let f = frame(KIND_REPLY, &w.0);
    let e = ServerMsg::decode(&f[4..]).unwrap_err();
    assert!(
        matches!(
            e,
            WireError::TooLong {
                what: "children",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn wrong_version_and_unknown_kind_are_errors() {
    let mut f = ClientMsg::Ping.encode().unwrap();
    f[4] = 9;
    assert_eq!(ClientMsg::decode(&f[4..]), Err(WireError::BadVersion(9)));
    let f = frame(77, &[]);
    assert!(matches!(
        ClientMsg::decode(&f[4..]),
        Err(WireError::BadTag { .. })
    ));
}

#[test]
fn read_frame_reads_one_frame_and_sees_clean_eof() {
    let mut bytes = ClientMsg::Ping.encode().unwrap();
    bytes.extend(
        ClientMsg::Request {
            xid: 3,
            req: Request::Close,
        }
        .encode()
        .unwrap(),
    );
    let mut cur = std::io::Cursor::new(bytes);
    let a = read_frame(&mut cur).unwrap().unwrap();
    assert_eq!(ClientMsg::decode(&a).unwrap(), ClientMsg::Ping);
    let b = read_frame(&mut cur).unwrap().unwrap();
    assert_eq!(
        ClientMsg::decode(&b).unwrap(),
        ClientMsg::Request {
            xid: 3,
            req: Request::Close
        }
    );
    assert!(read_frame(&mut cur).unwrap().is_none());
}

#[test]
fn single_writes_carry_the_multi_op_body() {
    // Request tags 3..=6 are create, delete, setData, setACL; their bodies are the
    // multi ops' (tags 0..=3), byte for byte.
    let ops = [
        WriteOp::Create {
            path: "/a".into(),
            data: Bytes::from_static(b"xy"),
            acl: Acl::open_unsafe(),
            mode: CreateMode::PersistentSequential,
            ttl_ms: 0,
        },
        WriteOp::Delete {
            path: "/a".into(),
            version: 7,
        },
        WriteOp::SetData {
            path: "/a".into(),
            data: Bytes::from_static(b"z"),
            version: -1,
        },
        WriteOp::SetAcl {
            path: "/a".into(),
            acl: Acl::read_unsafe(),
            version: 2,
        },
    ];
    for (i, op) in ops.into_iter().enumerate() {
        let mut single = W(Vec::new());
        put_request(&mut single, &Request::from_write_op(op.clone()).unwrap()).unwrap();
        let mut multi = W(Vec::new());
        put_request(&mut multi, &Request::Multi(vec![op])).unwrap();
        // multi: tag 7, a u32 count of 1, then the op with its own tag.
        assert_eq!(single.0[0], 3 + i as u8);
        assert_eq!(multi.0[5], i as u8);
        assert_eq!(single.0[1..], multi.0[6..]);
    }
}
