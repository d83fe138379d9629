//! Models behind a router: requests name a *route*; the router picks a target
//! (provider + model) by the route's strategy, speaks the provider's wire format
//! (OpenAI-compatible chat completions, or Anthropic Messages), and owns the only retry
//! loop: failures are classified, retried with backoff, fallen back from, or put in
//! cooldown.
//!
//! Plugins reach it through `warden:host/models`, on the routes their grant lists and
//! within its daily budget ([`host`]); apps through the OpenAI-compatible gateway of
//! `serve` ([`gateway`]), streamed or not. Budgets of plugins, principals and routes
//! are one [`Ledger`].

mod budget;
mod classify;
mod client;
mod config;
mod error;
mod router;
mod stream;
mod types;
mod wire;

pub use self::budget::{BudgetExceeded, Estimate, Ledger, Payer, Reservation, Scope, day_of};
pub use self::classify::{Failure, FailureKind};
pub use self::config::{
    Budget, Budgets, ModelsConfig, Price, ProviderConfig, ProviderKind, RetryConfig, RouteConfig,
    Strategy,
};
pub use self::error::{LedgerError, ModelsConfigError, SetupError};
pub use self::router::{RouteError, Router};
pub use self::stream::{Delta, Streaming};
/// Warden's own OpenAI-compatible endpoint: a client's body to a request, an answer
/// to a chat completion, whole or as `chat.completion.chunk` events.
pub mod gateway {
    pub use super::wire::gateway::{
        Chunks, SSE_DONE, build_response, parse_request, sse, stream_error,
    };
}
pub use self::types::{ChatRequest, ChatResponse, Message, Role, ToolCall, ToolDef, Usage};
