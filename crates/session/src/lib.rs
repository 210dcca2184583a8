//! `session`: see the crate description in Cargo.toml.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
