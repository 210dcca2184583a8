//! A single-replica driver for tests: prepare, apply, advance the zxid.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use datatree::*;

pub struct Local {
    pub tree: DataTree,
    pub prep: Prep,
    pub zxid: i64,
    pub time: i64,
}

impl Local {
    pub fn new() -> Local {
        Local {
            tree: DataTree::new(),
            prep: Prep::default(),
            zxid: 0,
            time: 1_000,
        }
    }

    /// Prepares and applies one request as session `s`.
    pub fn run_as(&mut self, s: i64, auth: &[Id], op: WriteOp) -> Result<Applied, PrepError> {
        let zxid = self.zxid + 1;
        let ctx = PrepContext {
            session: SessionId(s),
            auth,
            zxid,
        };
        let txn_op = self.prep.prepare(&self.tree, &ctx, &op)?;
        self.zxid = zxid;
        self.time += 10;
        let txn = Txn {
            zxid,
            time_ms: self.time,
            op: txn_op,
        };
        // Every txn goes through the codec, so the codec is exercised by every test, and
        // is applied the way a follower applies it: a single setData read in place.
        let bytes = datatree::txn_codec::encode(&txn);
        let applied = match datatree::txn_codec::decode_set_data(&bytes).unwrap() {
            Some(view) => {
                assert_eq!(view.to_txn(), txn, "in-place setData decode");
                // The leader applies the owned txn: both paths must agree exactly.
                let mut owned = self.tree.clone();
                let expected = owned.apply(&txn).expect("prepared txn must apply");
                let mut applied = Applied::default();
                self.tree
                    .apply_set_data(&view, &mut applied, true)
                    .expect("prepared txn must apply");
                assert_eq!(applied, expected, "in-place and owned setData");
                assert_eq!(self.tree.digest(), owned.digest());
                applied
            }
            None => {
                let txn = datatree::txn_codec::decode_shared(&bytes).unwrap();
                self.tree.apply(&txn).expect("prepared txn must apply")
            }
        };
        self.prep.handle_applied(zxid);
        assert_eq!(
            self.tree.digest(),
            self.tree.full_digest(),
            "incremental digest drifted"
        );
        Ok(applied)
    }

    /// Applies a txn prepared earlier by hand (pipelined requests) and tells `prep`.
    pub fn apply_prepared(&mut self, zxid: i64, op: TxnOp) {
        self.tree
            .apply(&Txn {
                zxid,
                time_ms: 5,
                op,
            })
            .unwrap();
        self.prep.handle_applied(zxid);
    }

    pub fn run(&mut self, op: WriteOp) -> Result<Applied, PrepError> {
        self.run_as(1, &[], op)
    }

    pub fn close_session(&mut self, s: i64) -> Applied {
        let zxid = self.zxid + 1;
        let op = self
            .prep
            .prepare_close_session(&self.tree, SessionId(s), zxid);
        self.zxid = zxid;
        let applied = self
            .tree
            .apply(&Txn {
                zxid,
                time_ms: self.time,
                op,
            })
            .unwrap();
        self.prep.handle_applied(zxid);
        applied
    }

    pub fn create(&mut self, path: &str, mode: CreateMode) -> Result<String, Error> {
        self.create_data(path, b"", mode)
    }

    pub fn create_data(
        &mut self,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<String, Error> {
        let ttl_ms = if mode.is_ttl() { 1_000 } else { 0 };
        match self.run(create_op(path, data, mode, ttl_ms)) {
            Ok(a) => match &a.results[0] {
                OpResult::Created { path, .. } => Ok(path.clone()),
                other => panic!("unexpected {other:?}"),
            },
            Err(e) => Err(e.error()),
        }
    }

    pub fn delete(&mut self, path: &str, version: i32) -> Result<(), Error> {
        self.run(WriteOp::Delete {
            path: path.into(),
            version,
        })
        .map(|_| ())
        .map_err(|e| e.error())
    }

    pub fn set(&mut self, path: &str, data: &[u8], version: i32) -> Result<Stat, Error> {
        match self.run(WriteOp::SetData {
            path: path.into(),
            data: Bytes::copy_from_slice(data),
            version,
        }) {
            Ok(a) => match &a.results[0] {
                OpResult::DataSet { stat } => Ok(*stat),
                other => panic!("unexpected {other:?}"),
            },
            Err(e) => Err(e.error()),
        }
    }

    pub fn stat(&self, path: &str) -> Stat {
        self.tree
            .stat(path)
            .unwrap_or_else(|| panic!("{path} missing"))
    }
}

pub fn create_op(path: &str, data: &[u8], mode: CreateMode, ttl_ms: i64) -> WriteOp {
    WriteOp::Create {
        path: path.into(),
        data: Bytes::copy_from_slice(data),
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms,
    }
}
