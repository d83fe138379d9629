//! The console's protections without a browser (they hold even where the browser
//! tests are skipped): the sign-in form needs its own token, a change needs the
//! session's CSRF token and this server as its `Origin`, a session cookie is refused
//! once signed out.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};

use super::{Console, OPS};
use crate::serve::oauth::issuer::{Issuer, SigningKey, claims, now};

/// The value of cookie `name` among `Set-Cookie` headers.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The `value` of the first hidden `csrf` field (or meta tag) of `html`.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .map(|i| i + "name=\"csrf\" value=\"".len())
        .or_else(|| {
            html.find("name=\"csrf-token\" content=\"")
                .map(|i| i + "name=\"csrf-token\" content=\"".len())
        })
        .expect("a CSRF token in the page");
    html[at..at + 64].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_sessions_csrf_token_or_from_another_origin_are_refused() {
    let c = Console::serve().await;
    let url = |path: &str| format!("{}{path}", c.url);
    let form = "application/x-www-form-urlencoded";

    // Sign in: the form's token must come back with its cookie.
    let page = c.http.get(url("/console/signin")).send().await.unwrap();
    let nonce = set_cookie(page.headers(), "warden_signin").unwrap();
    let html = page.text().await.unwrap();
    assert_eq!(csrf_of(&html), nonce);
    let refused = c
        .http
        .post(url("/console/signin"))
        .header("content-type", form)
        .body(format!("csrf={nonce}&token={OPS}"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "no sign-in cookie");
    let signed_in = c
        .http
        .post(url("/console/signin"))
        .header("cookie", format!("warden_signin={nonce}"))
        .header("content-type", form)
        .body(format!("csrf={nonce}&token={OPS}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let raw = signed_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with("warden_session="))
        .unwrap();
    assert!(
        raw.ends_with("; Path=/console; Max-Age=28800; HttpOnly; Secure; SameSite=Strict"),
        "{raw}"
    );
    let session = format!(
        "warden_session={}",
        set_cookie(signed_in.headers(), "warden_session").unwrap()
    );

    let page = c
        .http
        .get(url("/console/runs"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_of(&page.text().await.unwrap());

    // A change: refused without the token, with a wrong one, from another origin.
    let post = |body: String, origin: Option<&str>| {
        let mut request = c
            .http
            .post(url("/console/runs/run_nope/cancel"))
            .header("cookie", &session)
            .header("content-type", form)
            .body(body);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        request.send()
    };
    assert_eq!(
        post(String::new(), None).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post("csrf=00".to_string(), None).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(format!("csrf={csrf}"), Some("https://evil.example"))
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    // With both, the request reaches the API's handler (here: no such run).
    let origin = c.url.clone();
    let reached = post(format!("csrf={csrf}"), Some(&origin)).await.unwrap();
    assert_eq!(reached.status(), StatusCode::NOT_FOUND);
    assert!(
        reached.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // Signed out: the cookie opens nothing, and a change is 401.
    let out = c
        .http
        .post(url("/console/signout"))
        .header("cookie", &session)
        .header("content-type", form)
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        post(format!("csrf={csrf}"), None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    c.stop().await;
}

/// Signs in over HTTP with `token`: the answer to the sign-in form.
async fn sign_in(c: &Console, token: &str) -> reqwest::Response {
    let page = c
        .http
        .get(format!("{}/console/signin", c.url))
        .send()
        .await
        .unwrap();
    let nonce = set_cookie(page.headers(), "warden_signin").unwrap();
    c.http
        .post(format!("{}/console/signin", c.url))
        .header("cookie", format!("warden_signin={nonce}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={nonce}&token={token}"))
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oauth_access_token_signs_in_with_the_roles_of_its_claims_and_an_expired_one_does_not() {
    let key = SigningKey::ec("console-key");
    let idp = Issuer::start(&[&key]).await;
    let c = Console::serve_with(&idp.config("")).await;

    let token = key.sign(&claims("dana", serde_json::json!({ "roles": ["auditor"] })));
    let signed_in = sign_in(&c, &token).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = set_cookie(signed_in.headers(), "warden_session").unwrap();
    let page = c
        .http
        .get(format!("{}/console/audit", c.url))
        .header("cookie", format!("warden_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("<strong>user:dana</strong>"), "{html}");
    assert!(html.contains("Chain verified"), "{html}");
    // An auditor: no plugin to manage, no grant editor.
    let page = c
        .http
        .get(format!("{}/console/plugins/refunds", c.url))
        .header("cookie", format!("warden_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::FORBIDDEN);

    let expired = key.sign(&claims(
        "dana",
        serde_json::json!({ "roles": ["auditor"], "exp": now() - 600 }),
    ));
    let refused = sign_in(&c, &expired).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(refused.headers(), "warden_session").is_none());
    c.stop().await;
}
