//! Security tests: environments (see main.rs).
