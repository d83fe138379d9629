//! The Wasm OCI artifact layout (as `wkg` and the Bytecode Alliance tooling write it):
//! an image manifest with one `application/wasm` layer (the component) and a config
//! of media type `application/vnd.wasm.config.v0+json`; Warden adds the plugin's
//! manifest and WIT docs as annotations of the image manifest.

use std::collections::BTreeMap;

use oci_client::client::{Config, ImageLayer};
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciImageManifest};
use serde_json::json;

use crate::error::OciError;

/// The media type of the component layer.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The media type of the config.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The older wasm-to-oci layer media type, accepted on pull.
const LEGACY_LAYER_MEDIA_TYPE: &str = oci_client::manifest::WASM_LAYER_MEDIA_TYPE;
/// The older wasm-to-oci config media type, accepted on pull.
const LEGACY_CONFIG_MEDIA_TYPE: &str = oci_client::manifest::WASM_CONFIG_MEDIA_TYPE;

/// Annotation: the plugin's manifest (`warden.toml` of the author), as TOML.
pub const ANNOTATION_MANIFEST: &str = "dev.warden.plugin.manifest";
/// Annotation: the component's WIT docs (`package-docs` JSON), for tool descriptions.
pub const ANNOTATION_WIT_DOCS: &str = "dev.warden.plugin.wit-docs";

/// The largest component Warden pulls, in bytes.
pub const MAX_COMPONENT_BYTES: i64 = 256 * 1024 * 1024;

/// What an author publishes.
#[derive(Clone, Debug, Default)]
pub struct Artifact {
    /// The component.
    pub wasm: Vec<u8>,
    /// The plugin's manifest as TOML, if any.
    pub manifest: Option<String>,
    /// `package-docs` JSON of its WIT, if any.
    pub wit_docs: Option<String>,
    /// Title, version, description (OCI `org.opencontainers.image.*` annotations).
    pub title: Option<String>,
    /// The plugin's version.
    pub version: Option<String>,
    /// One line about it.
    pub description: Option<String>,
    /// `org.opencontainers.image.created` (RFC 3339), if given.
    pub created: Option<String>,
}

impl Artifact {
    /// The layer, the config and the image manifest to push.
    pub(crate) fn build(&self) -> (ImageLayer, Config, OciImageManifest) {
        let layer = ImageLayer::new(self.wasm.clone(), WASM_LAYER_MEDIA_TYPE.to_string(), None);
        let mut config = json!({
            "architecture": "wasm",
            "os": "wasip2",
            "layerDigests": [layer.sha256_digest()],
        });
        if let Some(created) = &self.created {
            config["created"] = json!(created);
        }
        let config = Config::new(
            serde_json::to_vec(&config).unwrap_or_default(),
            WASM_CONFIG_MEDIA_TYPE.to_string(),
            None,
        );
        let mut annotations = BTreeMap::new();
        let mut put = |key: &str, value: &Option<String>| {
            if let Some(value) = value {
                annotations.insert(key.to_string(), value.clone());
            }
        };
        put("org.opencontainers.image.title", &self.title);
        put("org.opencontainers.image.version", &self.version);
        put("org.opencontainers.image.description", &self.description);
        put("org.opencontainers.image.created", &self.created);
        put(ANNOTATION_MANIFEST, &self.manifest);
        put(ANNOTATION_WIT_DOCS, &self.wit_docs);
        let mut manifest = OciImageManifest::build(
            std::slice::from_ref(&layer),
            &config,
            (!annotations.is_empty()).then_some(annotations),
        );
        manifest.media_type = Some(OCI_IMAGE_MEDIA_TYPE.to_string());
        manifest.artifact_type = None;
        (layer, config, manifest)
    }
}

/// Checks that `manifest` is a Wasm component artifact: a Wasm config and exactly one
/// Wasm layer, of a size Warden pulls. Returns the layer's descriptor.
pub(crate) fn component_layer<'a>(
    reference: &str,
    manifest: &'a OciImageManifest,
) -> Result<&'a oci_client::manifest::OciDescriptor, OciError> {
    let not_wasm = |found: String| OciError::NotWasm {
        reference: reference.to_string(),
        found,
    };
    let config = manifest.config.media_type.as_str();
    if config != WASM_CONFIG_MEDIA_TYPE && config != LEGACY_CONFIG_MEDIA_TYPE {
        let layers: Vec<&str> = manifest
            .layers
            .iter()
            .map(|l| l.media_type.as_str())
            .collect();
        return Err(not_wasm(format!(
            "its config is {config:?} and its layers are {layers:?}; expected the config {WASM_CONFIG_MEDIA_TYPE:?} and one {WASM_LAYER_MEDIA_TYPE:?} layer (push one with `warden plugin push` or `wkg oci push`)"
        )));
    }
    let wasm: Vec<_> = manifest
        .layers
        .iter()
        .filter(|l| {
            l.media_type == WASM_LAYER_MEDIA_TYPE || l.media_type == LEGACY_LAYER_MEDIA_TYPE
        })
        .collect();
    let [layer] = wasm.as_slice() else {
        return Err(not_wasm(format!(
            "it has {} {WASM_LAYER_MEDIA_TYPE:?} layers of {}; expected exactly one",
            wasm.len(),
            manifest.layers.len()
        )));
    };
    if !(0..=MAX_COMPONENT_BYTES).contains(&layer.size) {
        return Err(not_wasm(format!(
            "its component layer is {} bytes, over the {MAX_COMPONENT_BYTES} Warden pulls",
            layer.size
        )));
    }
    if !crate::reference::valid_digest(&layer.digest) {
        return Err(not_wasm(format!(
            "its component layer's digest {:?} is not sha256",
            layer.digest
        )));
    }
    Ok(layer)
}
