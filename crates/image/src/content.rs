//! content (being written)
