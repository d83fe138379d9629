//! GETs through `waki`'s blocking HTTP client, counting what succeeded.
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(dead_code, reason = "exported only to wasm")
)]

use waki::Client;

warden_sdk::wit_bindgen::generate!({
    world: "warden-test:wakiclient/wakiclient",
    path: "wit",
    runtime_path: "warden_sdk::wit_bindgen::rt",
});

struct WakiClient;

impl Guest for WakiClient {
    fn get_many(url: String, count: u32, expect: String) -> Tally {
        let client = Client::new();
        let mut tally = Tally {
            ok: 0,
            failed: 0,
            first_error: None,
        };
        for i in 0..count {
            match get(&client, &url, &expect) {
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
    }
}

fn get(client: &Client, url: &str, expect: &str) -> Result<(), String> {
    let response = client.get(url).send().map_err(|e| format!("send: {e:#}"))?;
    let status = response.status_code();
    let body = response
        .body()
        .map_err(|e| format!("reading the body: {e:#}"))?;
    let text = String::from_utf8_lossy(&body);
    if status != 200 || text != expect {
        return Err(format!("answered {status} with {text:?}"));
    }
    Ok(())
}

export!(WakiClient);
