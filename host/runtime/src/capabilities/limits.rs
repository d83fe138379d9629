//! The store's resource limiter: wasmtime's [`StoreLimits`] (tables, instances, each
//! memory's own maximum), plus the grant's `memory_mb` over all linear memories of the
//! store together, and their peak, for the call's audit record.
//!
//! wasmtime's `memory_size` limit applies to each memory by itself: a component with
//! four core instances, each with its memory, would get four times `memory_mb`. So the
//! limiter keeps the sum and refuses a growth that takes it past the limit.

use wasmtime::{ResourceLimiter, StoreLimits};

/// [`StoreLimits`] that also holds all the store's linear memories to one limit
/// together, and remembers the most they held.
pub struct Limiter {
    inner: StoreLimits,
    /// Most bytes the store's linear memories may hold together.
    memory_limit: usize,
    /// Bytes they hold now.
    memory_total: usize,
    /// Bytes they held together at most.
    pub peak_memory: usize,
}

impl Limiter {
    /// `inner`'s limits, and at most `memory_limit` bytes of linear memory in all.
    pub fn new(inner: StoreLimits, memory_limit: usize) -> Self {
        Self {
            inner,
            memory_limit,
            memory_total: 0,
            peak_memory: 0,
        }
    }
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self
            .memory_total
            .saturating_sub(current)
            .saturating_add(desired);
        if total > self.memory_limit {
            // The words wasmtime's own limit uses, which the call classifies as the
            // memory limit.
            wasmtime::bail!(
                "forcing trap when growing memory to {desired} bytes: the store's memories would hold {total} bytes together, the limit is {}",
                self.memory_limit
            );
        }
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.memory_total = total;
            self.peak_memory = self.peak_memory.max(total);
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.inner.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}
