//! The console's stylesheet and script, embedded in the binary and served from this
//! origin (the Content-Security-Policy allows nothing else). Their paths carry a digest
//! of their content, so they can be cached for good.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

fn versioned(name: &str, ext: &str, content: &str) -> String {
    let digest = hex::encode(&Sha256::digest(content.as_bytes())[..6]);
    format!("/console/assets/{name}.{digest}.{ext}")
}

/// Where the stylesheet is served.
pub(crate) static CSS_PATH: LazyLock<String> = LazyLock::new(|| versioned("console", "css", CSS));

/// Where the script is served.
pub(crate) static JS_PATH: LazyLock<String> = LazyLock::new(|| versioned("console", "js", JS));

/// `GET /console/assets/{file}`.
pub(crate) async fn serve(Path(file): Path<String>) -> Response {
    let path = format!("/console/assets/{file}");
    let (body, kind) = if path == *CSS_PATH {
        (CSS, "text/css; charset=utf-8")
    } else if path == *JS_PATH {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    response
}
