//! Security tests: chat_markup (see main.rs).
