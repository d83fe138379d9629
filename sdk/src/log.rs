//! Structured log lines through the host's `warden:host/log` interface.
//!
//! Lines go to the host's tracing (stderr, filtered by `RUST_LOG`), tagged by the host
//! with the plugin and the call; they never reach the caller's result. The host caps
//! how many lines and bytes one call may write and drops the rest.
//!
//! ```ignore
//! use warden_sdk::log;
//!
//! log::info("fetching forecast");
//! log::warn_with("slow answer", &[("city", city.as_str()), ("ms", &ms.to_string())]);
//! warden_sdk::log!(debug, "read {} bytes", n; path = path, bytes = n);
//! ```

pub use crate::host::log::Level;

/// Writes one log line at `level` with structured `fields` (key, value).
pub fn write(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
    crate::host::log::write(level, message, &fields);
}

macro_rules! levels {
    ($($name:ident, $with:ident, $level:ident, $doc:literal;)*) => {$(
        #[doc = concat!("Writes one ", $doc, " line.")]
        pub fn $name(message: &str) {
            write(Level::$level, message, &[]);
        }

        #[doc = concat!("Writes one ", $doc, " line with structured fields (key, value).")]
        pub fn $with(message: &str, fields: &[(&str, &str)]) {
            write(Level::$level, message, fields);
        }
    )*};
}

levels! {
    trace, trace_with, Trace, "`trace`";
    debug, debug_with, Debug, "`debug`";
    info, info_with, Info, "`info`";
    warn, warn_with, Warn, "`warn`";
    error, error_with, Error, "`error`";
}

/// Writes a formatted log line, with optional structured fields after a `;`.
///
/// The level is one of `trace`, `debug`, `info`, `warn`, `error`; field values are
/// formatted with `Display`.
///
/// ```ignore
/// warden_sdk::log!(info, "listed {} entries", entries.len());
/// warden_sdk::log!(warn, "file too large"; path = path, bytes = size);
/// ```
#[macro_export]
macro_rules! log {
    ($level:ident, $fmt:literal $(, $arg:expr)* $(,)? $(; $($key:ident = $value:expr),+ $(,)?)?) => {{
        let fields: &[(&str, ::std::string::String)] = &[
            $($((::core::stringify!($key), ::std::format!("{}", $value))),+)?
        ];
        let fields: ::std::vec::Vec<(&str, &str)> =
            fields.iter().map(|(key, value)| (*key, value.as_str())).collect();
        $crate::log::write(
            $crate::__warden_level!($level),
            &::std::format!($fmt $(, $arg)*),
            &fields,
        );
    }};
}

/// Maps a level name of [`log!`] to a [`Level`]; an unknown name does not compile.
#[doc(hidden)]
#[macro_export]
macro_rules! __warden_level {
    (trace) => {
        $crate::log::Level::Trace
    };
    (debug) => {
        $crate::log::Level::Debug
    };
    (info) => {
        $crate::log::Level::Info
    };
    (warn) => {
        $crate::log::Level::Warn
    };
    (error) => {
        $crate::log::Level::Error
    };
}

#[cfg(test)]
mod tests {
    #[test]
    fn levels_map_to_the_wit_enum() {
        assert!(matches!(crate::__warden_level!(warn), super::Level::Warn));
        assert!(matches!(crate::__warden_level!(trace), super::Level::Trace));
    }
}
