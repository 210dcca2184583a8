//! The typed operations of [`Client`]: each `x_async` returns a [`Call`] future and
//! each `x` blocks on it.

use bytes::Bytes;
use datatree::{Acl, CreateMode, OpResult, Stat, WatcherType, WriteOp};

use super::watchbook::Note;
use super::{Call, Client};
use crate::error::Error;
use crate::ops::{AddWatchMode, QuotaInfo, ReadOp, ReadResult, Request, Response};
use datatree::WatcherKind;

fn unexpected<T>(r: Response) -> Result<T, Error> {
    Err(Error::Marshalling(format!("unexpected reply {r:?}")))
}

/// Defines `fn $name(Response) -> Result<$t, Error>` that takes the one reply
/// variant `$pat` apart and calls any other reply unexpected.
macro_rules! reply_as {
    ($($name:ident -> $t:ty, $pat:pat => $out:expr;)*) => {
        $(
            fn $name(r: Response) -> Result<$t, Error> {
                match r {
                    $pat => Ok($out),
                    other => unexpected(other),
                }
            }
        )*
    };
}

type MultiReadResults = Vec<Result<ReadResult, Error>>;

reply_as! {
    created -> (String, Stat), Response::Created { path, stat } => (path, stat);
    quota_info -> Option<QuotaInfo>, Response::Quota(q) => q;
    stat -> Stat, Response::Stat(s) => s;
    exists -> Option<Stat>, Response::Exists(s) => s;
    data -> (Bytes, Stat), Response::Data(d, s) => (d, s);
    children -> (Vec<String>, Stat), Response::Children(c, s) => (c, s);
    count -> u64, Response::Count(n) => n;
    paths -> Vec<String>, Response::Ephemerals(v) => v;
    acl -> (Vec<Acl>, Stat), Response::Acl(a, s) => (a, s);
    multi -> Vec<OpResult>, Response::Multi(v) => v;
    multi_read -> MultiReadResults, Response::MultiRead(v) => v;
}

fn created_path(r: Response) -> Result<String, Error> {
    created(r).map(|(p, _)| p)
}

fn unit(_: Response) -> Result<(), Error> {
    Ok(())
}

impl Client {
    /// create(path, data, acl, mode): returns the final path (sequential suffix added).
    pub fn create(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Result<String, Error> {
        self.create_async(path, data, acl, mode).wait()
    }

    /// Future of [`Client::create`].
    pub fn create_async(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        acl: &[Acl],
        mode: CreateMode,
    ) -> Call<String> {
        self.submit(
            Request::Create {
                path: path.to_string(),
                data: data.into(),
                acl: acl.to_vec(),
                mode,
                ttl_ms: 0,
            },
            created_path,
        )
    }

    /// create2 with every option (TTL for the TTL modes, else 0): path and Stat.
    pub fn create_with_stat(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
    ) -> Result<(String, Stat), Error> {
        self.create_with_stat_async(path, data, acl, mode, ttl_ms)
            .wait()
    }

    /// Future of [`Client::create_with_stat`].
    pub fn create_with_stat_async(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        acl: &[Acl],
        mode: CreateMode,
        ttl_ms: i64,
    ) -> Call<(String, Stat)> {
        self.submit(
            Request::Create {
                path: path.to_string(),
                data: data.into(),
                acl: acl.to_vec(),
                mode,
                ttl_ms,
            },
            created,
        )
    }

    /// delete(path, version); version -1 matches any.
    pub fn delete(&self, path: &str, version: i32) -> Result<(), Error> {
        self.delete_async(path, version).wait()
    }

    /// Future of [`Client::delete`].
    pub fn delete_async(&self, path: &str, version: i32) -> Call<()> {
        self.submit(
            Request::Delete {
                path: path.to_string(),
                version,
            },
            unit,
        )
    }

    /// exists(path, watch): the Stat or `None`; a watch is left either way.
    pub fn exists(&self, path: &str, watch: bool) -> Result<Option<Stat>, Error> {
        self.exists_async(path, watch).wait()
    }

    /// Future of [`Client::exists`].
    pub fn exists_async(&self, path: &str, watch: bool) -> Call<Option<Stat>> {
        let call = self.submit(
            Request::Exists {
                path: path.to_string(),
                watch,
            },
            exists,
        );
        self.noted(call, watch.then(|| Note::Exists(path.to_string())))
    }

    /// getData(path, watch).
    pub fn get_data(&self, path: &str, watch: bool) -> Result<(Bytes, Stat), Error> {
        self.get_data_async(path, watch).wait()
    }

    /// Future of [`Client::get_data`].
    pub fn get_data_async(&self, path: &str, watch: bool) -> Call<(Bytes, Stat)> {
        let call = self.submit(
            Request::GetData {
                path: path.to_string(),
                watch,
            },
            data,
        );
        self.noted(call, watch.then(|| Note::Data(path.to_string())))
    }

    /// A linearizable getData: a sync through the quorum, then the read, pipelined.
    /// It never returns stale data, even from a node that was partitioned away; the
    /// cost is one quorum round trip and one log write (the sync's no-op txn).
    pub fn get_data_linearizable(&self, path: &str) -> Result<(Bytes, Stat), Error> {
        let sync = self.sync_async(path);
        let read = self.get_data_async(path, false);
        sync.wait()?;
        read.wait()
    }

    /// setData(path, data, version): the Stat after the change.
    pub fn set_data(
        &self,
        path: &str,
        data: impl Into<Bytes>,
        version: i32,
    ) -> Result<Stat, Error> {
        self.set_data_async(path, data, version).wait()
    }

    /// Future of [`Client::set_data`].
    pub fn set_data_async(&self, path: &str, data: impl Into<Bytes>, version: i32) -> Call<Stat> {
        self.submit(
            Request::SetData {
                path: path.to_string(),
                data: data.into(),
                version,
            },
            stat,
        )
    }

    /// getChildren(path, watch): sorted names.
    pub fn get_children(&self, path: &str, watch: bool) -> Result<Vec<String>, Error> {
        self.get_children_with_stat(path, watch).map(|(c, _)| c)
    }

    /// getChildren2(path, watch): sorted names and the parent's Stat.
    pub fn get_children_with_stat(
        &self,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, Stat), Error> {
        self.get_children_async(path, watch).wait()
    }

    /// Future of [`Client::get_children_with_stat`].
    pub fn get_children_async(&self, path: &str, watch: bool) -> Call<(Vec<String>, Stat)> {
        let call = self.submit(
            Request::GetChildren {
                path: path.to_string(),
                watch,
            },
            children,
        );
        self.noted(call, watch.then(|| Note::Child(path.to_string())))
    }

    /// getAllChildrenNumber(path): descendants of `path`.
    pub fn get_all_children_number(&self, path: &str) -> Result<u64, Error> {
        self.get_all_children_number_async(path).wait()
    }

    /// Future of [`Client::get_all_children_number`].
    pub fn get_all_children_number_async(&self, path: &str) -> Call<u64> {
        self.submit(
            Request::GetAllChildrenNumber {
                path: path.to_string(),
            },
            count,
        )
    }

    /// getEphemerals(prefix): this session's ephemerals under `prefix`.
    pub fn get_ephemerals(&self, prefix: &str) -> Result<Vec<String>, Error> {
        self.get_ephemerals_async(prefix).wait()
    }

    /// Future of [`Client::get_ephemerals`].
    pub fn get_ephemerals_async(&self, prefix: &str) -> Call<Vec<String>> {
        self.submit(
            Request::GetEphemerals {
                prefix: prefix.to_string(),
            },
            paths,
        )
    }

    /// getACL(path).
    pub fn get_acl(&self, path: &str) -> Result<(Vec<Acl>, Stat), Error> {
        self.get_acl_async(path).wait()
    }

    /// Future of [`Client::get_acl`].
    pub fn get_acl_async(&self, path: &str) -> Call<(Vec<Acl>, Stat)> {
        self.submit(
            Request::GetAcl {
                path: path.to_string(),
            },
            acl,
        )
    }

    /// setACL(path, acl, aversion): the Stat after the change.
    pub fn set_acl(&self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, Error> {
        self.set_acl_async(path, acl, version).wait()
    }

    /// Future of [`Client::set_acl`].
    pub fn set_acl_async(&self, path: &str, acl: &[Acl], version: i32) -> Call<Stat> {
        self.submit(
            Request::SetAcl {
                path: path.to_string(),
                acl: acl.to_vec(),
                version,
            },
            stat,
        )
    }

    /// multi(ops): all or nothing. On failure the error is
    /// [`Error::MultiFailed`] with ZooKeeper's per-op results.
    pub fn multi(&self, ops: Vec<WriteOp>) -> Result<Vec<OpResult>, Error> {
        self.multi_async(ops).wait()
    }

    /// Future of [`Client::multi`].
    pub fn multi_async(&self, ops: Vec<WriteOp>) -> Call<Vec<OpResult>> {
        self.submit(Request::Multi(ops), multi)
    }

    /// multiRead(ops): each read succeeds or fails on its own.
    pub fn multi_read(&self, ops: Vec<ReadOp>) -> Result<MultiReadResults, Error> {
        self.multi_read_async(ops).wait()
    }

    /// Future of [`Client::multi_read`].
    pub fn multi_read_async(&self, ops: Vec<ReadOp>) -> Call<MultiReadResults> {
        self.submit(Request::MultiRead(ops), multi_read)
    }

    /// sync(path): once it returns, reads through this session see every write
    /// committed before the sync started. Unlike ZooKeeper's (ZOOKEEPER-1675) it goes
    /// through the quorum, so sync-then-read is linearizable.
    pub fn sync(&self, path: &str) -> Result<(), Error> {
        self.sync_async(path).wait()
    }

    /// Future of [`Client::sync`].
    pub fn sync_async(&self, path: &str) -> Call<()> {
        self.submit(
            Request::Sync {
                path: path.to_string(),
            },
            unit,
        )
    }

    /// addWatch(path, mode): a persistent (recursive) watch.
    pub fn add_watch(&self, path: &str, mode: AddWatchMode) -> Result<(), Error> {
        self.add_watch_async(path, mode).wait()
    }

    /// Future of [`Client::add_watch`].
    pub fn add_watch_async(&self, path: &str, mode: AddWatchMode) -> Call<()> {
        let kind = match mode {
            AddWatchMode::PersistentRecursive => WatcherKind::PersistentRecursive,
            _ => WatcherKind::Persistent,
        };
        let call = self.submit(
            Request::AddWatch {
                path: path.to_string(),
                mode,
            },
            unit,
        );
        self.noted(call, Some(Note::Persistent(path.to_string(), kind)))
    }

    /// removeWatches(path, type): NoWatcher if nothing matched.
    pub fn remove_watches(&self, path: &str, which: WatcherType) -> Result<(), Error> {
        self.remove_watches_async(path, which).wait()
    }

    /// Future of [`Client::remove_watches`].
    pub fn remove_watches_async(&self, path: &str, which: WatcherType) -> Call<()> {
        let call = self.submit(
            Request::RemoveWatches {
                path: path.to_string(),
                which,
            },
            unit,
        );
        self.noted(call, Some(Note::Remove(path.to_string(), which)))
    }

    /// addAuth(scheme, auth): adds ids to this session's connection. Scheme
    /// `digest` with `user:password` gives the id `digest:user:<base64 SHA-1>`
    /// (and `super` when it matches the node's super digest); other schemes fail
    /// with AuthFailed (-115), leaving the session as it was (ZooKeeper would close
    /// it). The client remembers every addAuth and replays it, in order, after the
    /// session moves to another node.
    pub fn add_auth(&self, scheme: &str, auth: &[u8]) -> Result<(), Error> {
        self.add_auth_async(scheme, auth).wait()
    }

    /// Future of [`Client::add_auth`].
    pub fn add_auth_async(&self, scheme: &str, auth: &[u8]) -> Call<()> {
        {
            let mut auths = self.inner.auths.lock();
            let entry = (scheme.to_string(), auth.to_vec());
            if !auths.contains(&entry) {
                auths.push(entry);
            }
        }
        self.submit(
            Request::AddAuth {
                scheme: scheme.to_string(),
                auth: auth.to_vec(),
            },
            unit,
        )
    }

    /// setQuota(path, count, bytes): limits the subtree at `path` to `count` nodes
    /// (the root included) and `bytes` data bytes (-1: unlimited); creates and
    /// setData past a limit fail with QuotaExceeded. Needs ADMIN on the node.
    pub fn set_quota(&self, path: &str, count: i64, bytes: i64) -> Result<(), Error> {
        self.set_quota_async(path, count, bytes).wait()
    }

    /// Future of [`Client::set_quota`].
    pub fn set_quota_async(&self, path: &str, count: i64, bytes: i64) -> Call<()> {
        self.submit(
            Request::SetQuota {
                path: path.to_string(),
                count,
                bytes,
            },
            unit,
        )
    }

    /// removeQuota(path): NoNode if `path` has no quota. Needs ADMIN on the node.
    pub fn remove_quota(&self, path: &str) -> Result<(), Error> {
        self.remove_quota_async(path).wait()
    }

    /// Future of [`Client::remove_quota`].
    pub fn remove_quota_async(&self, path: &str) -> Call<()> {
        self.submit(
            Request::RemoveQuota {
                path: path.to_string(),
            },
            unit,
        )
    }

    /// The quota on `path` with the subtree's usage, `None` if it has none (read
    /// from the connected node; needs READ on the node).
    pub fn quota(&self, path: &str) -> Result<Option<QuotaInfo>, Error> {
        self.quota_async(path).wait()
    }

    /// Future of [`Client::quota`].
    pub fn quota_async(&self, path: &str) -> Call<Option<QuotaInfo>> {
        self.submit(
            Request::GetQuota {
                path: path.to_string(),
            },
            quota_info,
        )
    }

    fn noted<T>(&self, call: Call<T>, note: Option<Note>) -> Call<T> {
        match note {
            Some(n) => call.with_note(&self.inner.book, n),
            None => call,
        }
    }
}
