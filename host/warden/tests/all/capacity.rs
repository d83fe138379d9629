//! More calls at once than the pool has instances (the adversarial catalog's item 18):
//! 13 plugins, each allowed 200 calls at once, get 2 600 calls (ten times the pool)
//! that each hold an instance for 100 ms. The pool has 256 slots; the calls past them wait for one,
//! none fails as a guest's trap (as they did before the runtime counted its instances);
//! a call that cannot get one before its deadline fails as the `concurrency` limit, on
//! record; and the host serves the next call.

use std::sync::Arc;

use serde_json::json;
use warden::grant::Grant;
use warden::limits::Limits;

use crate::audited::Audited;
use crate::residue::{SCAN, component};

#[tokio::test]
async fn calls_past_the_pools_slots_wait_for_one_and_none_fails_as_a_trap() {
    let host = Arc::new(Audited::new());
    let grant = Grant {
        limits: Limits {
            max_concurrency: 200,
            timeout_ms: 60_000,
            ..Limits::default()
        },
        ..Grant::default()
    };
    let wat = component(SCAN);
    let plugins: Vec<_> = (0..13)
        .map(|n| Arc::new(host.load(&format!("p{n}"), &wat, grant.clone()).unwrap()))
        .collect();
    let mut calls = Vec::new();
    for plugin in &plugins {
        for _ in 0..200 {
            let (host, plugin) = (host.clone(), plugin.clone());
            calls.push(tokio::spawn(async move {
                host.call(&plugin, "scan", json!({"ms": 100})).await
            }));
        }
    }
    let mut served = 0;
    for call in calls {
        match call.await.unwrap() {
            Ok(found) => {
                assert_eq!(found, json!(0));
                served += 1;
            }
            Err(err) => panic!("{err}"),
        }
    }
    assert_eq!(served, 2600);
    let metrics = host.runtime.engine().pooling_allocator_metrics().unwrap();
    assert_eq!(metrics.component_instances(), 0);

    // All 256 held for 1.5 s: a call with a deadline of 200 ms fails as the
    // `concurrency` limit, naming the pool, on record.
    let mut holders = Vec::new();
    for n in 0..256 {
        let (host, plugin) = (host.clone(), plugins[n % 2].clone());
        holders.push(tokio::spawn(async move {
            host.call(&plugin, "scan", json!({"ms": 1500})).await
        }));
    }
    while metrics.component_instances() < 256 {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let short = Grant {
        limits: Limits {
            timeout_ms: 200,
            ..Limits::default()
        },
        ..Grant::default()
    };
    let late = host.load("late", &wat, short).unwrap();
    let err = host
        .call(&late, "scan", json!({"ms": 0}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "limit", "{err}");
    let says = "all 256 instances of this Warden were in use";
    assert!(err.to_string().contains(says), "{err}");
    let records = host.records();
    let hit = records.iter().rfind(|r| r.kind == "limit.hit").unwrap();
    assert_eq!(hit.fields["limit"], "concurrency", "{hit:#?}");
    for holder in holders {
        assert_eq!(holder.await.unwrap().unwrap(), json!(0));
    }
    // The host serves the next call.
    let next = host.call(&late, "scan", json!({"ms": 0})).await;
    assert_eq!(next.unwrap(), json!(0));
}
