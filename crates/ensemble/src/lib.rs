//! `ensemble`: the embeddable Node, its client API and the in-process cluster harness.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
