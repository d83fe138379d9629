//! GETs through `wstd`'s HTTP client, counting what succeeded.
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(dead_code, reason = "exported only to wasm")
)]

use wstd::http::{Body, Client, Request};

warden_sdk::wit_bindgen::generate!({
    world: "warden-test:wstdclient/wstdclient",
    path: "wit",
    runtime_path: "warden_sdk::wit_bindgen::rt",
});

struct WstdClient;

impl Guest for WstdClient {
    fn get_many(url: String, count: u32, expect: String) -> Tally {
        wstd::runtime::block_on(async move {
            let client = Client::new();
            let mut tally = Tally {
                ok: 0,
                failed: 0,
                first_error: None,
            };
            for i in 0..count {
                match get(&client, &url, &expect).await {
                    Ok(()) => tally.ok += 1,
                    Err(err) => {
                        tally.failed += 1;
                        tally
                            .first_error
                            .get_or_insert_with(|| format!("request {i}: {err}"));
                    }
                }
            }
            tally
        })
    }
}

async fn get(client: &Client, url: &str, expect: &str) -> Result<(), String> {
    let request = Request::get(url)
        .body(Body::empty())
        .map_err(|e| format!("building the request: {e}"))?;
    let response = client
        .send(request)
        .await
        .map_err(|e| format!("send: {e:#}"))?;
    let status = response.status();
    let mut body = response.into_body();
    let text = body
        .str_contents()
        .await
        .map_err(|e| format!("reading the body: {e:#}"))?;
    if status != 200 || text != expect {
        return Err(format!("answered {status} with {text:?}"));
    }
    Ok(())
}

export!(WstdClient);
