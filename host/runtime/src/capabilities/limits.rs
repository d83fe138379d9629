//! The store's resource limiter: wasmtime's [`StoreLimits`] (memory, tables,
//! instances), plus the peak linear memory of the call, for its audit record.

use wasmtime::{ResourceLimiter, StoreLimits};

/// [`StoreLimits`] that also remembers the largest memory the guest asked for and got.
pub struct Limiter {
    inner: StoreLimits,
    /// Bytes of the largest linear memory granted so far.
    pub peak_memory: usize,
}

impl Limiter {
    pub fn new(inner: StoreLimits) -> Self {
        Self {
            inner,
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
        let allowed = self.inner.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak_memory = self.peak_memory.max(desired);
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
