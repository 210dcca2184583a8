//! Integration tests and runnable examples for the Ensemble workspace.
//!
//! This package owns `examples/` and `tests/`; the library code lives in the crates
//! under `crates/`.
