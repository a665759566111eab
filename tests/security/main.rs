//! One test per attack found in the security review (issue 12), named after it. Each module
//! covers one area; docs/security.md maps every boundary to its test here.
//!
//! Run: `cargo test --test security`.

#[path = "../support/cluster.rs"]
mod cluster;
#[path = "../support/discord/mod.rs"]
mod discord_fake;
#[path = "../support/kube/mod.rs"]
mod kube_fake;
#[path = "../support/slack/mod.rs"]
mod slack_fake;
#[path = "../support/mod.rs"]
mod support;

mod chat_markup;
mod chat_privacy;
mod environments;
mod loadtest_targets;
mod pages;
mod privacy;
mod proxy_links;
mod rbac;
mod shell_links;
mod small;
