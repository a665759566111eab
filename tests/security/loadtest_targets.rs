//! Security tests: loadtest_targets (see main.rs).
