//! ACL values and the permission check, with ZooKeeper's schemes and permission bits.

use crate::error::Error;

/// A set of ZooKeeper permission bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Perms(pub i32);

impl Perms {
    /// Read data and list children.
    pub const READ: Perms = Perms(1);
    /// Set data.
    pub const WRITE: Perms = Perms(2);
    /// Create children.
    pub const CREATE: Perms = Perms(4);
    /// Delete children.
    pub const DELETE: Perms = Perms(8);
    /// Set the ACL.
    pub const ADMIN: Perms = Perms(16);
    /// Every permission.
    pub const ALL: Perms = Perms(31);

    /// Whether every bit of `other` is set in `self`.
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for Perms {
    type Output = Perms;
    fn bitor(self, rhs: Perms) -> Perms {
        Perms(self.0 | rhs.0)
    }
}

/// An identity: a scheme and an id within it (`world:anyone`, `digest:user:hash`,
/// `ip:10.0.0.0/8`, `auth:` before it is expanded).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    /// The scheme (`world`, `digest`, `ip`, `auth`, `super`).
    pub scheme: String,
    /// The id within the scheme.
    pub id: String,
}

impl Id {
    /// Builds an id.
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Id {
        Id {
            scheme: scheme.into(),
            id: id.into(),
        }
    }

    /// `world:anyone`.
    pub fn anyone() -> Id {
        Id::new("world", "anyone")
    }
}

/// One ACL entry: permissions granted to an identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Acl {
    /// The granted permissions.
    pub perms: Perms,
    /// Who gets them.
    pub id: Id,
}

impl Acl {
    /// ZooKeeper's `OPEN_ACL_UNSAFE`: everything for everyone.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: Perms::ALL,
            id: Id::anyone(),
        }]
    }

    /// ZooKeeper's `READ_ACL_UNSAFE`: read for everyone.
    pub fn read_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: Perms::READ,
            id: Id::anyone(),
        }]
    }

    /// ZooKeeper's `CREATOR_ALL_ACL`: everything for the creator's authenticated ids.
    pub fn creator_all() -> Vec<Acl> {
        vec![Acl {
            perms: Perms::ALL,
            id: Id::new("auth", ""),
        }]
    }
}

/// Checks that an ACL list is well formed and expands `auth` entries into the
/// caller's authenticated ids (ZooKeeper's `fixupACL`).
///
/// Errors: [`Error::InvalidAcl`] for an empty list, an unknown scheme, a malformed
/// `ip` or `digest` id, or an `auth` entry when the caller has no authenticated id.
pub fn fixup(acl: &[Acl], auth: &[Id]) -> Result<Vec<Acl>, Error> {
    if acl.is_empty() {
        return Err(Error::InvalidAcl("empty ACL list".into()));
    }
    // As ZooKeeper's removeDuplicates: drop every repeated entry (keeping the first)
    // before `auth` expansion; duplicates produced by the expansion are kept.
    let mut unique: Vec<&Acl> = Vec::with_capacity(acl.len());
    for entry in acl {
        if !unique.contains(&entry) {
            unique.push(entry);
        }
    }
    let mut out: Vec<Acl> = Vec::with_capacity(unique.len());
    for entry in unique {
        // Ensemble refuses unknown permission bits (ZooKeeper stores them silently).
        if entry.perms.0 & !Perms::ALL.0 != 0 {
            return Err(Error::InvalidAcl(format!(
                "unknown permission bits {}",
                entry.perms.0
            )));
        }
        match entry.id.scheme.as_str() {
            "world" if entry.id.id == "anyone" => out.push(entry.clone()),
            "auth" => {
                // Only ids of real authentication providers: not world, ip or super
                // (super has no provider in ZooKeeper and is never written into ACLs).
                let mut found = false;
                for id in auth
                    .iter()
                    .filter(|id| !matches!(id.scheme.as_str(), "world" | "ip" | "super"))
                {
                    found = true;
                    out.push(Acl {
                        perms: entry.perms,
                        id: id.clone(),
                    });
                }
                if !found {
                    return Err(Error::InvalidAcl(
                        "auth scheme without an authenticated id".into(),
                    ));
                }
            }
            "digest" if valid_digest_id(&entry.id.id) => out.push(entry.clone()),
            "ip" if parse_ip_pattern(&entry.id.id).is_some() => out.push(entry.clone()),
            _ => {
                return Err(Error::InvalidAcl(format!(
                    "invalid id {}:{}",
                    entry.id.scheme, entry.id.id
                )))
            }
        }
    }
    Ok(out)
}

/// ZooKeeper's digest id check: `id.split(":").length == 2` with Java's `split`, which
/// drops trailing empty strings (so `a:b:` and `:h` pass, `a` and `a:b:c` do not).
fn valid_digest_id(id: &str) -> bool {
    let mut parts: Vec<&str> = id.split(':').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    parts.len() == 2
}

/// Parses `a.b.c.d` or `a.b.c.d/bits` into (address, prefix length).
fn parse_ip_pattern(pattern: &str) -> Option<([u8; 4], u32)> {
    let (addr, bits) = match pattern.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok().filter(|b| *b <= 32)?),
        None => (pattern, 32),
    };
    let mut octets = [0u8; 4];
    let mut n = 0;
    for part in addr.split('.') {
        if n == 4 {
            return None;
        }
        octets[n] = part.parse().ok()?;
        n += 1;
    }
    (n == 4).then_some((octets, bits))
}

fn ip_matches(pattern: &str, client: &str) -> bool {
    let (Some((net, bits)), Some((addr, _))) =
        (parse_ip_pattern(pattern), parse_ip_pattern(client))
    else {
        return false;
    };
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from_be_bytes(net) & mask == u32::from_be_bytes(addr) & mask
}

/// Whether a caller with authenticated ids `auth` holds `perm` on a node with `acl`.
///
/// As ZooKeeper: an empty ACL and a `super` id pass every check; `world:anyone` matches everyone; `ip`
/// entries match the caller's `ip` id by network prefix; other schemes match by equal
/// scheme and id.
pub fn check(acl: &[Acl], perm: Perms, auth: &[Id]) -> bool {
    // As ZooKeeper's checkACL: an empty ACL allows everything (fixup never produces one).
    if acl.is_empty() || auth.iter().any(|id| id.scheme == "super") {
        return true;
    }
    acl.iter().filter(|a| a.perms.contains(perm)).any(|a| {
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return true;
        }
        auth.iter().any(|id| {
            id.scheme == a.id.scheme
                && if a.id.scheme == "ip" {
                    ip_matches(&a.id.id, &id.id)
                } else {
                    id.id == a.id.id
                }
        })
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn digest(user: &str) -> Id {
        Id::new("digest", format!("{user}:hash"))
    }

    #[test]
    fn world_and_digest() {
        let acl = vec![
            Acl {
                perms: Perms::READ,
                id: Id::anyone(),
            },
            Acl {
                perms: Perms::ALL,
                id: digest("bob"),
            },
        ];
        assert!(check(&acl, Perms::READ, &[]));
        assert!(!check(&acl, Perms::WRITE, &[]));
        assert!(check(&acl, Perms::WRITE, &[digest("bob")]));
        assert!(!check(&acl, Perms::WRITE, &[digest("eve")]));
        assert!(check(&acl, Perms::ADMIN, &[Id::new("super", "admin")]));
    }

    #[test]
    fn ip_prefixes() {
        let acl = vec![Acl {
            perms: Perms::READ,
            id: Id::new("ip", "10.1.0.0/16"),
        }];
        assert!(check(&acl, Perms::READ, &[Id::new("ip", "10.1.2.3")]));
        assert!(!check(&acl, Perms::READ, &[Id::new("ip", "10.2.2.3")]));
        let exact = vec![Acl {
            perms: Perms::READ,
            id: Id::new("ip", "127.0.0.1"),
        }];
        assert!(check(&exact, Perms::READ, &[Id::new("ip", "127.0.0.1")]));
        assert!(!check(&exact, Perms::READ, &[Id::new("ip", "127.0.0.2")]));
    }

    #[test]
    fn fixup_dedups_before_expansion_like_zookeeper() {
        let r = |id: Id| Acl {
            perms: Perms::READ,
            id,
        };
        let acl = [r(Id::anyone()), r(digest("a")), r(Id::anyone())];
        assert_eq!(
            fixup(&acl, &[]).unwrap(),
            vec![r(Id::anyone()), r(digest("a"))]
        );
        for ok in ["a:b", "a:b:", ":h"] {
            assert!(valid_digest_id(ok), "{ok}");
        }
        for bad in ["a", "a:b:c", ""] {
            assert!(!valid_digest_id(bad), "{bad}");
        }
        assert!(
            check(&[], Perms::ADMIN, &[]),
            "empty ACL allows, as ZooKeeper"
        );
    }

    #[test]
    fn fixup_rules() {
        assert!(matches!(fixup(&[], &[]), Err(Error::InvalidAcl(_))));
        assert!(matches!(
            fixup(&Acl::creator_all(), &[]),
            Err(Error::InvalidAcl(_))
        ));
        let fixed = fixup(
            &Acl::creator_all(),
            &[Id::new("ip", "1.2.3.4"), digest("bob")],
        )
        .unwrap();
        assert_eq!(
            fixed,
            vec![Acl {
                perms: Perms::ALL,
                id: digest("bob")
            }]
        );
        assert!(fixup(&Acl::open_unsafe(), &[]).is_ok());
        let bad_ip = [Acl {
            perms: Perms::READ,
            id: Id::new("ip", "300.1.1.1"),
        }];
        assert!(fixup(&bad_ip, &[]).is_err());
        let bad_scheme = [Acl {
            perms: Perms::READ,
            id: Id::new("kerberos", "x"),
        }];
        assert!(fixup(&bad_scheme, &[]).is_err());
        let bad_perm = [Acl {
            perms: Perms(64),
            id: Id::anyone(),
        }];
        assert!(fixup(&bad_perm, &[]).is_err());
    }
}
