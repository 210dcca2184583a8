//! TCP transport.
pub mod frame;
