//! Models behind a router: requests name a *route*; the router picks a target
//! (provider + model) by the route's strategy, speaks the provider's wire format
//! (OpenAI-compatible chat completions, or Anthropic Messages), and owns the only retry
//! loop: failures are classified, retried with backoff, fallen back from, or put in
//! cooldown.
//!
//! This module is the router and the wire formats; plugins reach it through
//! `warden:host/models` once that interface is linked (issue: memory and models).

mod classify;
mod client;
mod config;
mod router;
mod types;
mod wire;

pub use self::classify::{Failure, FailureKind};
pub use self::config::{ModelsConfig, Price, ProviderConfig, ProviderKind, RouteConfig, Strategy};
pub use self::router::{RouteError, Router};
pub use self::types::{ChatRequest, ChatResponse, Message, Role, ToolCall, ToolDef, Usage};
