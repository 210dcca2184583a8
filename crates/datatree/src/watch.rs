//! The watch registry (being written; see issue 2).
