//! The `fastest` strategy (a moving average of answer latency, measured against fake
//! providers with injected delays), the `weighted` one (its spread over many calls,
//! with a fixed seed), and connection reuse (one pooled client per provider).

use std::time::Duration;

use warden::models::{ProviderKind, RouteConfig, Router, Strategy};

use super::fake::{Fake, Reply, openai_answer};
use super::streaming::drain;
use super::{config, hello, provider, route};

#[tokio::test]
async fn fastest_goes_to_the_lower_moving_average_and_follows_it_when_it_changes() {
    let slow = Fake::start(
        vec![],
        openai_answer("slow").after(Duration::from_millis(100)),
    )
    .await;
    // quick answers at once six times, then takes 250 ms for a while.
    let mut script = vec![openai_answer("quick"); 6];
    script.extend(vec![
        openai_answer("quick").after(Duration::from_millis(250));
        6
    ]);
    let quick = Fake::start(script, openai_answer("quick")).await;
    let router = Router::new(config(
        vec![
            ("slow", provider(ProviderKind::Openai, slow.url())),
            ("quick", provider(ProviderKind::Openai, quick.url())),
        ],
        vec![("r", route(&["slow/m", "quick/m"], Strategy::Fastest))],
    ))
    .unwrap();
    let mut answers = Vec::new();
    for _ in 0..12 {
        answers.push(router.complete("r", &hello()).await.unwrap().content);
    }
    // Unmeasured targets go first, in order: slow, then quick; then quick while its
    // average is lower.
    assert_eq!(answers[0], "slow", "{answers:?}");
    assert!(answers[1..7].iter().all(|a| a == "quick"), "{answers:?}");
    // Each 250 ms answer moves quick's average a fifth of the way up: past slow's
    // 100 ms after three, and the route moves to slow and stays.
    let moved = answers[7..]
        .iter()
        .position(|a| a == "slow")
        .unwrap_or_else(|| panic!("never moved back to slow: {answers:?}"));
    assert!((2..=4).contains(&moved), "{answers:?}");
    assert!(
        answers[7 + moved..].iter().all(|a| a == "slow"),
        "{answers:?}"
    );
}

fn weighted(a: &Fake, b: &Fake, weights: Vec<u32>) -> Router {
    Router::new(config(
        vec![
            ("a", provider(ProviderKind::Openai, a.url())),
            ("b", provider(ProviderKind::Openai, b.url())),
        ],
        vec![(
            "r",
            RouteConfig {
                weights,
                ..route(&["a/m", "b/m"], Strategy::Weighted)
            },
        )],
    ))
    .unwrap()
}

#[tokio::test]
async fn weighted_spreads_calls_by_weight_and_falls_back_to_the_others() {
    let a = Fake::auto("a").await;
    let b = Fake::auto("b").await;
    let router = weighted(&a, &b, vec![3, 1]);
    router.seed(42);
    let mut picks = Vec::new();
    for _ in 0..200 {
        picks.push(router.complete("r", &hello()).await.unwrap().target);
    }
    let to_a = picks.iter().filter(|t| *t == "a/m").count();
    assert!(
        (130..=170).contains(&to_a),
        "{to_a} of 200 to a (weight 3 of 4)"
    );
    assert_eq!(a.received().len() + b.received().len(), 200);

    // The same seed, the same picks.
    let again = weighted(&a, &b, vec![3, 1]);
    again.seed(42);
    for expected in &picks[..20] {
        assert_eq!(
            &again.complete("r", &hello()).await.unwrap().target,
            expected
        );
    }

    // A target that fails is fallen back from, whatever its weight.
    let down = Fake::start(
        vec![],
        Reply::json(503, serde_json::json!({"error": {"message": "down"}})),
    )
    .await;
    let router = weighted(&down, &b, vec![100, 1]);
    for _ in 0..3 {
        assert_eq!(router.complete("r", &hello()).await.unwrap().target, "b/m");
    }
}

#[tokio::test]
async fn one_kept_alive_connection_serves_consecutive_calls_whole_and_streamed() {
    let fake = Fake::auto("pong").await;
    let router = Router::new(config(
        vec![("a", provider(ProviderKind::Openai, fake.url()))],
        vec![("r", route(&["a/m"], Strategy::Fallback))],
    ))
    .unwrap();
    for _ in 0..4 {
        assert_eq!(
            router.complete("r", &hello()).await.unwrap().content,
            "pong"
        );
    }
    for _ in 0..3 {
        let mut stream = router.stream("r", &hello()).await.unwrap();
        let (deltas, failure) = drain(&mut stream).await;
        assert!(failure.is_none() && !deltas.is_empty());
    }
    assert_eq!(
        router.complete("r", &hello()).await.unwrap().content,
        "pong"
    );
    assert_eq!(fake.received().len(), 8);
    assert_eq!(
        fake.connections(),
        1,
        "every call on the first connection: {:?}",
        fake.received()
            .iter()
            .map(|r| r.connection)
            .collect::<Vec<_>>()
    );
}
