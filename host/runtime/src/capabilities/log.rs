//! `warden:host/log`: guest log lines into the host's tracing, tagged with the plugin
//! and the call.
//!
//! A call may write at most [`MAX_LINES`] lines of at most [`MAX_LINE_BYTES`] bytes;
//! what passes the cap is dropped and counted, so a log flood costs the host nothing
//! but a counter.

use crate::bindings::log::{Host, Level};
use crate::state::CallState;

/// Lines one call may write.
pub const MAX_LINES: u32 = 1000;
/// Bytes of one line's message and fields kept; the rest is cut.
pub const MAX_LINE_BYTES: usize = 4096;

/// How much a call has logged so far.
#[derive(Debug, Default)]
pub struct LogBudget {
    /// Lines written to the host's log.
    pub written: u32,
    /// Lines dropped because the call passed [`MAX_LINES`].
    pub dropped: u32,
}

fn clip(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

impl Host for CallState {
    fn write(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        if self.log.written >= MAX_LINES {
            self.log.dropped = self.log.dropped.saturating_add(1);
            return;
        }
        self.log.written += 1;
        let message = clip(&message, MAX_LINE_BYTES);
        let mut budget = MAX_LINE_BYTES.saturating_sub(message.len());
        let mut rendered = String::new();
        for (key, value) in &fields {
            let key = clip(key, budget);
            budget -= key.len();
            let value = clip(value, budget);
            budget -= value.len();
            if !rendered.is_empty() {
                rendered.push(' ');
            }
            rendered.push_str(key);
            rendered.push('=');
            rendered.push_str(value);
        }
        let plugin = &*self.plugin;
        let call = self.call_id;
        macro_rules! emit {
            ($lvl:ident) => {
                tracing::$lvl!(target: "warden::guest", plugin, call, fields = %rendered, "{message}")
            };
        }
        match level {
            Level::Trace => emit!(trace),
            Level::Debug => emit!(debug),
            Level::Info => emit!(info),
            Level::Warn => emit!(warn),
            Level::Error => emit!(error),
        }
    }
}
