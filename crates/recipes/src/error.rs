//! The recipes' error type.

/// Why a recipe operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecipeError {
    /// The ensemble refused the operation (NoNode, BadVersion, ...), or the connection
    /// failed in a way the recipe could not ride out.
    #[error(transparent)]
    Client(#[from] ensemble::Error),
    /// The session ended (expired or closed) while the operation ran: any lock,
    /// lease or leadership it held is gone.
    #[error("session lost")]
    Lost,
    /// The recipe or its coordinator was closed.
    #[error("closed")]
    Closed,
    /// The caller does not hold what it tried to release.
    #[error("not held by this thread: {0}")]
    NotHeld(String),
    /// A node's data is not in the format the recipe writes.
    #[error("bad data at {path}: {reason}")]
    BadData {
        /// The node.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// An argument is invalid (empty path, zero leases, ...).
    #[error("bad argument: {0}")]
    BadArgument(String),
    /// The operation did not finish in time.
    #[error("timed out")]
    Timeout,
}

impl RecipeError {
    /// True when the error is a tree error with ZooKeeper code `code`
    /// (e.g. -101 NoNode, -110 NodeExists, -103 BadVersion).
    pub fn has_code(&self, code: i32) -> bool {
        matches!(self, RecipeError::Client(e) if e.code() == code)
    }
}

/// ZooKeeper codes the recipes test for.
pub(crate) mod code {
    /// NoNode.
    pub const NO_NODE: i32 = -101;
    /// NodeExists.
    pub const NODE_EXISTS: i32 = -110;
    /// BadVersion.
    pub const BAD_VERSION: i32 = -103;
}

/// Shorthand for recipe results.
pub type Result<T, E = RecipeError> = std::result::Result<T, E>;
