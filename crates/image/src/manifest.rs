//! manifest (being written)
