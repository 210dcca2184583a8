//! Names of sequential nodes: their counters and the order they give.

/// The counter ZooKeeper appended to a sequential node's name (its trailing ten
/// digits), or `None` if the name does not end in one.
pub fn sequence(name: &str) -> Option<i64> {
    let digits = name.len().checked_sub(10)?;
    let tail = name.get(digits..)?;
    if !tail.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    tail.parse().ok()
}

/// Sorts sequential node names by counter (names without one last, by name).
pub fn sort_by_sequence(names: &mut [String]) {
    names.sort_by(|a, b| {
        let ka = sequence(a).map_or((1, 0), |s| (0, s));
        let kb = sequence(b).map_or((1, 0), |s| (0, s));
        ka.cmp(&kb).then_with(|| a.cmp(b))
    });
}

/// The last path segment.
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// `parent/child`, with a single slash.
pub fn join(parent: &str, child: &str) -> String {
    if parent.ends_with('/') {
        format!("{parent}{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Checks that `path` is an absolute znode path that is not the root.
pub fn check_path(path: &str) -> crate::Result<()> {
    if !path.starts_with('/') || path.len() < 2 || path.ends_with('/') || path.contains("//") {
        return Err(crate::RecipeError::BadArgument(format!(
            "not a usable znode path: {path:?}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_trailing_counter() {
        assert_eq!(sequence("lock-0000000042"), Some(42));
        assert_eq!(sequence("_c_ab-lock-0000000007"), Some(7));
        assert_eq!(sequence("lock-42"), None);
        assert_eq!(sequence("ready"), None);
    }

    #[test]
    fn paths_are_joined_and_checked() {
        assert_eq!(join("/a", "b"), "/a/b");
        assert_eq!(join("/", "b"), "/b");
        assert_eq!(basename("/a/b"), "b");
        assert!(check_path("/a/b").is_ok());
        assert!(check_path("/").is_err());
        assert!(check_path("a").is_err());
        assert!(check_path("/a/").is_err());
    }

    proptest! {
        /// Sorting by sequence agrees with a model that sorts by the number alone,
        /// whatever the (guid) prefixes are.
        #[test]
        fn order_follows_counters(items in proptest::collection::vec((0u32..1_000_000, "[a-f0-9]{1,8}"), 0..30)) {
            let mut names: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(i, (n, p))| format!("_c_{p}-lock-{:010}", u64::from(*n) * 100 + i as u64))
                .collect();
            sort_by_sequence(&mut names);
            let seqs: Vec<i64> = names.iter().map(|n| sequence(n).unwrap()).collect();
            let mut model = seqs.clone();
            model.sort_unstable();
            prop_assert_eq!(seqs, model);
        }
    }
}
