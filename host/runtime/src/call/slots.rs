//! Admission of a call to an instance: one of its plugin's `max_concurrency` slots, and
//! one of the runtime's [`MAX_LIVE_INSTANCES`], the pool's size. Without the second,
//! plugins that each stay within their own slots could together ask the pool for more
//! instances than it has, and the calls past it would fail as if their guests had
//! trapped; with it they wait for an instance like any call waiting for a slot.

use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;

use crate::engine::{MAX_LIVE_INSTANCES, Runtime};
use crate::error::CallError;
use crate::plugin::Plugin;

/// A call's admission: held until the call's store is dropped.
pub(super) struct Slots {
    _plugin: OwnedSemaphorePermit,
    _instance: InstancePermit,
}

/// One of the runtime's instances, held while a call's instance lives.
pub struct InstancePermit {
    _permit: OwnedSemaphorePermit,
}

impl Runtime {
    /// Waits for one of the plugin's `max_concurrency` slots and then for one of the
    /// runtime's instances, at most `timeout` in all.
    pub(super) async fn acquire_slot(
        &self,
        plugin: &Plugin,
        tool: &str,
        timeout: Duration,
    ) -> Result<Slots, CallError> {
        let until = Instant::now() + timeout;
        let limit = |detail: String| CallError::Limit {
            plugin: plugin.name.to_string(),
            tool: tool.to_string(),
            limit: "concurrency",
            detail,
        };
        let waiting = plugin.slots.clone().acquire_owned();
        let Ok(Ok(own)) = tokio::time::timeout_at(until.into(), waiting).await else {
            return Err(limit(format!(
                "{} calls of this plugin were running for all of {} ms (max_concurrency)",
                plugin.limits.max_concurrency, plugin.limits.timeout_ms
            )));
        };
        Ok(Slots {
            _plugin: own,
            _instance: self.instance_permit(plugin, tool, until).await?,
        })
    }

    /// Waits until `until` for one of the runtime's instances, for a call of `tool`
    /// (or an agent's step) of `plugin`; past it, the `concurrency` limit.
    pub async fn instance_permit(
        &self,
        plugin: &Plugin,
        tool: &str,
        until: Instant,
    ) -> Result<InstancePermit, CallError> {
        let waiting = self.instances.clone().acquire_owned();
        match tokio::time::timeout_at(until.into(), waiting).await {
            Ok(Ok(permit)) => Ok(InstancePermit { _permit: permit }),
            _ => Err(CallError::Limit {
                plugin: plugin.name.to_string(),
                tool: tool.to_string(),
                limit: "concurrency",
                detail: format!(
                    "all {MAX_LIVE_INSTANCES} instances of this Warden were in use by calls of all its plugins for all of {} ms; lower the plugins' max_concurrency, or run more Warden nodes",
                    plugin.limits.timeout_ms
                ),
            }),
        }
    }
}
