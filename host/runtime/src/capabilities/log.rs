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
/// Bytes of one line kept (its message, and its fields with their separators); the
/// rest is cut.
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

/// The line's message and its fields as `key=value` pairs separated by spaces, cut so
/// that together, separators included, they hold at most [`MAX_LINE_BYTES`] bytes: a
/// pair that does not fit whole is cut, and no field past it is written.
fn render<'a>(message: &'a str, fields: &[(String, String)]) -> (&'a str, String) {
    let message = clip(message, MAX_LINE_BYTES);
    let mut budget = MAX_LINE_BYTES - message.len();
    let mut rendered = String::new();
    for (key, value) in fields {
        // A space before every pair but the first, and the `=`.
        let separators = usize::from(!rendered.is_empty()) + 1;
        if budget < separators {
            break;
        }
        budget -= separators;
        if !rendered.is_empty() {
            rendered.push(' ');
        }
        let key = clip(key, budget);
        budget -= key.len();
        let value = clip(value, budget);
        budget -= value.len();
        rendered.push_str(key);
        rendered.push('=');
        rendered.push_str(value);
    }
    (message, rendered)
}

impl Host for CallState {
    fn write(&mut self, level: Level, message: String, fields: Vec<(String, String)>) {
        if self.log.written >= MAX_LINES {
            self.log.dropped = self.log.dropped.saturating_add(1);
            return;
        }
        self.log.written += 1;
        let (message, rendered) = render(&message, &fields);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn field(key: &str, value: &str) -> (String, String) {
        (key.to_string(), value.to_string())
    }

    #[test]
    fn fields_render_as_pairs() {
        let (message, fields) = render("hi", &[field("a", "1"), field("b", "two")]);
        assert_eq!((message, fields.as_str()), ("hi", "a=1 b=two"));
    }

    #[test]
    fn separators_count_towards_the_line_cap() {
        // A million empty fields were a megabyte of "= = = …" past the cap.
        let empty = vec![field("", ""); 1_000_000];
        let (message, fields) = render("m", &empty);
        assert_eq!(message.len() + fields.len(), MAX_LINE_BYTES);
        let long = vec![field("key", &"v".repeat(1000)); 100];
        let short = "m".repeat(100);
        let (message, fields) = render(&short, &long);
        assert_eq!(message.len() + fields.len(), MAX_LINE_BYTES);
        let too_long = "m".repeat(MAX_LINE_BYTES + 10);
        let (message, fields) = render(&too_long, &long);
        assert_eq!((message.len(), fields.as_str()), (MAX_LINE_BYTES, ""));
    }
}
