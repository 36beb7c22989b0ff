//! rlimits
