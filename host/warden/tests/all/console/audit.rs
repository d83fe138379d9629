//! The audit log in the browser: the chain verified, filtered to a denial, a record
//! with its hash and link, and the filtered records exported as JSON Lines.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{AUD, Console, OPS, a11y};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_filters_to_a_denial_and_exports_it() {
    let Some(c) = Console::start().await else {
        return;
    };
    let (status, _) = c
        .api(
            OPS,
            Method::POST,
            "/v1/tools/refunds/issued",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The auditor may not call tools: a denial on the record.
    let (status, _) = c
        .api(
            AUD,
            Method::POST,
            "/v1/tools/refunds/issued",
            Some(json!({})),
        )
        .await;
    assert_ne!(status, StatusCode::OK);

    c.sign_in(AUD).await;
    c.open("/console/audit").await;
    c.browser().wait_for_text("Chain verified:").await;
    assert!(c.browser().count("table.records tbody tr").await > 2);
    a11y::check(c.browser(), "audit").await;

    c.browser()
        .find("#outcome")
        .await
        .select_by_value("denied")
        .await
        .unwrap();
    c.browser().fill("#principal", "user:aud").await;
    c.browser().click("form.filters button[type=submit]").await;
    // The filtered page (the one before says "records, newest first" too).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !c.browser().url().await.contains("outcome=denied") {
        assert!(
            std::time::Instant::now() < deadline,
            "the filter was not applied"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    c.browser().wait_for("table.records").await;
    let url = c.browser().url().await;
    assert!(
        url.contains("outcome=denied") && url.contains("principal=user%3Aaud"),
        "{url}"
    );
    let rows = c
        .browser()
        .js(
            "return [...document.querySelectorAll('table.records tbody tr')].map((tr) => [...tr.cells].map((td) => td.textContent.trim()));",
            vec![],
        )
        .await;
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty(), "no denial shown");
    for row in rows {
        assert_eq!(row[5], "denied", "{row}");
        assert_eq!(row[3], "user:aud", "{row}");
    }
    assert!(
        rows.iter()
            .any(|r| r[2] == "access.denied" && r[4] == "refunds/issued"),
        "{rows:?}"
    );

    // One record: its hash, and the hash of the one before it links to.
    c.browser()
        .click("table.records tbody tr:first-child a")
        .await;
    c.browser().wait_for("dl.facts").await;
    let hashes = c
        .browser()
        .js(
            "return [...document.querySelectorAll('code.hash')].map((c) => c.textContent);",
            vec![],
        )
        .await;
    let hashes: Vec<&str> = hashes
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(hashes.len(), 2, "{hashes:?}");
    assert!(hashes.iter().all(|h| h.len() >= 64), "{hashes:?}");
    a11y::check(c.browser(), "audit-record").await;

    // The export of the filter: JSON Lines, every one a denial of user:aud.
    c.browser().goto(&url).await;
    let href = c
        .browser()
        .find("a[download]")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    let text = c
        .browser()
        .js_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], { credentials: 'same-origin' }).then((r) => r.text()).then(done, (e) => done(String(e)));",
            vec![json!(href)],
        )
        .await;
    let lines: Vec<Value> = text
        .as_str()
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), rows.len(), "{text}");
    assert!(
        lines
            .iter()
            .all(|r| r["outcome"] == "denied" && r["principal"] == "user:aud"),
        "{text}"
    );
    c.stop().await;
}
