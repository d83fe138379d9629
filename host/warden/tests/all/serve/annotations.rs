//! Tool annotations from the plugin's manifest, as the HTTP API shows them.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugins_and_tools_show_the_manifests_annotations() {
    let t = Test::start(&[], "").await;
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../plugins/files/warden.toml"
    ))
    .unwrap();
    let form = reqwest::multipart::Form::new()
        .part(
            "component",
            reqwest::multipart::Part::bytes(std::fs::read(guests::FILES).unwrap()),
        )
        .text("manifest", manifest);
    let resp = t
        .req(reqwest::Method::PUT, "/v1/plugins/files", Some(ADMIN))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    let (status, doc) = t.get(Some(ADMIN), "/v1/plugins/files").await;
    assert_eq!(status, StatusCode::OK);
    let hints = |doc: &Value, id: &str| {
        doc["tools"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {doc}"))["annotations"]
            .clone()
    };
    assert_eq!(
        hints(&doc, "files/read"),
        json!({"read_only": true, "destructive": false, "idempotent": true, "open_world": false})
    );
    assert_eq!(
        hints(&doc, "files/write"),
        json!({"read_only": false, "destructive": true, "idempotent": false, "open_world": false})
    );
    let (_, tools) = t.get(Some(ADMIN), "/v1/tools").await;
    assert_eq!(hints(&tools, "files/write")["destructive"], true, "{tools}");

    // Without a manifest: the conservative defaults (no network, so a closed world).
    let resp = t
        .req(reqwest::Method::PUT, "/v1/plugins/bare", Some(ADMIN))
        .header("content-type", "application/wasm")
        .body(std::fs::read(guests::FILES).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let (_, doc) = t.get(Some(ADMIN), "/v1/plugins/bare").await;
    assert_eq!(
        hints(&doc, "bare/read"),
        json!({"read_only": false, "destructive": true, "idempotent": false, "open_world": false})
    );
    t.server.shutdown().await;
}
