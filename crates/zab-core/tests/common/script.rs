//! A small scenario language, so that protocol cases read like the papers:
//!
//! ```text
//! crash 1                  # server 1 goes down
//! elect                    # fault-free rounds until every live server serves
//! write 3                  # a client write enters at server 3
//! deliver 3->1 NEWLEADER   # deliver 3->1 in order, up to and including a NEWLEADER
//! drop 2->3 COMMIT         # lose the oldest COMMIT from 2 to 3
//! expect applied 1 1:1 2:1 # server 1 applied exactly these zxids
//! ```
//! Commands: `tick <id|all> [n]`, `round [n]`, `elect`, `elect except <id>`,
//! `await <a>-><b> KIND` (run until such a message is in flight), `settle`, `flush <id|all>`,
//! `write <id>`, `deliver <a>-><b> [KIND]`, `drop <a>-><b> KIND`, `crash <id>`,
//! `restart <id>`, `partition <ids..>`, `heal`, and `expect` with `leader <id>`,
//! `role <id> <role>`, `phase <id> <phase>`, `epoch <id> <n>`, `applied <id> <zxids..>`,
//! `same <a> <b>` (same applied txns), `delivered <a>-><b> KIND`,
//! `not-delivered <a>-><b> KIND`, `in-flight` / `not-in-flight <a>-><b> KIND`, `pending <id>` (unsynced
//! storage operations).

use zab_core::{Message, Phase, Role, ServerId, Zxid};

use super::Cluster;

fn id(word: &str) -> ServerId {
    ServerId(
        word.parse()
            .unwrap_or_else(|_| panic!("not a server id: {word}")),
    )
}

fn link(word: &str) -> (u64, u64) {
    let (a, b) = word
        .split_once("->")
        .unwrap_or_else(|| panic!("not a link a->b: {word}"));
    (id(a).0, id(b).0)
}

fn zxid(word: &str) -> Zxid {
    let (e, c) = word
        .split_once(':')
        .unwrap_or_else(|| panic!("not a zxid e:c: {word}"));
    Zxid::new(e.parse().unwrap(), c.parse().unwrap())
}

impl Cluster {
    /// Runs `text`, one command per line; panics with the line on a failed expectation.
    pub fn script(&mut self, text: &str) {
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            self.log(format!("script: {line}"));
            let words: Vec<&str> = line.split_whitespace().collect();
            if let Err(why) = self.command(&words) {
                self.fail(&format!("script line {}: `{line}`: {why}", n + 1));
            }
        }
    }

    fn targets(&self, word: &str) -> Vec<ServerId> {
        if word == "all" {
            self.ids()
        } else {
            vec![id(word)]
        }
    }

    fn command(&mut self, w: &[&str]) -> Result<(), String> {
        let count = |i: usize| w.get(i).map_or(1, |x| x.parse::<usize>().unwrap());
        match w {
            ["tick", who, ..] => {
                for _ in 0..count(2) {
                    for s in self.targets(who) {
                        self.tick(s);
                    }
                }
            }
            ["round", ..] => {
                for _ in 0..count(1) {
                    self.round();
                }
            }
            ["elect"] => self.run_until(100, "every live server serving", |c| {
                c.leader().is_some()
                    && c.nodes
                        .values()
                        .filter(|n| n.core.is_some())
                        .all(|n| n.status().is_some_and(|s| s.phase == Phase::Broadcast))
            }),
            ["elect", "except", out] => {
                let out = id(out);
                self.run_until(100, "every other server serving", move |c| {
                    c.leader().is_some()
                        && c.nodes
                            .values()
                            .filter(|n| n.id != out && n.core.is_some())
                            .all(|n| n.status().is_some_and(|s| s.phase == Phase::Broadcast))
                });
            }
            ["await", l, kind] => {
                // Deliver in order, flushing storage and ticking when idle, until a
                // message of `kind` is in flight on the link.
                let (a, b) = link(l);
                let found = |c: &Cluster| {
                    c.net.iter().any(|p| {
                        (p.from.0, p.to.0) == (a, b)
                            && Message::decode(&p.bytes).is_ok_and(|m| m.kind() == *kind)
                    })
                };
                let mut steps = 0;
                while !found(self) {
                    steps += 1;
                    if steps > 2000 {
                        return Err(format!("no {kind} ever in flight"));
                    }
                    if self.net.is_empty() {
                        self.flush_all();
                        for s in self.ids() {
                            self.tick(s);
                        }
                    } else {
                        self.deliver_at(0);
                        self.flush_all();
                    }
                }
            }
            ["settle"] => self.settle(),
            ["flush", who] => {
                for s in self.targets(who) {
                    self.flush(s, usize::MAX);
                }
            }
            ["write", who] => {
                self.write(id(who));
            }
            ["deliver", l] => {
                let (a, b) = link(l);
                if !self.deliver(a, b) {
                    return Err("nothing in flight".into());
                }
            }
            ["deliver", l, kind] => {
                let (a, b) = link(l);
                loop {
                    let next = self.peek(a, b).ok_or(format!("no {kind} in flight"))?;
                    self.deliver(a, b);
                    if next.kind() == *kind {
                        break;
                    }
                }
            }
            ["drop", l, kind] => {
                let (a, b) = link(l);
                if !self.drop_kind(a, b, kind) {
                    return Err(format!("no {kind} in flight"));
                }
            }
            ["crash", who] => self.crash(id(who)),
            ["restart", who] => self.restart(id(who)),
            ["partition", side @ ..] => {
                let side: Vec<u64> = side.iter().map(|x| id(x).0).collect();
                self.partition(&side);
            }
            ["heal"] => self.heal(),
            ["expect", what @ ..] => self.expect(what)?,
            _ => return Err("unknown command".into()),
        }
        Ok(())
    }

    fn expect(&self, w: &[&str]) -> Result<(), String> {
        let check = |ok: bool, what: String| if ok { Ok(()) } else { Err(what) };
        match w {
            ["leader", who] => check(
                self.leader() == Some(id(who)),
                format!("leader is {:?}", self.leader()),
            ),
            ["role", who, role] => {
                let want = match *role {
                    "looking" => Role::Looking,
                    "following" => Role::Following,
                    "leading" => Role::Leading,
                    "observing" => Role::Observing,
                    other => return Err(format!("unknown role {other}")),
                };
                let got = self.status(id(who).0).role;
                check(got == want, format!("role is {got:?}"))
            }
            ["phase", who, phase] => {
                let want = match *phase {
                    "election" => Phase::Election,
                    "discovery" => Phase::Discovery,
                    "sync" => Phase::Sync,
                    "broadcast" => Phase::Broadcast,
                    other => return Err(format!("unknown phase {other}")),
                };
                let got = self.status(id(who).0).phase;
                check(got == want, format!("phase is {got:?}"))
            }
            ["epoch", who, e] => {
                let got = self.status(id(who).0).leader_epoch;
                check(got.to_string() == *e, format!("epoch is {got}"))
            }
            ["applied", who, zs @ ..] => {
                let want: Vec<Zxid> = zs.iter().map(|z| zxid(z)).collect();
                let got: Vec<Zxid> = self.nodes[&id(who)]
                    .applied
                    .iter()
                    .map(|e| e.zxid)
                    .collect();
                check(got == want, format!("applied {got:?}"))
            }
            ["same", a, b] => {
                let za: Vec<Zxid> = self.nodes[&id(a)].applied.iter().map(|e| e.zxid).collect();
                let zb: Vec<Zxid> = self.nodes[&id(b)].applied.iter().map(|e| e.zxid).collect();
                check(za == zb, format!("{za:?} vs {zb:?}"))
            }
            ["delivered", l, kind] => {
                let (a, b) = link(l);
                check(
                    self.delivered
                        .iter()
                        .any(|(f, t, k)| (*f, *t) == (a, b) && k == kind),
                    format!("no {kind} delivered"),
                )
            }
            ["not-delivered", l, kind] => {
                let (a, b) = link(l);
                check(
                    !self
                        .delivered
                        .iter()
                        .any(|(f, t, k)| (*f, *t) == (a, b) && k == kind),
                    format!("a {kind} was delivered"),
                )
            }
            ["pending", who] => check(self.pending_ops(id(who).0) > 0, "storage is idle".into()),
            ["not-in-flight", l, kind] => {
                let (a, b) = link(l);
                check(
                    !self.net.iter().any(|p| {
                        (p.from.0, p.to.0) == (a, b)
                            && Message::decode(&p.bytes).is_ok_and(|m| m.kind() == *kind)
                    }),
                    format!("a {kind} is in flight"),
                )
            }
            ["in-flight", l, kind] => {
                let (a, b) = link(l);
                check(
                    self.net.iter().any(|p| {
                        (p.from.0, p.to.0) == (a, b)
                            && Message::decode(&p.bytes).is_ok_and(|m| m.kind() == *kind)
                    }),
                    format!("no {kind} in flight"),
                )
            }
            _ => Err("unknown expectation".into()),
        }
    }
}
