//! Registry client: see the module docs (being written).
