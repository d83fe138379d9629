//! A global counter: state that must not survive from one call to the next.

use std::sync::atomic::{AtomicU32, Ordering};

wit_bindgen::generate!({
    world: "counter",
});

static COUNT: AtomicU32 = AtomicU32::new(0);

struct Counter;

impl Guest for Counter {
    fn bump() -> u32 {
        COUNT.fetch_add(1, Ordering::SeqCst) + 1
    }
}

export!(Counter);
