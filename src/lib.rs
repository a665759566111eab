//! Deckhand: a chat-ops front door to a Kubernetes platform.
//!
//! The path of one request: a surface (HTTP API, Slack, Discord) builds an
//! [`app::Invocation`]; the [`commands::Router`] matches it against the declarative specs
//! and applies RBAC and the approval rule; the [`store::Store`] persists it before anything
//! is acknowledged; the [`worker`] claims it with a compare-and-set and runs its
//! [`actions::Action`], whose progress events go back to the surface.

pub mod actions;
pub mod app;
pub mod attachments;
pub mod chat;
pub mod client;
pub mod cluster;
pub mod command_builder;
pub mod command_buttons;
pub mod commands;
pub mod configuration;
pub mod discord;
pub mod domain;
pub mod events;
pub mod http;
pub mod identity;
pub mod loadgen;
pub mod loadtest;
pub mod metrics;
pub mod outbox;
pub mod pages;
pub mod proxy;
pub mod services;
pub mod shell;
pub mod signing;
pub mod slack;
pub mod startup;
pub mod store;
pub mod surface;
pub mod telemetry;
pub mod visibility;
pub mod worker;
