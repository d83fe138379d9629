//! A flood of unauthenticated requests: each is refused, a few a second are written
//! to the audit log (with a clipped path), the rest are counted in the next record.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_unauthenticated_requests_is_counted_not_written() {
    let t = Test::start(&[("text", guests::TEXT)], "").await;
    let long_path = format!("/v1/plugins/{}", "x".repeat(60 * 1024));
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..500 {
        let path = if i % 2 == 0 {
            long_path.as_str()
        } else {
            "/v1/tools"
        };
        let resp = t
            .req(reqwest::Method::GET, path, None)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        refused += 1;
    }
    let seconds = started.elapsed().as_secs() + 1;
    assert_eq!(refused, 500);

    let (status, body) = t
        .get(Some(ADMIN), "/v1/audit?kind=access.denied&limit=1000")
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let records = body["records"].as_array().unwrap();
    let anonymous: Vec<&Value> = records
        .iter()
        .filter(|r| r["principal"] == "anonymous")
        .collect();
    let most = warden::serve::refusals::PER_SECOND as u64 * (seconds + 1);
    assert!(
        !anonymous.is_empty() && (anonymous.len() as u64) <= most,
        "{} records of 500 refusals in {seconds} s (at most {most})",
        anonymous.len()
    );
    for record in &anonymous {
        let path = record["fields"]["path"].as_str().unwrap();
        assert!(path.len() <= warden::serve::refusals::PATH_BYTES, "{path}");
    }
    assert!(
        anonymous
            .iter()
            .any(|r| r["fields"]["path_clipped"] == true),
        "a clipped path is marked"
    );

    // The next one written says how many were left out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let resp = t
        .req(reqwest::Method::GET, "/v1/tools", None)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let (_, body) = t
        .get(Some(ADMIN), "/v1/audit?kind=access.denied&limit=1000")
        .await;
    let anonymous: Vec<&Value> = body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["principal"] == "anonymous")
        .collect();
    let counted: u64 = anonymous
        .iter()
        .map(|r| r["fields"]["suppressed"].as_u64().unwrap_or(0))
        .sum();
    assert!(counted > 0, "the flood was counted");
    assert_eq!(
        anonymous.len() as u64 + counted,
        501,
        "every refusal is written or counted"
    );

    // The server serves as before, and the log verifies.
    let (status, body) = t
        .call(ADMIN, "text/word-count", json!({"text": "still here"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, body) = t.get(Some(ADMIN), "/v1/audit/verify").await;
    assert_eq!(body["ok"], true, "{body}");
    t.server.shutdown().await;
}
