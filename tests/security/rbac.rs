//! Security tests: rbac (see main.rs).
