//! platform (being written)
