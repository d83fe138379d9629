//! Tool definitions pinned by the grant, over the HTTP API: `PUT …/grant` records
//! them, a tool whose definition the grant does not accept is not listed and a call of
//! it is refused (403, `withheld`), and `POST …/grant/accept-tools` (for
//! `manage-grants`) serves it again.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use warden_tests::guests;

use super::{ADMIN, READER, Test, error_code};

async fn put_grant(t: &Test, toml: &str) -> Value {
    let resp = t
        .req(Method::PUT, "/v1/plugins/text/grant", Some(ADMIN))
        .header("content-type", "application/toml")
        .body(toml.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

async fn accept(t: &Test, token: &str, body: Value) -> (StatusCode, Value) {
    let resp = t
        .req(
            Method::POST,
            "/v1/plugins/text/grant/accept-tools",
            Some(token),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tool_the_grant_does_not_accept_is_withheld_until_accepted_over_http() {
    let t = Test::start(&[("text", guests::TEXT)], "").await;
    let set = put_grant(&t, "plugin = \"text\"\n").await;
    let toml = set["grant"].as_str().unwrap();
    assert!(toml.contains("[tool_definitions]"), "{set}");
    let pinned = toml
        .lines()
        .find_map(|l| l.strip_prefix("word-count = "))
        .unwrap()
        .trim_matches('"')
        .to_string();

    // A grant accepting another definition of word-count than the component's.
    let other = format!("sha256:{}", "0".repeat(64));
    put_grant(&t, &toml.replace(&pinned, &other)).await;
    let tools = t.tools().await;
    assert!(!tools.contains(&"text/word-count".to_string()), "{tools:?}");
    assert!(tools.contains(&"text/diff".to_string()), "{tools:?}");
    let (status, body) = t
        .call(ADMIN, "text/word-count", json!({"text": "a b"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(error_code(&body), "withheld");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("accepted {other}, now {pinned}")),
        "{body}"
    );
    let (status, body) = t.get(Some(ADMIN), "/v1/plugins/text").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["withheld_tools"][0]["name"], "word-count", "{body}");

    // Accepting is managing grants: not the reader's.
    let (status, _) = accept(&t, READER, json!({"tools": ["word-count"]})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = accept(&t, ADMIN, json!({"tools": ["nope"]})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, body) = accept(&t, ADMIN, json!({"tools": ["word-count"]})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["accepted"],
        json!([{"tool": "word-count", "before": other, "now": pinned}])
    );
    assert_eq!(body["withheld"], json!([]));
    let (status, body) = t
        .call(ADMIN, "text/word-count", json!({"text": "a b"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
