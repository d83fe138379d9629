//! Registry credentials, read when a registry is contacted and never stored in the
//! home: from the environment (`WARDEN_REGISTRY_USERNAME` and
//! `WARDEN_REGISTRY_PASSWORD`), else from Docker's config file
//! (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: its `auths` entry for
//! the registry, or the credential helper it names in `credHelpers` or `credsStore`),
//! else none (anonymous).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use oci_client::secrets::RegistryAuth;
use serde::Deserialize;

use crate::error::OciError;
use warden_config::env;

/// The credentials to use for `registry` (`host[:port]`).
pub fn credentials(registry: &str) -> Result<RegistryAuth, OciError> {
    if let Some(auth) = from_env(registry)? {
        return Ok(auth);
    }
    match docker_config_path() {
        Some(path) => from_docker_config(&path, registry),
        None => Ok(RegistryAuth::Anonymous),
    }
}

fn from_env(registry: &str) -> Result<Option<RegistryAuth>, OciError> {
    let user = std::env::var(env::REGISTRY_USERNAME)
        .ok()
        .filter(|v| !v.is_empty());
    let password = std::env::var(env::REGISTRY_PASSWORD)
        .ok()
        .filter(|v| !v.is_empty());
    match (user, password) {
        (Some(user), Some(password)) => Ok(Some(RegistryAuth::Basic(user, password))),
        (None, None) => Ok(None),
        _ => Err(OciError::Credentials {
            registry: registry.to_string(),
            problem: format!(
                "set both {} and {}, or neither",
                env::REGISTRY_USERNAME,
                env::REGISTRY_PASSWORD
            ),
        }),
    }
}

/// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(env::DOCKER_CONFIG).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(|home| PathBuf::from(home).join(".docker").join("config.json"))
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfig {
    #[serde(default)]
    auths: BTreeMap<String, DockerAuth>,
    #[serde(default)]
    creds_store: Option<String>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Default, Deserialize)]
struct DockerAuth {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    registrytoken: Option<String>,
}

fn from_docker_config(path: &Path, registry: &str) -> Result<RegistryAuth, OciError> {
    let problem = |problem: String| OciError::Credentials {
        registry: registry.to_string(),
        problem: format!("{}: {problem}", path.display()),
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(RegistryAuth::Anonymous);
        }
        Err(err) => return Err(problem(err.to_string())),
    };
    let config: DockerConfig =
        serde_json::from_str(&text).map_err(|e| problem(format!("not a Docker config: {e}")))?;
    if let Some(helper) = config.cred_helpers.get(registry) {
        return from_helper(helper, registry).map_err(problem);
    }
    let entry = config.auths.iter().find(|(key, _)| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        key.split('/').next() == Some(registry)
    });
    if let Some((_, entry)) = entry {
        if let Some(token) = &entry.registrytoken {
            return Ok(RegistryAuth::Bearer(token.clone()));
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    problem(format!(
                        "auths.{registry:?}.auth is not base64 of USER:PASSWORD"
                    ))
                })?;
            let (user, password) = decoded
                .split_once(':')
                .ok_or_else(|| problem(format!("auths.{registry:?}.auth is not USER:PASSWORD")))?;
            return Ok(RegistryAuth::Basic(user.to_string(), password.to_string()));
        }
        if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
            return Ok(RegistryAuth::Basic(user.clone(), password.clone()));
        }
    }
    if let Some(store) = &config.creds_store {
        return from_helper(store, registry).map_err(problem);
    }
    Ok(RegistryAuth::Anonymous)
}

/// Asks `docker-credential-<helper> get` for `registry`; a helper that knows no
/// credentials for it means anonymous.
fn from_helper(helper: &str, registry: &str) -> Result<RegistryAuth, String> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Username")]
        username: String,
        #[serde(rename = "Secret")]
        secret: String,
    }
    if helper.is_empty()
        || !helper
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(format!("credential helper {helper:?} is not a helper name"));
    }
    let program = format!("docker-credential-{helper}");
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let output = child
        .wait_with_output()
        .map_err(|e| format!("running {program}: {e}"))?;
    if !output.status.success() {
        let said = String::from_utf8_lossy(&output.stdout).to_lowercase();
        if said.contains("credentials not found") {
            return Ok(RegistryAuth::Anonymous);
        }
        return Err(format!("{program} get failed ({})", output.status));
    }
    let answer: Answer = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("{program} get answered no credentials: {e}"))?;
    Ok(if answer.username == "<token>" {
        RegistryAuth::Bearer(answer.secret)
    } else {
        RegistryAuth::Basic(answer.username, answer.secret)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_docker_config_gives_the_registrys_login_and_nothing_for_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("ada:s3cret");
        std::fs::write(
            &path,
            format!(r#"{{"auths": {{"https://r.example:5000": {{"auth": "{auth}"}}, "other.example": {{"username": "bo", "password": "pw"}}}}}}"#),
        )
        .unwrap();
        assert_eq!(
            from_docker_config(&path, "r.example:5000").unwrap(),
            RegistryAuth::Basic("ada".into(), "s3cret".into())
        );
        assert_eq!(
            from_docker_config(&path, "other.example").unwrap(),
            RegistryAuth::Basic("bo".into(), "pw".into())
        );
        assert_eq!(
            from_docker_config(&path, "third.example").unwrap(),
            RegistryAuth::Anonymous
        );
        assert_eq!(
            from_docker_config(&dir.path().join("none.json"), "r.example").unwrap(),
            RegistryAuth::Anonymous
        );
        std::fs::write(&path, "{not json").unwrap();
        let err = from_docker_config(&path, "r.example")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a Docker config"), "{err}");
    }
}
