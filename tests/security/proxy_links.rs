//! Security tests: proxy_links (see main.rs).
