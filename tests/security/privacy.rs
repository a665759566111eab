//! Security tests: privacy (see main.rs).
