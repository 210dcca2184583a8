//! Encoding of responses, errors and events.

use super::*;

// ---------------------------------------------------------------- errors

/// The text an error is rebuilt from by [`Error::from_code`].
fn error_message(e: &Error) -> String {
    use datatree::Error as T;
    match e {
        Error::Tree(t) => match t {
            T::SystemError(m)
            | T::MarshallingError(m)
            | T::Unimplemented(m)
            | T::BadArguments(m)
            | T::NoNode(m)
            | T::NoAuth(m)
            | T::BadVersion(m)
            | T::NoChildrenForEphemerals(m)
            | T::NodeExists(m)
            | T::NotEmpty(m)
            | T::InvalidAcl(m)
            | T::NoWatcher(m)
            | T::QuotaExceeded(m) => m.clone(),
            other => other.to_string(),
        },
        Error::Marshalling(m) | Error::NotServing(m) => m.clone(),
        Error::Throttled(m) => (*m).to_string(),
        other => other.to_string(),
    }
}

pub(super) fn put_error(w: &mut W, e: &Error) {
    match e {
        Error::MultiFailed(results) => {
            w.u8(1);
            put_op_results(w, results);
        }
        Error::NotServing(m) => {
            w.u8(2);
            w.str(m);
        }
        Error::Throttled(_) => w.u8(3),
        other => {
            w.u8(0);
            w.i32(other.code());
            w.str(&error_message(other));
        }
    }
}

pub(super) fn get_error(r: &mut R<'_>) -> Result<Error, WireError> {
    Ok(match r.u8()? {
        0 => {
            let code = r.i32()?;
            let msg = r.string("error message")?;
            Error::from_code(code, msg)
        }
        1 => Error::MultiFailed(get_op_results(r)?),
        2 => Error::NotServing(r.string("error message")?),
        3 => Error::Throttled("server busy"),
        t => return Err(bad("error", t)),
    })
}

fn put_tree_error(w: &mut W, e: &datatree::Error) {
    w.i32(e.code());
    w.str(&error_message(&Error::Tree(e.clone())));
}

fn get_tree_error(r: &mut R<'_>) -> Result<datatree::Error, WireError> {
    let code = r.i32()?;
    let msg = r.string("error message")?;
    Ok(match Error::from_code(code, msg) {
        Error::Tree(t) => t,
        other => datatree::Error::SystemError(other.to_string()),
    })
}

fn put_op_results(w: &mut W, results: &[OpResult]) {
    w.len(results.len());
    for res in results {
        match res {
            OpResult::Created { path, stat } => {
                w.u8(0);
                w.str(path);
                put_stat(w, stat);
            }
            OpResult::Deleted => w.u8(1),
            OpResult::DataSet { stat } => {
                w.u8(2);
                put_stat(w, stat);
            }
            OpResult::AclSet { stat } => {
                w.u8(3);
                put_stat(w, stat);
            }
            OpResult::Checked => w.u8(4),
            OpResult::SessionClosed => w.u8(5),
            OpResult::QuotaChanged => w.u8(6),
            OpResult::Error(e) => {
                w.u8(7);
                put_tree_error(w, e);
            }
            OpResult::Ok => w.u8(8),
            // Unknown future results travel as a system error rather than vanish.
            other => {
                w.u8(7);
                put_tree_error(w, &datatree::Error::SystemError(format!("{other:?}")));
            }
        }
    }
}

fn get_op_results(r: &mut R<'_>) -> Result<Vec<OpResult>, WireError> {
    let n = r.len("op results", 1)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(match r.u8()? {
            0 => OpResult::Created {
                path: r.string("path")?,
                stat: get_stat(r)?,
            },
            1 => OpResult::Deleted,
            2 => OpResult::DataSet { stat: get_stat(r)? },
            3 => OpResult::AclSet { stat: get_stat(r)? },
            4 => OpResult::Checked,
            5 => OpResult::SessionClosed,
            6 => OpResult::QuotaChanged,
            7 => OpResult::Error(get_tree_error(r)?),
            8 => OpResult::Ok,
            t => return Err(bad("op result", t)),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- responses

pub(super) fn put_response(w: &mut W, resp: &Response) -> Result<(), WireError> {
    match resp {
        Response::Connected {
            session,
            password,
            timeout_ms,
        } => {
            w.u8(0);
            w.i64(session.0);
            w.0.extend_from_slice(password);
            w.u32(*timeout_ms);
        }
        Response::Closed => w.u8(1),
        Response::Created { path, stat } => {
            w.u8(2);
            w.str(path);
            put_stat(w, stat);
        }
        Response::Deleted => w.u8(3),
        Response::Stat(s) => {
            w.u8(4);
            put_stat(w, s);
        }
        Response::Multi(results) => {
            w.u8(5);
            put_op_results(w, results);
        }
        Response::Synced { path } => {
            w.u8(6);
            w.str(path);
        }
        Response::Exists(s) => {
            w.u8(7);
            match s {
                Some(s) => {
                    w.u8(1);
                    put_stat(w, s);
                }
                None => w.u8(0),
            }
        }
        Response::Data(d, s) => {
            w.u8(8);
            w.bytes(d);
            put_stat(w, s);
        }
        Response::Children(c, s) => {
            w.u8(9);
            put_strings(w, c);
            put_stat(w, s);
        }
        Response::Count(n) => {
            w.u8(10);
            w.u64(*n);
        }
        Response::Ephemerals(v) => {
            w.u8(11);
            put_strings(w, v);
        }
        Response::Acl(a, s) => {
            w.u8(12);
            put_acl(w, a);
            put_stat(w, s);
        }
        Response::MultiRead(results) => {
            w.u8(13);
            w.len(results.len());
            for res in results {
                match res {
                    Ok(ReadResult::Data(d, s)) => {
                        w.u8(0);
                        w.bytes(d);
                        put_stat(w, s);
                    }
                    Ok(ReadResult::Children(c, s)) => {
                        w.u8(1);
                        put_strings(w, c);
                        put_stat(w, s);
                    }
                    Err(e) => {
                        w.u8(2);
                        put_error(w, e);
                    }
                    Ok(other) => {
                        return Err(WireError::Unsupported(format!("read result {other:?}")))
                    }
                }
            }
        }
        Response::Done => w.u8(14),
        other => return Err(WireError::Unsupported(format!("response {other:?}"))),
    }
    Ok(())
}

pub(super) fn get_response(r: &mut R<'_>) -> Result<Response, WireError> {
    Ok(match r.u8()? {
        0 => Response::Connected {
            session: SessionId(r.i64()?),
            password: r.arr("password")?,
            timeout_ms: r.u32()?,
        },
        1 => Response::Closed,
        2 => Response::Created {
            path: r.string("path")?,
            stat: get_stat(r)?,
        },
        3 => Response::Deleted,
        4 => Response::Stat(get_stat(r)?),
        5 => Response::Multi(get_op_results(r)?),
        6 => Response::Synced {
            path: r.string("path")?,
        },
        7 => Response::Exists(if get_bool(r)? {
            Some(get_stat(r)?)
        } else {
            None
        }),
        8 => {
            let d = r.data()?;
            Response::Data(d, get_stat(r)?)
        }
        9 => {
            let c = get_strings(r, "children")?;
            Response::Children(c, get_stat(r)?)
        }
        10 => Response::Count(r.u64()?),
        11 => Response::Ephemerals(get_strings(r, "ephemerals")?),
        12 => {
            let a = get_acl(r)?;
            Response::Acl(a, get_stat(r)?)
        }
        13 => {
            let n = r.len("multi read results", 1)?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(match r.u8()? {
                    0 => {
                        let d = r.data()?;
                        Ok(ReadResult::Data(d, get_stat(r)?))
                    }
                    1 => {
                        let c = get_strings(r, "children")?;
                        Ok(ReadResult::Children(c, get_stat(r)?))
                    }
                    2 => Err(get_error(r)?),
                    t => return Err(bad("read result", t)),
                });
            }
            Response::MultiRead(out)
        }
        14 => Response::Done,
        t => return Err(bad("response", t)),
    })
}

// ---------------------------------------------------------------- events

pub(super) fn put_event(w: &mut W, e: &Event) -> Result<(), WireError> {
    match e {
        Event::Watch(we) => {
            w.u8(0);
            w.i32(we.event_type.code());
            w.str(&we.path);
            w.i64(we.zxid);
        }
        Event::Session(s) => {
            w.u8(1);
            w.u8(match s {
                SessionEvent::Connected => 0,
                SessionEvent::Disconnected => 1,
                SessionEvent::Expired => 2,
                SessionEvent::Closed => 3,
                other => return Err(WireError::Unsupported(format!("session event {other:?}"))),
            });
        }
        other => return Err(WireError::Unsupported(format!("event {other:?}"))),
    }
    Ok(())
}

pub(super) fn get_event(r: &mut R<'_>) -> Result<Event, WireError> {
    Ok(match r.u8()? {
        0 => {
            let code = r.i32()?;
            let event_type = match code {
                1 => EventType::NodeCreated,
                2 => EventType::NodeDeleted,
                3 => EventType::NodeDataChanged,
                4 => EventType::NodeChildrenChanged,
                c => return Err(bad("event type", c)),
            };
            let path = r.string("path")?;
            Event::Watch(WatchedEvent {
                event_type,
                path: path.into(),
                zxid: r.i64()?,
            })
        }
        1 => Event::Session(match r.u8()? {
            0 => SessionEvent::Connected,
            1 => SessionEvent::Disconnected,
            2 => SessionEvent::Expired,
            3 => SessionEvent::Closed,
            t => return Err(bad("session event", t)),
        }),
        t => return Err(bad("event", t)),
    })
}
