//! Declarative commands: specs loaded from YAML, and the router that matches text to them.

pub mod args;
mod bind;
mod compile;
pub mod condition;
mod help;
pub mod keyed;
pub mod router;
pub mod spec;

pub use args::Args;
pub use router::{RouteError, Routed, Router};
pub use spec::{ApprovalPolicy, CommandSpec, SpecContext, SpecError, SpecErrors};
