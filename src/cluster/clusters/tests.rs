//! Configuration rules for `clusters.NAME`.
