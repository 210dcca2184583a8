//! The client-visible error type, mirroring ZooKeeper's error codes.

use datatree::OpResult;

/// Why an operation failed. Every variant has ZooKeeper's numeric code ([`Error::code`]).
///
/// Tree errors (NoNode, NodeExists, BadVersion, ...) come from the `datatree` crate
/// unchanged, wrapped in [`Error::Tree`]; connection, session and server conditions have
/// their own variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error of the operation itself (NoNode, NodeExists, BadVersion, NoAuth, ...).
    #[error(transparent)]
    Tree(#[from] datatree::Error),
    /// A multi failed: one result per op, ZooKeeper style (ops before the failing one
    /// `Ok`, the failing one its error, the rest `RuntimeInconsistency`). Nothing was
    /// applied.
    #[error("multi failed: {}", first_multi_error(.0))]
    MultiFailed(Vec<OpResult>),
    /// -4: the node serving the session is not (or no longer) part of a serving quorum.
    /// The outcome of a write that fails this way is unknown.
    #[error("connection loss")]
    ConnectionLoss,
    /// -7: no answer within the client's operation timeout.
    #[error("operation timed out")]
    OperationTimeout,
    /// -112: the session expired (or was closed); it cannot be used any more.
    #[error("session expired")]
    SessionExpired,
    /// -118: the session moved to another connection.
    #[error("session moved")]
    SessionMoved,
    /// -127: too many requests are queued; retry later.
    #[error("throttled: {0}")]
    Throttled(&'static str),
    /// -12: the server does not know the session.
    #[error("unknown session")]
    UnknownSession,
    /// -5: a request or reply could not be encoded or decoded.
    #[error("marshalling error: {0}")]
    Marshalling(String),
    /// -1: this server stopped serving because its replica diverged from the leader's
    /// (digest mismatch), or it is shutting down.
    #[error("server not serving: {0}")]
    NotServing(String),
    /// -115: addAuth failed (unknown scheme or malformed credentials). Unlike
    /// ZooKeeper, which closes the connection (and the client sees its session end
    /// with AuthFailed), Ensemble only fails the addAuth call: the session and the
    /// ids it already holds stay as they were.
    #[error("authentication failed: {0}")]
    AuthFailed(String),
}

fn first_multi_error(results: &[OpResult]) -> String {
    results
        .iter()
        .find_map(|r| match r {
            OpResult::Error(e) if *e != datatree::Error::RuntimeInconsistency => {
                Some(e.to_string())
            }
            _ => None,
        })
        .unwrap_or_else(|| "runtime inconsistency".to_string())
}

impl Error {
    /// ZooKeeper's numeric error code.
    pub fn code(&self) -> i32 {
        match self {
            Error::Tree(e) => e.code(),
            Error::MultiFailed(results) => results
                .iter()
                .find_map(|r| match r {
                    OpResult::Error(e) if *e != datatree::Error::RuntimeInconsistency => {
                        Some(e.code())
                    }
                    _ => None,
                })
                .unwrap_or(-2),
            Error::ConnectionLoss => -4,
            Error::OperationTimeout => -7,
            Error::SessionExpired => -112,
            Error::SessionMoved => -118,
            Error::Throttled(_) => -127,
            Error::UnknownSession => -12,
            Error::Marshalling(_) => -5,
            Error::NotServing(_) => -1,
            Error::AuthFailed(_) => -115,
        }
    }

    /// Rebuilds an error from its code and message (as carried in replicated error
    /// txns). Unknown codes become a system error carrying the text.
    pub fn from_code(code: i32, msg: String) -> Error {
        use datatree::Error as T;
        match code {
            -1 => Error::Tree(T::SystemError(msg)),
            -2 => Error::Tree(T::RuntimeInconsistency),
            -4 => Error::ConnectionLoss,
            -5 => Error::Marshalling(msg),
            -6 => Error::Tree(T::Unimplemented(msg)),
            -7 => Error::OperationTimeout,
            -8 => Error::Tree(T::BadArguments(msg)),
            -12 => Error::UnknownSession,
            -101 => Error::Tree(T::NoNode(msg)),
            -102 => Error::Tree(T::NoAuth(msg)),
            -103 => Error::Tree(T::BadVersion(msg)),
            -108 => Error::Tree(T::NoChildrenForEphemerals(msg)),
            -110 => Error::Tree(T::NodeExists(msg)),
            -111 => Error::Tree(T::NotEmpty(msg)),
            -112 => Error::SessionExpired,
            -114 => Error::Tree(T::InvalidAcl(msg)),
            -115 => Error::AuthFailed(msg),
            -118 => Error::SessionMoved,
            -121 => Error::Tree(T::NoWatcher(msg)),
            -125 => Error::Tree(T::QuotaExceeded(msg)),
            -127 => Error::Throttled("leader"),
            _ => Error::Tree(T::SystemError(format!("code {code}: {msg}"))),
        }
    }

    /// The message part used by [`Error::from_code`].
    pub(crate) fn message(&self) -> String {
        match self {
            Error::Tree(e) => match e {
                datatree::Error::SystemError(m)
                | datatree::Error::Unimplemented(m)
                | datatree::Error::BadArguments(m)
                | datatree::Error::NoNode(m)
                | datatree::Error::NoAuth(m)
                | datatree::Error::BadVersion(m)
                | datatree::Error::NoChildrenForEphemerals(m)
                | datatree::Error::NodeExists(m)
                | datatree::Error::NotEmpty(m)
                | datatree::Error::InvalidAcl(m)
                | datatree::Error::NoWatcher(m)
                | datatree::Error::QuotaExceeded(m) => m.clone(),
                other => other.to_string(),
            },
            Error::AuthFailed(m) => m.clone(),
            other => other.to_string(),
        }
    }

    /// True for errors after which a retry on the same or another server may succeed
    /// (connection loss, throttling, timeouts).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLoss | Error::Throttled(_) | Error::OperationTimeout
        )
    }
}

impl From<session::SessionError> for Error {
    fn from(e: session::SessionError) -> Self {
        use session::SessionError as S;
        match e {
            S::UnknownSession(_) => Error::UnknownSession,
            S::SessionExpired(_) | S::BadPassword(_) => Error::SessionExpired,
            S::SessionMoved(_) => Error::SessionMoved,
            S::StaleServer { .. } => Error::ConnectionLoss,
            other => Error::Tree(datatree::Error::BadArguments(other.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_from_code() {
        let all = [
            Error::Tree(datatree::Error::NoNode("/a".into())),
            Error::Tree(datatree::Error::NodeExists("/a".into())),
            Error::Tree(datatree::Error::BadVersion("/a".into())),
            Error::Tree(datatree::Error::NotEmpty("/a".into())),
            Error::ConnectionLoss,
            Error::SessionExpired,
            Error::SessionMoved,
            Error::UnknownSession,
            Error::AuthFailed("digest".into()),
        ];
        for e in all {
            let back = Error::from_code(e.code(), e.message());
            assert_eq!(back, e);
        }
    }

    #[test]
    fn multi_failure_reports_the_first_real_error() {
        let e = Error::MultiFailed(vec![
            OpResult::Ok,
            OpResult::Error(datatree::Error::NoNode("/x".into())),
            OpResult::Error(datatree::Error::RuntimeInconsistency),
        ]);
        assert_eq!(e.code(), -101);
    }
}
