//! A plugin's page: its tools and annotations, requested vs imported vs granted
//! capabilities; the grant edited in the browser, checked as it is typed, reviewed as
//! a diff, saved — and the next call is refused what the grant no longer gives.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{Console, OPS, a11y};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grant_edited_in_the_console_refuses_the_next_call() {
    let Some(c) = Console::start().await else {
        return;
    };
    let (status, body) = c
        .api(
            OPS,
            Method::POST,
            "/v1/tools/refunds/issued",
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    c.sign_in(OPS).await;
    c.open("/console/plugins").await;
    a11y::check(c.browser(), "plugins").await;
    c.browser()
        .click("a[href='/console/plugins/refunds']")
        .await;
    c.browser().wait_for("table.capabilities").await;
    let memory = c
        .browser()
        .find("table.capabilities tbody tr:nth-child(4)")
        .await
        .text()
        .await
        .unwrap();
    let memory = words(&memory);
    assert!(
        memory.starts_with("memory yes: Records every refund")
            && memory.ends_with("yes refunds (read-write)"),
        "{memory}"
    );
    let text = c.browser().text().await;
    assert!(text.contains("refunds/issue"), "{text}");
    assert!(text.contains("not read-only"), "{text}");
    assert!(text.contains("Not pinned"), "{text}");
    a11y::check(c.browser(), "plugin").await;

    // Checked as it is typed: a wrong value is named.
    c.browser()
        .fill("#grant", "[memory]\nrefunds = \"sometimes\"\n")
        .await;
    c.browser().wait_for_text("Not valid:").await;
    assert_eq!(
        c.browser()
            .find("#grant")
            .await
            .attr("aria-invalid")
            .await
            .unwrap(),
        Some("true".to_string())
    );
    // A grant without the memory namespace: valid, and the diff shows what goes.
    c.browser()
        .fill("#grant", "[limits]\ntimeout_ms = 5000\n")
        .await;
    c.browser()
        .wait_for_text("Valid. What it changes in the grant in force:")
        .await;
    let removed = c
        .browser()
        .find("#grant-diff del")
        .await
        .text()
        .await
        .unwrap();
    assert!(removed.contains("[memory"), "{removed}");

    c.browser().click("form.grant button[type=submit]").await;
    // The review page (the editor's own live diff is a `pre.diff` too).
    c.browser()
        .wait_for("main form[action='/console/plugins/refunds/grant']")
        .await;
    let removed: Vec<String> = {
        let mut lines = Vec::new();
        for del in c
            .browser()
            .client
            .find_all(fantoccini::Locator::Css("pre.diff del"))
            .await
            .unwrap()
        {
            lines.push(del.text().await.unwrap());
        }
        lines
    };
    assert!(removed.iter().any(|l| l.contains("refunds")), "{removed:?}");
    a11y::check(c.browser(), "grant-review").await;
    c.browser().click("main form button[type=submit]").await;
    c.browser()
        .wait_for_text("The grant is saved and in force.")
        .await;
    let memory = c
        .browser()
        .find("table.capabilities tbody tr:nth-child(4)")
        .await
        .text()
        .await
        .unwrap();
    let memory = words(&memory);
    assert!(memory.ends_with("yes no"), "{memory}");

    // The next call: the plugin may no longer touch its namespace.
    let (status, body) = c
        .api(
            OPS,
            Method::POST,
            "/v1/tools/refunds/issued",
            Some(json!({})),
        )
        .await;
    assert_ne!(status, StatusCode::OK, "{body}");
    assert!(body.to_string().contains("denied"), "{body}");
    let denied = c.records("kind=capability.denied&plugin=refunds").await;
    assert!(!denied.is_empty(), "no capability.denied record");
    // The change is on the record, by the person who made it, old and new grant.
    let set = c.records("kind=grant.set&plugin=refunds").await;
    let last = set.last().expect("a grant.set record");
    assert_eq!(last["principal"], "user:ops", "{last}");
    c.stop().await;
}

fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
