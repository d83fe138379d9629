//! Unauthenticated requests on the record, without letting a flood of them fill the
//! disk or slow the server: each record keeps at most [`PATH_BYTES`] of the request's
//! path, and at most [`PER_SECOND`] are written a second. The rest are counted, and
//! the next record written says how many were left out (`suppressed`), so the log
//! still shows that a flood happened and how large it was.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most of a request's path a record keeps.
pub const PATH_BYTES: usize = 256;

/// The most unauthenticated requests recorded one by one in a second.
pub const PER_SECOND: u32 = 20;

/// Decides which unauthenticated refusals are recorded.
#[derive(Debug)]
pub struct Limiter {
    window: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    recorded: u32,
    suppressed: u64,
}

impl Default for Limiter {
    fn default() -> Self {
        Self {
            window: Mutex::new(Window {
                started: Instant::now(),
                recorded: 0,
                suppressed: 0,
            }),
        }
    }
}

impl Limiter {
    /// `Some(n)` when this refusal is to be recorded, `n` the refusals left out since
    /// the last one recorded; `None` when it is only counted.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut window = self.window.lock().unwrap_or_else(|e| e.into_inner());
        if now.duration_since(window.started) >= Duration::from_secs(1) {
            window.started = now;
            window.recorded = 0;
        }
        if window.recorded >= PER_SECOND {
            window.suppressed += 1;
            return None;
        }
        window.recorded += 1;
        Some(std::mem::take(&mut window.suppressed))
    }
}

/// `path` cut to at most [`PATH_BYTES`] (on a character boundary), and whether it
/// was cut.
pub fn clip(path: &str) -> (&str, bool) {
    if path.len() <= PATH_BYTES {
        return (path, false);
    }
    let mut end = PATH_BYTES;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    (&path[..end], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_a_few_a_second_and_counts_the_rest() {
        let limiter = Limiter::default();
        let start = Instant::now();
        for _ in 0..PER_SECOND {
            assert_eq!(limiter.admit_at(start), Some(0));
        }
        for _ in 0..1000 {
            assert_eq!(limiter.admit_at(start + Duration::from_millis(500)), None);
        }
        // The next second's first record says how many were left out.
        assert_eq!(
            limiter.admit_at(start + Duration::from_millis(1001)),
            Some(1000)
        );
        assert_eq!(
            limiter.admit_at(start + Duration::from_millis(1002)),
            Some(0)
        );
    }

    #[test]
    fn long_paths_are_clipped_on_a_character_boundary() {
        assert_eq!(clip("/v1/tools"), ("/v1/tools", false));
        let long = format!("/{}", "é".repeat(300));
        let (cut, clipped) = clip(&long);
        assert!(clipped && cut.len() <= PATH_BYTES && long.starts_with(cut));
    }
}
