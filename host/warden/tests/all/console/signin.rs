//! Signing in and out: the token stays out of the browser (an `HttpOnly; Secure;
//! SameSite=Strict` session cookie), every page carries a strict
//! Content-Security-Policy that the browser enforces, and a session that ended
//! opens nothing. And the overview.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{AUD, Console, OPS, a11y};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_keeps_the_token_out_of_the_browser_under_a_strict_policy() {
    let Some(c) = Console::start().await else {
        return;
    };
    // Not signed in: to the sign-in page. Every answer carries the policy.
    let response = c
        .http
        .get(format!("{}/console", c.url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/console/signin");
    let response = c
        .http
        .get(format!("{}/console/signin", c.url))
        .send()
        .await
        .unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(response.headers()["x-frame-options"], "DENY");
    assert_eq!(response.headers()["cache-control"], "no-store");

    c.open("/console/signin").await;
    a11y::check(c.browser(), "signin").await;
    c.browser().fill("#token", "wdn_not-a-token").await;
    c.browser().click("form.signin button[type=submit]").await;
    c.browser()
        .wait_for_text("This server does not accept that token.")
        .await;

    // Some traffic for the overview: calls, and a denial (the auditor calls no tools).
    for _ in 0..3 {
        let (status, body) = c
            .api(
                OPS,
                Method::POST,
                "/v1/tools/refunds/issued",
                Some(json!({})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    c.api(
        AUD,
        Method::POST,
        "/v1/tools/refunds/issued",
        Some(json!({})),
    )
    .await;

    c.sign_in(OPS).await;
    assert_eq!(c.browser().url().await, format!("{}/console", c.url));
    c.browser().wait_for_text("Signed in as user:ops").await;
    let text = c.browser().text().await;
    assert!(text.contains("refunds/issued"), "{text}");
    a11y::check(c.browser(), "overview").await;

    // The session cookie: HttpOnly, Secure, SameSite=Strict; no script sees it, and
    // nothing is kept in the page's storage.
    let cookie = c
        .browser()
        .client
        .get_named_cookie("warden_session")
        .await
        .expect("a session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(
        cookie.same_site().map(|s| s.to_string()),
        Some("Strict".to_string())
    );
    let seen = c
        .browser()
        .js(
            "return [document.cookie, localStorage.length, sessionStorage.length];",
            vec![],
        )
        .await;
    assert_eq!(seen, json!(["", 0, 0]));
    // The browser enforces the policy: a script put into the page does not run.
    let ran = c
        .browser()
        .js(
            "const s = document.createElement('script'); s.textContent = 'window.injected = 1'; document.head.appendChild(s); return window.injected === 1;",
            vec![],
        )
        .await;
    assert_eq!(ran, json!(false), "an inline script ran despite the CSP");

    // Signing in is on the record under the person's principal.
    let signins = c.records("kind=console.signin").await;
    assert!(
        signins.iter().any(|r| r["principal"] == "user:ops"),
        "{signins:?}"
    );

    // Signed out: back at the sign-in page, and the old cookie opens nothing.
    let session = cookie.value().to_string();
    c.browser()
        .click("form[action='/console/signout'] button")
        .await;
    c.browser().wait_for("form.signin").await;
    let response = c
        .http
        .get(format!("{}/console/approvals", c.url))
        .header("cookie", format!("warden_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/console/signin");
    c.stop().await;
}
