//! The approvals inbox in the browser: a held refund arrives without a reload and is
//! approved, the run finishes; an edited approval shows its diff first; a rejection's
//! reason reaches the agent; a question is answered; a run is cancelled from its page. And the auditor, who
//! sees the holds but no button, and whose forged approvals are refused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::{ANA, AUD, Console, OPS, a11y};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_refund_is_approved_from_the_inbox_and_the_run_finishes() {
    let Some(c) = Console::start().await else {
        return;
    };
    c.sign_in(ANA).await;
    c.open("/console/approvals").await;
    c.browser()
        .wait_for_text("Nothing is waiting for a decision.")
        .await;

    // A hold arrives while the inbox is open: it appears without a reload.
    let run = c.start_refund(150).await;
    c.browser().wait_for("article.hold").await;
    c.browser().wait_for_text("1 new held call arrived.").await;
    assert_eq!(
        c.browser().url().await,
        format!("{}/console/approvals", c.url)
    );
    let text = c.browser().text().await;
    for needle in [
        "refunds/issue held for approval",
        &run,
        "scripted",
        "user:ops",
        "refunds-above-100-need-approval",
        "\"amount\": 150",
    ] {
        assert!(
            text.contains(needle),
            "{needle:?} not in the inbox:\n{text}"
        );
    }
    a11y::check(c.browser(), "approvals").await;

    c.browser().click("article.hold form.inline button").await;
    c.browser().wait_for_text("Approved.").await;
    let finished = c.run_when(&run, "finished").await;
    assert_eq!(finished["run"]["status"], "finished");
    c.browser()
        .click(&format!("a[href='/console/runs/{run}']"))
        .await;
    c.reload_until(&format!("/console/runs/{run}"), "finished")
        .await;
    let text = c.browser().text().await;
    assert!(
        text.contains("Decision: approved on refunds/issue by user:ana"),
        "{text}"
    );
    a11y::check(c.browser(), "run").await;
    let decided = c.records("kind=approval.decide").await;
    assert!(
        decided.iter().any(|r| r["principal"] == "user:ana"),
        "{decided:?}"
    );

    // Edit and approve: the diff first, then the edited call (decided again).
    let run = c.start_refund(150).await;
    c.open("/console/approvals").await;
    c.browser().click("article.hold details.edit summary").await;
    let args = json!({ "order": "A-17", "amount": 120, "reason": "broken kettle, partial" });
    c.browser()
        .fill("article.hold textarea[name=args]", &args.to_string())
        .await;
    c.browser().click("details.edit button[type=submit]").await;
    c.browser().wait_for("pre.diff").await;
    let removed = c.browser().find("pre.diff del").await.text().await.unwrap();
    let added = c.browser().find("pre.diff ins").await.text().await.unwrap();
    assert!(removed.contains("\"amount\": 150"), "{removed}");
    assert!(added.contains("\"amount\": 120"), "{added}");
    a11y::check(c.browser(), "approval-review").await;
    c.browser().click("main form button.primary").await;
    c.browser().wait_for_text("Approved.").await;
    c.run_when(&run, "finished").await;
    let (_, issued) = c
        .api(
            OPS,
            Method::POST,
            "/v1/tools/refunds/issued",
            Some(json!({})),
        )
        .await;
    let amounts: Vec<&Value> = issued["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["amount"])
        .collect();
    assert_eq!(amounts, [&json!(150), &json!(120)], "{issued}");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_hold_and_an_answer_reach_the_agent_and_a_run_is_cancelled_from_its_page() {
    let Some(c) = Console::start().await else {
        return;
    };
    let run = c.start_refund(150).await;
    c.sign_in(ANA).await;
    c.open("/console/approvals").await;
    c.browser()
        .fill("article.hold input[name=reason]", "No receipt attached")
        .await;
    c.browser().click("article.hold form.reject button").await;
    c.browser().wait_for_text("Rejected.").await;
    // The agent received the reason: it is in what it observed.
    let finished = c.run_when(&run, "finished").await;
    assert!(
        finished["run"]["result"]
            .to_string()
            .contains("No receipt attached"),
        "{finished}"
    );
    c.reload_until(&format!("/console/runs/{run}"), "finished")
        .await;
    let text = c.browser().text().await;
    assert!(text.contains("Decision: rejected"), "{text}");
    assert!(text.contains("No receipt attached"), "{text}");
    c.open("/console/runs").await;
    a11y::check(c.browser(), "runs").await;

    // An agent's question: answered from the inbox, and the agent observes the answer.
    let task =
        json!({ "script": [{ "ask": "Which warehouse ships the kettle?" }, { "finish": "done" }] });
    let (status, body) = c
        .api(
            OPS,
            Method::POST,
            "/v1/runs",
            Some(json!({ "agent": "scripted", "task": task, "wait": true })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let asked = body["run"]["id"].as_str().unwrap().to_string();
    c.open("/console/approvals").await;
    c.browser().wait_for_text("scripted asks a question").await;
    c.browser()
        .wait_for_text("Which warehouse ships the kettle?")
        .await;
    c.browser()
        .fill("article.hold textarea[name=answer]", "Leeds")
        .await;
    c.browser()
        .click("article.hold form[action$='/approve'] button")
        .await;
    c.browser().wait_for_text("Approved.").await;
    let finished = c.run_when(&asked, "finished").await;
    assert!(
        finished["run"]["result"].to_string().contains("Leeds"),
        "{finished}"
    );

    // Cancelled from its page.
    let run = c.start_refund(150).await;
    c.open(&format!("/console/runs/{run}")).await;
    c.browser().click("main form button.danger").await;
    c.browser().wait_for_text("Cancelled.").await;
    c.run_when(&run, "cancelled").await;
    c.stop().await;
}

/// Sends `POST path` from the page with `body` (form-encoded); the status.
async fn post_from_page(c: &Console, path: &str, body: &str) -> u64 {
    c.browser()
        .js_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], { method: 'POST', credentials: 'same-origin',
               headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: arguments[1] })
               .then((r) => done(r.status), (e) => done(String(e)));",
            vec![json!(path), json!(body)],
        )
        .await
        .as_u64()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auditor_sees_no_approve_button_and_forged_approvals_are_refused() {
    let Some(c) = Console::start().await else {
        return;
    };
    let run = c.start_refund(150).await;
    let (_, queue) = c.api(ANA, Method::GET, "/v1/approvals", None).await;
    let id = queue["approvals"][0]["id"].as_str().unwrap().to_string();

    c.sign_in(AUD).await;
    c.open("/console/approvals").await;
    c.browser().wait_for("article.hold").await;
    let text = c.browser().text().await;
    assert!(
        text.contains("You may see this hold but not decide on it."),
        "{text}"
    );
    assert_eq!(c.browser().count("article.hold button").await, 0);
    assert_eq!(c.browser().count("form[action$='/approve']").await, 0);
    a11y::check(c.browser(), "approvals-auditor").await;

    // Forged approvals from the auditor's own session: without the CSRF token, with a
    // wrong one, and with the right one (the policy refuses: no decide-approval).
    let path = format!("/console/approvals/{id}/approve");
    assert_eq!(post_from_page(&c, &path, "").await, 403);
    assert_eq!(post_from_page(&c, &path, "csrf=0123abcd").await, 403);
    let csrf = c
        .browser()
        .js(
            "return document.querySelector('meta[name=csrf-token]').content;",
            vec![],
        )
        .await;
    let csrf = csrf.as_str().unwrap().to_string();
    assert_eq!(
        post_from_page(&c, &path, &format!("csrf={csrf}")).await,
        403
    );
    // From another site: no session cookie goes with it (SameSite=Strict) — and even
    // with the cookie and the token, another Origin is refused.
    let forged = c
        .http
        .post(format!("{}{path}", c.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::UNAUTHORIZED);
    let session = c
        .browser()
        .client
        .get_named_cookie("warden_session")
        .await
        .unwrap();
    let forged = c
        .http
        .post(format!("{}{path}", c.url))
        .header("cookie", format!("warden_session={}", session.value()))
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    // Still waiting; the refusals are on the record under the auditor's principal.
    let (status, body) = c
        .api(OPS, Method::GET, &format!("/v1/runs/{run}"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["run"]["status"], "awaiting-approval", "{body}");
    let denied = c.records("kind=access.denied&principal=user:aud").await;
    assert!(
        denied
            .iter()
            .any(|r| r["fields"]["action"] == "decide-approval" && r["fields"]["via"] == "console"),
        "{denied:?}"
    );
    assert!(
        denied.iter().any(|r| r["fields"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("CSRF"))),
        "{denied:?}"
    );
    c.stop().await;
}
