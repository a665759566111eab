//! Security tests: shell_links (see main.rs).
