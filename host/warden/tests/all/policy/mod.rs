//! The access policy (Cedar): decisions, validation messages, the roles of a config,
//! the HTTP API's 403s and /mcp's refusals with the deciding policies on the audit record, and
//! `warden policy check|schema` and `warden call` through the binary.

mod cli;
mod engine;
pub(crate) mod http;
mod mcp;
mod validation;
