//! Every call runs in a fresh instance in a fresh store: nothing one call writes is
//! seen by the next.

use serde_json::json;
use warden_tests::guests;

use crate::{call, load};

#[tokio::test]
async fn guest_globals_do_not_survive_a_call() {
    let plugin = load("counter", guests::COUNTER);
    for _ in 0..5 {
        assert_eq!(call(&plugin, "bump", json!({})).await.unwrap(), json!(1));
    }
}

#[tokio::test]
async fn concurrent_calls_do_not_share_state() {
    let plugin = std::sync::Arc::new(load("counter", guests::COUNTER));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let plugin = plugin.clone();
        tasks.push(tokio::spawn(async move {
            call(&plugin, "bump", json!({})).await.unwrap()
        }));
    }
    for task in tasks {
        assert_eq!(task.await.unwrap(), json!(1));
    }
}
