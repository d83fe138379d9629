//! Calls in flight across a hot reload, and the `Origin` check of `/mcp` on `serve`.

use super::*;

/// A component whose `version` answers `version`, and whose `slow` spins `iterations`
/// times before answering it too.
fn versioned(version: u32) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
  (core module $m
    (func (export "version") (result i32) i32.const {version})
    (func (export "slow") (param i64) (result i32)
      (loop $spin
        local.get 0
        i64.const 1
        i64.sub
        local.tee 0
        i64.const 0
        i64.gt_s
        br_if $spin)
      i32.const {version}))
  (core instance $i (instantiate $m))
  (func (export "version") (result u32) (canon lift (core func $i "version")))
  (func (export "slow") (param "iterations" s64) (result u32) (canon lift (core func $i "slow")))
)"#
    ))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_finishes_on_its_version_while_the_plugin_is_replaced() {
    let t = Test::start(&[], "").await;
    let put = |wasm: Vec<u8>| {
        let form = reqwest::multipart::Form::new()
            .part("component", reqwest::multipart::Part::bytes(wasm))
            .text("grant", "[limits]\ntimeout_ms = 120000\n");
        t.req(reqwest::Method::PUT, "/v1/plugins/v", Some(ADMIN))
            .multipart(form)
            .send()
    };
    assert_eq!(
        put(versioned(1)).await.unwrap().status(),
        StatusCode::CREATED
    );
    let (status, body) = t.call(ADMIN, "v/version", json!({})).await;
    assert_eq!((status, &body["result"]), (StatusCode::OK, &json!(1)));

    // A long call of version 1 …
    let slow = tokio::spawn({
        let req = t
            .req(reqwest::Method::POST, "/v1/tools/v/slow", Some(ADMIN))
            .json(&json!({"iterations": 4_000_000_000_i64}));
        async move {
            let resp = req.send().await.unwrap();
            (resp.status(), resp.json::<Value>().await.unwrap())
        }
    });
    wait_for("the slow call to be running", async || {
        let (_, text) = t.get(Some(ADMIN), "/metrics").await;
        text.as_str().unwrap().contains("warden_instances_live 1")
    })
    .await;
    // … while version 2 replaces it: new calls get version 2 at once.
    assert_eq!(put(versioned(2)).await.unwrap().status(), StatusCode::OK);
    let (status, body) = t.call(ADMIN, "v/version", json!({})).await;
    assert_eq!((status, &body["result"]), (StatusCode::OK, &json!(2)));
    assert!(
        !slow.is_finished(),
        "the slow call ended before the reload was seen"
    );

    // The call in flight ends on the version it started on.
    let (status, body) = slow.await.unwrap();
    assert_eq!(
        (status, &body["result"]),
        (StatusCode::OK, &json!(1)),
        "{body}"
    );
    let (status, body) = t.call(ADMIN, "v/slow", json!({"iterations": 1})).await;
    assert_eq!((status, &body["result"]), (StatusCode::OK, &json!(2)));

    // On record: each call with the digest of the component that answered it.
    let (_, records) = t
        .get(Some(ADMIN), "/v1/audit?kind=tool.call&plugin=v&tool=slow")
        .await;
    let digests: Vec<&str> = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fields"]["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests.len(), 2, "{records}");
    assert_eq!(digests[0], warden::plugin::digest(&versioned(1)));
    assert_eq!(digests[1], warden::plugin::digest(&versioned(2)));
    t.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_on_serve_refuses_a_foreign_origin() {
    let t = Test::start(&[("text", guests::TEXT)], "").await;
    let url = format!("{}/mcp", t.url);
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                   "clientInfo": {"name": "test", "version": "0"}}
    });
    // A page of another site, even with a valid token (a browser sends its cookies
    // and whatever a page puts in headers): refused before MCP sees it.
    let resp = crate::mcp::post(&t.http, &url, initialize.clone())
        .bearer_auth(ADMIN)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(error_code(&body), "forbidden-origin");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("https://evil.example"),
        "{body}"
    );
    // A loopback origin, and a program (no Origin), are served.
    for origin in [Some("http://localhost:5173"), None] {
        let mut req = crate::mcp::post(&t.http, &url, initialize.clone()).bearer_auth(ADMIN);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK, "{origin:?}");
        let init = crate::mcp::message(resp).await;
        assert_eq!(init["result"]["serverInfo"]["name"], "warden", "{init}");
    }
    t.server.shutdown().await;
}
