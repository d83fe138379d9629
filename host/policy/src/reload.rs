//! A policy that can be replaced while it is in use: what `serve` sets on the runtime,
//! so a changed `warden.toml` or policy file takes effect without a restart (the
//! runtime's policy is set once).

use std::sync::{Arc, RwLock};

use super::{Decide, Decision, Request};

/// Decides with the policy it holds now; [`Reloadable::replace`] swaps it.
pub struct Reloadable(RwLock<Arc<dyn Decide>>);

impl Reloadable {
    /// Starts with `policy`.
    pub fn new(policy: Arc<dyn Decide>) -> Self {
        Self(RwLock::new(policy))
    }

    /// Decides with `policy` from now on.
    pub fn replace(&self, policy: Arc<dyn Decide>) {
        match self.0.write() {
            Ok(mut current) => *current = policy,
            Err(poisoned) => *poisoned.into_inner() = policy,
        }
    }

    /// The policy now.
    pub fn current(&self) -> Arc<dyn Decide> {
        match self.0.read() {
            Ok(current) => current.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl Decide for Reloadable {
    fn decide(&self, request: &Request<'_>) -> Decision {
        self.current().decide(request)
    }
}

impl std::fmt::Debug for Reloadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Reloadable")
    }
}
