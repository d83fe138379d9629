//! What operators and authors write down, parsed and checked: the plugin manifest (what
//! an author requests), the grant (what an operator allows), per-call limits, the
//! home's `warden.toml`, and a Wassette `policy.yaml` imported as a grant.
//!
//! Everything here is data: parsing is strict (`deny_unknown_fields`), errors name the
//! key and the file, and nothing here touches a plugin, the network or a database.
//!
//! - [`manifest`]: `warden.toml` beside a plugin's wasm;
//! - [`grant`]: `grants/<plugin>.toml`, deny by default, one section per capability;
//! - [`limits`]: `[limits]` of a grant;
//! - [`home`]: the home's `warden.toml` (server, tokens, roles, policy, models,
//!   memory, runs, audit);
//! - [`auth`], [`memory`], [`runs`]: their tables of the home config;
//! - [`trust`]: `[trust]` of the home config (who may sign plugins from where) and
//!   the provenance recorded for an installed plugin;
//! - [`names`]: plugin names;
//! - [`text`]: text a plugin supplies, made safe to print;
//! - [`env`]: every environment variable Warden reads;
//! - [`wassette`]: importing a Wassette policy as a grant.

pub mod auth;
pub mod env;
mod error;
pub mod grant;
pub mod home;
pub mod limits;
pub mod manifest;
pub mod memory;
pub mod names;
pub mod runs;
pub mod storage;
pub mod text;
pub mod trust;
pub mod wassette;

#[cfg(test)]
mod fuzz;

pub use error::{
    BoxError, ConfigError, EnvError, GrantError, LimitsError, ManifestError, NameError,
    PatternError,
};
