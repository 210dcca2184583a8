//! Per-path quotas on node count and data bytes.

/// A quota: limits on the number of nodes (the quota's own node included) and on the
/// total data bytes in a subtree. A negative limit means "no limit".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Maximum number of nodes, or -1.
    pub count: i64,
    /// Maximum total data bytes, or -1.
    pub bytes: i64,
}

/// A quota's limit and the subtree's current usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QuotaUsage {
    pub(crate) limit: Quota,
    pub(crate) count: i64,
    pub(crate) bytes: i64,
}
