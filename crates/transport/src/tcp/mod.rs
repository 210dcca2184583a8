//! TCP
