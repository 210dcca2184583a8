//! Znode path validation and helpers, following ZooKeeper's `PathUtils.validatePath`.

use crate::error::Error;

/// The reserved system subtree; clients may read it but not change it.
pub const RESERVED_ROOT: &str = "/zookeeper";

/// Validates an absolute znode path as ZooKeeper does.
///
/// Rules: starts with `/`; no trailing `/` (except the root itself); no empty segment;
/// no `.` or `..` segment; no NUL and no code point in the ranges ZooKeeper refuses
/// (U+0001..=U+001F, U+007F..=U+009F, U+D800..=U+F8FF, U+FFF0..=U+FFFF, and every
/// character outside the BMP, which Java sees as a surrogate pair).
pub fn validate(path: &str) -> Result<(), Error> {
    validate_inner(path)
}

/// Validates the prefix of a sequential create as ZooKeeper does: the prefix with a
/// digit appended must be a valid path (`/q/` creates `/q/0000000003`, `/a/.` creates
/// `/a/.0000000003`).
pub fn validate_sequential_prefix(path: &str) -> Result<(), Error> {
    validate(&format!("{path}1")).map_err(|_| bad(path, "invalid sequential prefix"))
}

fn bad(path: &str, why: &str) -> Error {
    Error::BadArguments(format!("invalid path {path:?}: {why}"))
}

fn validate_inner(path: &str) -> Result<(), Error> {
    if path.is_empty() {
        return Err(bad(path, "path must not be empty"));
    }
    if !path.starts_with('/') {
        return Err(bad(path, "path must start with /"));
    }
    if path.len() == 1 {
        return Ok(());
    }
    let body = path;
    if body.len() > 1 && body.ends_with('/') {
        return Err(bad(path, "path must not end with /"));
    }
    // Printable ASCII (the usual path) needs no decoding: one byte test each.
    let plain = path.bytes().all(|b| (0x20..0x7f).contains(&b));
    if !plain {
        for ch in path.chars() {
            let c = ch as u32;
            let refused = c == 0
                || (0x01..=0x1f).contains(&c)
                || (0x7f..=0x9f).contains(&c)
                || (0xd800..=0xf8ff).contains(&c)
                || c >= 0xfff0;
            if refused {
                return Err(bad(path, &format!("invalid character U+{c:04X}")));
            }
        }
    }
    if body == "/" {
        return Ok(());
    }
    for segment in body[1..].split('/') {
        match segment {
            "" => return Err(bad(path, "empty segment")),
            "." | ".." => return Err(bad(path, "relative segment")),
            _ => {}
        }
    }
    Ok(())
}

/// The parent of a valid, non-root path (`/a/b` -> `/a`, `/a` -> `/`).
/// Returns `None` for the root.
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 { "/" } else { &path[..i] })
}

/// The last segment of a valid path (`/a/b` -> `b`; the root's name is empty).
pub fn name(path: &str) -> &str {
    path.rfind('/').map_or(path, |i| &path[i + 1..])
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// Whether `path` is `/zookeeper` or below it.
pub fn is_reserved(path: &str) -> bool {
    path == RESERVED_ROOT
        || (path.starts_with(RESERVED_ROOT)
            && path.as_bytes().get(RESERVED_ROOT.len()) == Some(&b'/'))
}

/// Whether `ancestor` is `path` itself or one of its ancestors.
pub fn is_ancestor_or_self(ancestor: &str, path: &str) -> bool {
    if ancestor == "/" {
        return true;
    }
    path == ancestor
        || (path.starts_with(ancestor) && path.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

/// The name ZooKeeper gives a sequential node: `%010d` of the parent's create count,
/// with Java's signed formatting (the counter wraps to `-2147483648`).
pub fn sequential_suffix(create_count: i32) -> String {
    format!("{create_count:010}")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn valid_paths() {
        for p in [
            "/",
            "/a",
            "/a/b",
            "/a.b",
            "/...",
            "/a/.b",
            "/zookeeper",
            "/ü",
            "/a b",
        ] {
            assert!(validate(p).is_ok(), "{p}");
        }
    }

    #[test]
    fn invalid_paths() {
        for p in [
            "",
            "a",
            "a/b",
            "/a/",
            "//",
            "/a//b",
            "/.",
            "/..",
            "/a/.",
            "/a/../b",
            "/a\0b",
            "/a\u{1}",
            "/a\u{7f}",
            "/a\u{9f}",
            "/\u{e000}",
            "/\u{fff0}",
            "/\u{ffff}",
        ] {
            assert!(matches!(validate(p), Err(Error::BadArguments(_))), "{p:?}");
        }
    }

    #[test]
    fn a_bad_character_is_reported_before_a_bad_segment() {
        let msg = |p: &str| validate(p).unwrap_err().to_string();
        assert!(msg("/a//b\u{1}").contains("invalid character U+0001"));
        assert!(msg("/./\u{7f}").contains("invalid character U+007F"));
        assert!(msg("/a//b/..").contains("empty segment"));
        assert!(msg("/a/../b//c").contains("relative segment"));
    }

    #[test]
    fn sequential_prefix_may_end_with_slash() {
        assert!(validate_sequential_prefix("/q/").is_ok());
        assert!(validate_sequential_prefix("/q/x-").is_ok());
        assert!(validate_sequential_prefix("/").is_ok());
        assert!(validate_sequential_prefix("/q//").is_err());
        assert!(validate_sequential_prefix("/a/.").is_ok());
        assert!(validate_sequential_prefix("/a/..").is_ok());
        assert!(validate("/q/").is_err());
    }

    #[test]
    fn parent_name_join() {
        assert_eq!(parent("/"), None);
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(name("/a/b"), "b");
        assert_eq!(name("/"), "");
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a", "b"), "/a/b");
    }

    #[test]
    fn reserved_and_ancestry() {
        assert!(is_reserved("/zookeeper"));
        assert!(is_reserved("/zookeeper/quota"));
        assert!(!is_reserved("/zookeeperx"));
        assert!(is_ancestor_or_self("/", "/a"));
        assert!(is_ancestor_or_self("/a", "/a/b"));
        assert!(!is_ancestor_or_self("/a", "/ab"));
    }

    #[test]
    fn sequential_suffix_matches_java_format() {
        assert_eq!(sequential_suffix(0), "0000000000");
        assert_eq!(sequential_suffix(42), "0000000042");
        assert_eq!(sequential_suffix(i32::MAX), "2147483647");
        assert_eq!(sequential_suffix(i32::MIN), "-2147483648");
        assert_eq!(sequential_suffix(-1), "-000000001");
    }

    /// ZooKeeper's rules stated plainly, one char at a time: what `validate` (with its
    /// ASCII fast path) must agree with.
    fn reference_valid(p: &str) -> bool {
        let char_ok = |c: char| {
            let c = c as u32;
            !(c == 0
                || (0x01..=0x1f).contains(&c)
                || (0x7f..=0x9f).contains(&c)
                || (0xd800..=0xf8ff).contains(&c)
                || c >= 0xfff0)
        };
        p == "/"
            || (p.starts_with('/')
                && !p.ends_with('/')
                && p.chars().all(char_ok)
                && p[1..].split('/').all(|s| !matches!(s, "" | "." | "..")))
    }

    proptest::proptest! {
        #[test]
        fn validate_agrees_with_the_plain_rules(
            chars in proptest::collection::vec(proptest::sample::select(vec![
                '/', '/', '/', '.', 'a', 'Z', ' ', '~', '\u{0}', '\u{1f}', '\u{7f}',
                '\u{9f}', '\u{a0}', '\u{e9}', '\u{d7ff}', '\u{f8ff}', '\u{f900}',
                '\u{ffef}', '\u{fff0}', '\u{1f600}',
            ]), 0..12),
        ) {
            let p: String = chars.into_iter().collect();
            proptest::prop_assert_eq!(validate(&p).is_ok(), reference_valid(&p), "{:?}", p);
        }
    }
}
