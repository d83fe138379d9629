//! Tries a capability, ignores the host's answer, and returns "ok".
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(dead_code, reason = "exported only to wasm")
)]

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingBody, OutgoingRequest, Scheme};

warden_sdk::wit_bindgen::generate!({
    world: "warden-test:prober/prober",
    path: ["../../../wit", "wit"],
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:host/log@0.1.0": warden_sdk::host::log,
        "warden:host/memory@0.1.0": warden_sdk::host::memory,
    },
});

struct Prober;

/// `GET url`; what came of it, which the caller ignores.
fn get(url: &str) -> Result<u16, String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let scheme = if scheme == "https" {
        Scheme::Https
    } else {
        Scheme::Http
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_method(&Method::Get)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(path)))
        .map_err(|()| "the host rejected the URL's parts".to_string())?;
    let body = request.body().map_err(|()| "no body")?;
    let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => Ok(response.status()),
        Some(Ok(Err(code))) => Err(format!("{code:?}")),
        _ => Err("no response".into()),
    }
}

impl Guest for Prober {
    fn fetch_then_ok(url: String) -> String {
        let _ignored = get(&url);
        "ok".into()
    }

    fn memory_then_ok(namespace: String) -> String {
        let _ignored = warden_sdk::host::memory::get(&namespace, "probe");
        "ok".into()
    }
}

export!(Prober);
