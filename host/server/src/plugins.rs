//! `/v1/plugins`: list, show, upload (add or replace), remove, and set grants.
//!
//! An upload is the component as the body (`Content-Type: application/wasm`), or a
//! `multipart/form-data` form with the parts `component` (required), `grant` (TOML)
//! and `manifest` (TOML); or a registry reference as JSON (`Content-Type:
//! application/json`, `{"reference": "oci://…", "grant": "…TOML…"}`), pulled, checked
//! and judged by the `[trust]` policy as `warden plugin add oci://…` does. A grant is
//! TOML (`application/toml`, `text/plain`) or JSON.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Extension, FromRequest as _, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::api::AppState;
use super::auth::Caller;
use super::error::ApiError;
use super::registry::Served;
use warden_config::grant::Grant;
use warden_config::home::Action;
use warden_config::manifest::Manifest;
use warden_policy::Resource;
use warden_runtime::error::{BoxError, chain};
use warden_runtime::home::InstalledMeta;

/// Who may see a plugin: its managers, and those offered one of its tools.
fn visible(caller: &Caller, served: &Served) -> bool {
    caller.may(Action::ManagePlugins)
        || caller.may(Action::ManageGrants)
        || served
            .plugin
            .tools
            .iter()
            .any(|t| caller.offers(&served.plugin.resource(&t.name)))
}

pub(crate) async fn list(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
) -> axum::Json<Value> {
    let plugins: Vec<Value> = state
        .registry
        .snapshot()
        .iter()
        .filter(|(_, served)| visible(&caller, served))
        .map(|(name, served)| {
            let manifest = served.meta.manifest.as_ref();
            json!({
                "name": name,
                "digest": served.plugin.digest,
                "version": manifest.and_then(|m| m.version.clone()),
                "description": manifest.and_then(|m| m.description.clone()),
                "source": served.meta.source,
                "added_at": served.meta.added_at,
                "tools": served.plugin.tools.iter().map(|t| format!("{name}/{}", t.name)).collect::<Vec<_>>(),
            })
        })
        .collect();
    axum::Json(json!({ "plugins": plugins }))
}

pub(crate) async fn show(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(name): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    let served = state.registry.get(&name);
    let seen = match &served {
        Some(served) => visible(&caller, served),
        // Not served: managers and those offered some tool anywhere learn it is not.
        None => {
            caller.may(Action::ManagePlugins)
                || caller.may(Action::ManageGrants)
                || caller.offers(&Resource::tool(&name, "*"))
        }
    };
    if !seen {
        let resource = Resource::tool(&name, "*");
        let gate = caller.gate(warden_runtime::Via::Http);
        state
            .registry
            .runtime()
            .admit_about(&gate, Action::CallTool, &resource, &json!({}), Some(&name))
            .await
            .map_err(|refusal| ApiError::refused(Action::CallTool, &resource, &refusal))?;
    }
    let served = served.ok_or_else(|| {
        ApiError::not_found(
            "unknown-plugin",
            format!("no plugin named \"{name}\" is served (GET /v1/plugins lists them)"),
        )
    })?;
    Ok(axum::Json(warden_runtime::inspect::describe(
        &served.plugin,
        &served.meta,
    )))
}

fn text(bytes: &[u8], what: &str) -> Result<String, ApiError> {
    String::from_utf8(bytes.to_vec())
        .map_err(|_| ApiError::bad_request(format!("the {what} is not UTF-8 text")))
}

fn invalid(code: &str, err: impl Into<BoxError>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, chain(err))
}

fn parse_grant(bytes: &[u8], json: bool, name: &str) -> Result<Grant, ApiError> {
    let grant = if json {
        let grant: Grant = serde_json::from_slice(bytes)
            .map_err(|e| invalid("invalid-grant", format!("the grant: {e}")))?;
        grant.check(name).map_err(|e| invalid("invalid-grant", e))?;
        grant
    } else {
        Grant::parse(&text(bytes, "grant")?, name).map_err(|e| invalid("invalid-grant", e))?
    };
    Ok(grant)
}

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
}

fn rejected(status: StatusCode, text: String) -> ApiError {
    ApiError::new(status, super::error::code_for_status(status), text)
}

pub(crate) async fn upload(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(name): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    state
        .require(&caller, Action::ManagePlugins, Some(&name))
        .await?;
    warden_runtime::home::check_name(&name).map_err(|e| ApiError::bad_request(chain(e)))?;
    if is_json(&request) {
        return add_reference(&state, &caller, &name, request).await;
    }
    if state.trust().requires_signatures() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "untrusted-plugin",
            "an uploaded component has no signature, and [trust] require_signatures = true: publish it, sign it, and PUT its reference ({\"reference\": \"oci://…\"})",
        ));
    }
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"multipart/form-data"));
    let (mut wasm, mut grant, mut manifest) = (None, None, None);
    if multipart {
        let mut form = Multipart::from_request(request, &())
            .await
            .map_err(|r| rejected(r.status(), r.body_text()))?;
        while let Some(field) = form
            .next_field()
            .await
            .map_err(|r| rejected(r.status(), r.body_text()))?
        {
            let part = field.name().unwrap_or_default().to_string();
            let bytes = field
                .bytes()
                .await
                .map_err(|r| rejected(r.status(), r.body_text()))?;
            match part.as_str() {
                "component" => wasm = Some(bytes.to_vec()),
                "grant" => grant = Some(parse_grant(&bytes, false, &name)?),
                "manifest" => {
                    manifest = Some(
                        Manifest::parse(&text(&bytes, "manifest")?)
                            .map_err(|e| invalid("invalid-manifest", e))?,
                    )
                }
                other => {
                    return Err(ApiError::bad_request(format!(
                        "unknown form part {other:?}: send `component` (the .wasm), and optionally `grant` and `manifest` (TOML)"
                    )));
                }
            }
        }
    } else {
        let bytes = Bytes::from_request(request, &())
            .await
            .map_err(|r| rejected(r.status(), r.body_text()))?;
        wasm = Some(bytes.to_vec());
    }
    let Some(wasm) = wasm.filter(|w| !w.is_empty()) else {
        return Err(ApiError::bad_request(
            "no component: send the .wasm as the body (Content-Type: application/wasm) or as the form part `component`",
        ));
    };
    if grant.is_some() {
        state
            .require(&caller, Action::ManageGrants, Some(&name))
            .await?;
    }
    let meta = InstalledMeta {
        name: name.clone(),
        digest: warden_runtime::plugin::digest(&wasm),
        added_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        source: format!("http upload by {}", caller.principal),
        manifest,
        wit_docs: None,
        provenance: None,
    };
    installed(&state, &caller, meta, wasm, grant).await
}

async fn installed(
    state: &AppState,
    caller: &Caller,
    meta: InstalledMeta,
    wasm: Vec<u8>,
    grant: Option<Grant>,
) -> Result<Response, ApiError> {
    let (served, replaced) = state
        .registry
        .install(&caller.principal, meta, wasm, grant)
        .await?;
    let status = if replaced {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        axum::Json(warden_runtime::inspect::describe(
            &served.plugin,
            &served.meta,
        )),
    )
        .into_response())
}

/// `{"reference": "oci://…", "grant": "TOML"}`: the body of a PUT by reference.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ByReference {
    reference: String,
    #[serde(default)]
    grant: Option<String>,
}

/// The answer to a registry error: 400 for a bad reference, 502 when the registry
/// could not be used, 422 when what it holds is refused.
fn registry_error(err: warden_oci::OciError) -> ApiError {
    use warden_oci::OciError as E;
    let (status, code) = match &err {
        E::Reference { .. } => (StatusCode::BAD_REQUEST, "bad-request"),
        E::Unreachable { .. } | E::Registry { .. } | E::Unauthorized { .. } => {
            (StatusCode::BAD_GATEWAY, "registry-error")
        }
        E::Untrusted { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "untrusted-plugin"),
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "invalid-plugin"),
    };
    ApiError::new(status, code, chain(err))
}

async fn add_reference(
    state: &AppState,
    caller: &Caller,
    name: &str,
    request: Request,
) -> Result<Response, ApiError> {
    let bytes = Bytes::from_request(request, &())
        .await
        .map_err(|r| rejected(r.status(), r.body_text()))?;
    let body: ByReference = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "a JSON body is {{\"reference\": \"oci://REGISTRY/REPO:TAG\", \"grant\": \"…TOML…\"}}: {e}"
        ))
    })?;
    let reference: warden_oci::OciRef = body.reference.parse().map_err(registry_error)?;
    let grant = match &body.grant {
        Some(text) => {
            state
                .require(caller, Action::ManageGrants, Some(name))
                .await?;
            Some(parse_grant(text.as_bytes(), false, name)?)
        }
        None => None,
    };
    let trust = state.trust();
    let fetched = warden_oci::fetch(&reference, &trust)
        .await
        .map_err(registry_error)?;
    let provenance = match fetched.provenance(&trust) {
        Ok(provenance) => provenance,
        Err(err) => {
            let old = state.registry.home().meta(name).ok().map(|m| m.digest);
            let error = warden_runtime::error::Chain(&err).to_string();
            state
                .record(warden_runtime::changes::plugin_refused(
                    &caller.principal,
                    name,
                    old.as_deref(),
                    &fetched.pulled.digest,
                    &error,
                ))
                .await;
            return Err(registry_error(err));
        }
    };
    let manifest = fetched
        .pulled
        .manifest()
        .map(Manifest::parse)
        .transpose()
        .map_err(|e| invalid("invalid-manifest", e))?;
    let wasm = fetched.pulled.wasm;
    let meta = InstalledMeta {
        name: name.to_string(),
        digest: warden_runtime::plugin::digest(&wasm),
        added_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        source: reference.to_string(),
        manifest,
        wit_docs: fetched
            .pulled
            .annotations
            .get(warden_oci::artifact::ANNOTATION_WIT_DOCS)
            .cloned(),
        provenance: Some(provenance),
    };
    installed(state, caller, meta, wasm, grant).await
}

pub(crate) async fn remove(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(name): Path<String>,
) -> Result<axum::Json<Value>, ApiError> {
    state
        .require(&caller, Action::ManagePlugins, Some(&name))
        .await?;
    let digest = state.registry.remove(&caller.principal, &name).await?;
    Ok(axum::Json(json!({ "removed": name, "digest": digest })))
}

pub(crate) async fn set_grant(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(name): Path<String>,
    request: Request,
) -> Result<axum::Json<Value>, ApiError> {
    state
        .require(&caller, Action::ManageGrants, Some(&name))
        .await?;
    if state.registry.get(&name).is_none() && state.registry.home().meta(&name).is_err() {
        return Err(ApiError::not_found(
            "unknown-plugin",
            format!("no plugin named \"{name}\" is installed (GET /v1/plugins lists them)"),
        ));
    }
    let json = is_json(&request);
    let bytes = Bytes::from_request(request, &())
        .await
        .map_err(|r| rejected(r.status(), r.body_text()))?;
    let grant = parse_grant(&bytes, json, &name)?;
    let served = state
        .registry
        .set_grant(&caller.principal, &name, grant)
        .await
        .map_err(|err| match err {
            super::registry::ChangeError::Invalid(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-grant", message)
            }
            other => other.into(),
        })?;
    Ok(axum::Json(json!({
        "plugin": name,
        "digest": served.plugin.digest,
        "grant": served.plugin.grant.as_ref().map(Grant::to_toml),
        "notice": served.plugin.notice,
    })))
}

/// `POST /v1/plugins/{name}/grant/accept-tools`, body `{"tools": [...]}` (or empty for
/// every tool): accepts the tools as they are defined now, as `warden grant
/// accept-tools` does; a withheld tool is served again. Needs `manage-grants`.
pub(crate) async fn accept_tools(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Arc<Caller>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<axum::Json<Value>, ApiError> {
    state
        .require(&caller, Action::ManageGrants, Some(&name))
        .await?;
    let unknown = || {
        ApiError::not_found(
            "unknown-plugin",
            format!("no plugin named \"{name}\" is served (GET /v1/plugins lists them)"),
        )
    };
    let served = state.registry.get(&name).ok_or_else(unknown)?;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(default)]
        tools: Vec<String>,
    }
    let body: Body = if body.iter().all(u8::is_ascii_whitespace) {
        Body { tools: Vec::new() }
    } else {
        serde_json::from_slice(&body).map_err(|err| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid-json",
                format!(
                    "the body must be {{\"tools\": [\"TOOL\", …]}} (or empty for every tool): {err}"
                ),
            )
        })?
    };
    let Some(grant) = served.plugin.grant.clone() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "no-grant",
            format!(
                "plugin \"{name}\" has no grant, so none of its tools is withheld: set one (PUT /v1/plugins/{name}/grant), which accepts its tools as they are"
            ),
        ));
    };
    let (accepted_grant, accepted) =
        warden_runtime::pins::accept(&grant, &served.plugin, &body.tools).map_err(|message| {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unknown-tool", message)
        })?;
    let served = state
        .registry
        .set_grant(&caller.principal, &name, accepted_grant)
        .await?;
    Ok(axum::Json(json!({
        "plugin": name,
        "accepted": accepted,
        "withheld": served.plugin.withheld.iter().map(|w| &w.tool.name).collect::<Vec<_>>(),
        "grant": served.plugin.grant.as_ref().map(Grant::to_toml),
    })))
}
