//! Probes `wasi:http` and `wasi:sockets` and reports what the host answered.
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(dead_code, reason = "exported only to wasm")
)]

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, Method, OutgoingRequest, Scheme};
use wasip2::io::streams::StreamError;
use wasip2::sockets::{instance_network, ip_name_lookup, network, tcp_create_socket};

warden_sdk::wit_bindgen::generate!({
    world: "warden-test:netprobe/netprobe",
    path: "wit",
    runtime_path: "warden_sdk::wit_bindgen::rt",
});

struct Probe;

fn split_url(url: &str) -> Result<(Scheme, String, String), String> {
    let (scheme, rest) = url.split_once("://").ok_or("no scheme")?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    Ok((scheme, authority.to_string(), path))
}

fn entries(fields: &Fields) -> Vec<(String, String)> {
    fields
        .entries()
        .into_iter()
        .map(|(n, v)| (n, String::from_utf8_lossy(&v).into_owned()))
        .collect()
}

impl Guest for Probe {
    fn http(method: String, url: String, headers: Vec<(String, String)>) -> Result<Answer, String> {
        let (scheme, authority, path) = split_url(&url)?;
        let fields = Fields::new();
        for (name, value) in &headers {
            fields
                .append(name, value.as_bytes())
                .map_err(|e| format!("header {name}: {e:?}"))?;
        }
        let request = OutgoingRequest::new(fields);
        let method = match method.as_str() {
            "GET" => Method::Get,
            "POST" => Method::Post,
            other => Method::Other(other.to_string()),
        };
        request
            .set_method(&method)
            .and_then(|()| request.set_scheme(Some(&scheme)))
            .and_then(|()| request.set_authority(Some(&authority)))
            .and_then(|()| request.set_path_with_query(Some(&path)))
            .map_err(|()| "the host rejected the URL's parts".to_string())?;
        let sent = request.headers();
        let body = request.body().map_err(|()| "no body")?;
        let future = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
        wasip2::http::types::OutgoingBody::finish(body, None).map_err(|e| format!("{e:?}"))?;
        let sent_headers = entries(&sent);
        drop(sent);
        future.subscribe().block();
        let response = match future.get() {
            Some(Ok(Ok(response))) => response,
            Some(Ok(Err(code))) => return Err(format!("{code:?}")),
            _ => return Err("no response".into()),
        };
        let status = response.status();
        let headers = entries(&response.headers());
        let incoming = response.consume().map_err(|()| "body taken")?;
        let stream = incoming.stream().map_err(|()| "stream taken")?;
        let mut bytes = Vec::new();
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(err)) => {
                    let code = wasip2::http::types::http_error_code(&err)
                        .map(|c| format!("{c:?}"))
                        .unwrap_or_else(|| err.to_debug_string());
                    return Err(format!("body after {} bytes: {code}", bytes.len()));
                }
            }
        }
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            sent_headers,
        })
    }

    fn tcp_connect(addr: String) -> Result<(), String> {
        let parsed: std::net::SocketAddr = addr.parse().map_err(|e| format!("{e}"))?;
        let std::net::SocketAddr::V4(v4) = parsed else {
            return Err("IPv4 only".into());
        };
        let socket = tcp_create_socket::create_tcp_socket(network::IpAddressFamily::Ipv4)
            .map_err(|e| format!("create: {e:?}"))?;
        let net = instance_network::instance_network();
        let [a, b, c, d] = v4.ip().octets();
        let remote = network::IpSocketAddress::Ipv4(network::Ipv4SocketAddress {
            port: v4.port(),
            address: (a, b, c, d),
        });
        socket
            .start_connect(&net, remote)
            .map_err(|e| format!("connect: {e:?}"))?;
        socket.subscribe().block();
        socket
            .finish_connect()
            .map(|_| ())
            .map_err(|e| format!("connect: {e:?}"))
    }

    fn lookup(name: String) -> Result<Vec<String>, String> {
        let net = instance_network::instance_network();
        let stream =
            ip_name_lookup::resolve_addresses(&net, &name).map_err(|e| format!("{e:?}"))?;
        let mut found = Vec::new();
        loop {
            match stream.resolve_next_address() {
                Ok(Some(addr)) => found.push(format!("{addr:?}")),
                Ok(None) => break,
                Err(network::ErrorCode::WouldBlock) => stream.subscribe().block(),
                Err(e) => return Err(format!("{e:?}")),
            }
        }
        Ok(found)
    }

    fn env_all() -> Vec<(String, String)> {
        std::env::vars().collect()
    }
}

export!(Probe);
