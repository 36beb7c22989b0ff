//! unpack (being written)
