//! snapshot (being written)
