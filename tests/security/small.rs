//! Security tests: small (see main.rs).
