//! A stable 64-bit hash and the incremental tree digest built from it.
//!
//! The digest of a tree is the wrapping sum, over its nodes, of a hash of each node's
//! path and metadata plus a hash of its path and data. Because the sum is order-free, it
//! is updated in O(1) hashing work per change (subtract a node's old terms, add the new
//! ones), like ZooKeeper 3.6's `DigestCalculator`, and two replicas compare trees by
//! comparing one number. The hash is fixed (no per-process seed), so digests agree across
//! machines and releases; it is not meant to resist deliberate collisions.

const K0: u64 = 0x9e37_79b9_7f4a_7c15;
const K1: u64 = 0xc2b2_ae3d_27d4_eb4f;
const K2: u64 = 0x1656_67b1_9e37_79f9;

fn fmix64(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// An incremental stable 64-bit hasher (a multiply-rotate word mixer with a
/// MurmurHash3-style finaliser).
#[derive(Debug, Clone)]
pub struct StableHasher {
    state: u64,
    len: u64,
}

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher::new(0)
    }
}

impl StableHasher {
    /// A hasher with a domain-separating seed.
    pub fn new(seed: u64) -> StableHasher {
        StableHasher {
            state: seed ^ K0,
            len: 0,
        }
    }

    #[inline]
    fn word(&mut self, w: u64) {
        self.state = (self.state ^ w.wrapping_mul(K1))
            .rotate_left(29)
            .wrapping_mul(K2);
    }

    /// Feeds bytes (length-delimited, so `("ab","c")` and `("a","bc")` differ).
    pub fn bytes(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.word(u64::from_le_bytes(w) ^ 0x80);
        }
        self.word(bytes.len() as u64);
        self.len = self.len.wrapping_add(bytes.len() as u64);
    }

    /// Feeds one integer.
    pub fn u64(&mut self, v: u64) {
        self.word(v);
        self.len = self.len.wrapping_add(8);
    }

    /// The hash of everything fed so far.
    pub fn finish(&self) -> u64 {
        fmix64(self.state ^ self.len)
    }
}

/// Hash of a byte string with a seed.
pub fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = StableHasher::new(seed);
    h.bytes(bytes);
    h.finish()
}

/// A [`std::hash::BuildHasher`] over [`StableHasher`] with a per-map random seed:
/// for maps on the write path (paths, connection ids), where SipHash (std's default)
/// cost several percent of the leader's time. Nothing that reaches a replica depends on
/// the seed. Unlike SipHash the mixer is not a keyed PRF, so a client that crafts
/// colliding paths could slow lookups in `Prep`'s overlay; that map holds only the
/// in-flight changes (bounded by the proposal window), and the connection maps are
/// keyed by ids the node assigns.
#[derive(Debug, Clone)]
pub struct FastHash(u64);

impl Default for FastHash {
    fn default() -> Self {
        use std::hash::BuildHasher;
        FastHash(std::collections::hash_map::RandomState::new().hash_one(0x9a7b_u64))
    }
}

impl std::hash::BuildHasher for FastHash {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(StableHasher::new(self.0))
    }
}

/// The hasher of [`FastHash`].
#[derive(Debug, Clone)]
pub struct FastHasher(StableHasher);

impl std::hash::Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.bytes(bytes);
    }
    fn write_u8(&mut self, v: u8) {
        self.0.u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0.u64(v);
    }
    fn write_usize(&mut self, v: usize) {
        self.0.u64(v as u64);
    }
    fn finish(&self) -> u64 {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn path_hash_agrees_for_equal_keys_and_spreads_others() {
        use std::hash::BuildHasher;
        let b = FastHash::default();
        assert_eq!(b.hash_one("/a/b"), b.hash_one(String::from("/a/b")));
        let hs: std::collections::HashSet<u64> =
            (0..1000).map(|i| b.hash_one(format!("/k{i}"))).collect();
        assert_eq!(hs.len(), 1000);
        let mut m: std::collections::HashMap<std::sync::Arc<str>, u32, FastHash> =
            std::collections::HashMap::default();
        m.insert("/x".into(), 1);
        assert_eq!(m.get("/x"), Some(&1));
    }

    #[test]
    fn stable_values() {
        // Pinned so an accidental change to the hash (which would make replicas of
        // different versions disagree) fails loudly.
        assert_eq!(hash_bytes(0, b""), hash_bytes(0, b""));
        assert_ne!(hash_bytes(0, b"a"), hash_bytes(1, b"a"));
        assert_ne!(hash_bytes(0, b"ab"), hash_bytes(0, b"ba"));
        let mut a = StableHasher::new(7);
        a.bytes(b"ab");
        a.bytes(b"c");
        let mut b = StableHasher::new(7);
        b.bytes(b"a");
        b.bytes(b"bc");
        assert_ne!(a.finish(), b.finish());
        assert_eq!(
            hash_bytes(3, b"hello world, this is more than 8 bytes"),
            1_948_586_173_708_710_688
        );
    }
}
