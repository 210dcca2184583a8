//! Session passwords.
//!
//! A client re-attaching to its session on another server presents the session id and
//! the password it was given. Every server must be able to check it without having
//! seen the session's creation, so the password is a pure function of the session id
//! and a secret shared by the whole ensemble (ZooKeeper seeds a `java.util.Random`
//! with `sessionId ^ superSecret` for the same reason).
//!
//! Here the secret is a 256-bit ChaCha20 key and the session id selects the ChaCha
//! stream; the first 16 bytes of that stream are the password. This is deterministic,
//! independent of the server that created the session, and, unlike ZooKeeper's fixed
//! constant, hard to guess for anyone who does not know the ensemble's secret.

use std::fmt;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

use crate::id::SessionId;

/// Length of a session password in bytes (as in ZooKeeper).
pub const PASSWORD_LEN: usize = 16;

/// The per-ensemble secret from which every session password is derived. All servers
/// of an ensemble must use the same secret.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordSecret([u8; 32]);

impl PasswordSecret {
    /// A secret from 32 caller-supplied bytes (for example read from configuration).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A secret expanded from a 64-bit seed: convenient for tests and simulations;
    /// real deployments should prefer [`PasswordSecret::from_bytes`].
    pub fn from_seed(seed: u64) -> Self {
        let mut bytes = [0u8; 32];
        ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The password of session `id` under this secret.
    pub fn password_for(&self, id: SessionId) -> Password {
        let mut rng = ChaCha20Rng::from_seed(self.0);
        // The id's bits select the stream; `as` keeps all 64 bits (no sign issues).
        rng.set_stream(id.0 as u64);
        let mut out = [0u8; PASSWORD_LEN];
        rng.fill_bytes(&mut out);
        Password(out)
    }

    /// Whether `candidate` is the password of session `id`. Compares in constant time
    /// with respect to the password bytes; a wrong length is simply a mismatch.
    pub fn verify(&self, id: SessionId, candidate: &[u8]) -> bool {
        let expected = self.password_for(id);
        if candidate.len() != PASSWORD_LEN {
            return false;
        }
        expected
            .0
            .iter()
            .zip(candidate)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl fmt::Debug for PasswordSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret.
        f.write_str("PasswordSecret(..)")
    }
}

/// A session password: 16 bytes handed to the client with its session id.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Password(pub [u8; PASSWORD_LEN]);

impl Password {
    /// The password bytes, as sent to the client.
    pub fn as_bytes(&self) -> &[u8; PASSWORD_LEN] {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_per_id_and_secret() {
        let s1 = PasswordSecret::from_seed(7);
        let s1_again = PasswordSecret::from_seed(7);
        let s2 = PasswordSecret::from_seed(8);
        let id = SessionId(0x0100_0000_0000_0001);
        assert_eq!(s1.password_for(id), s1_again.password_for(id));
        assert_ne!(s1.password_for(id), s2.password_for(id));
        assert_ne!(s1.password_for(id), s1.password_for(SessionId(id.0 + 1)));
    }

    #[test]
    fn negative_ids_work() {
        let s = PasswordSecret::from_seed(1);
        let id = SessionId(-5);
        let p = s.password_for(id);
        assert!(s.verify(id, p.as_bytes()));
        assert_ne!(p, s.password_for(SessionId(5)));
    }

    #[test]
    fn verify_rejects_wrong_bytes_and_lengths() {
        let s = PasswordSecret::from_seed(3);
        let id = SessionId(42);
        let mut p = s.password_for(id).0;
        assert!(s.verify(id, &p));
        assert!(!s.verify(id, &p[..15]));
        assert!(!s.verify(id, &[]));
        let mut longer = p.to_vec();
        longer.push(0);
        assert!(!s.verify(id, &longer));
        p[15] ^= 1;
        assert!(!s.verify(id, &p));
        assert!(!s.verify(SessionId(43), s.password_for(id).as_bytes()));
    }

    #[test]
    fn debug_hides_secrets() {
        let s = PasswordSecret::from_seed(3);
        assert_eq!(format!("{s:?}"), "PasswordSecret(..)");
        assert_eq!(
            format!("{:?}", s.password_for(SessionId(1))),
            "Password(..)"
        );
    }
}
