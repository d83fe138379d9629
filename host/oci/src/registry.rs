//! Talking to one registry: pull a component artifact, push one, read and add its
//! cosign signatures (its Sigstore bundles, attached as OCI referrers, are read and
//! added by `referrers.rs`). Every blob is checked against its digest before use.
//!
//! Plain HTTP only for a loopback registry; TLS (rustls, ring, the platform's roots)
//! for every other one. Credentials come from [`crate::auth`], per registry.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::DigestError;
use oci_client::manifest::{
    IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor,
    OciImageManifest,
};
use oci_client::secrets::RegistryAuth;
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::artifact::{self, Artifact};
use crate::cosign;
use crate::error::OciError;
use crate::reference::OciRef;

/// Manifest media types Warden asks for.
const ACCEPT: &[&str] = &[
    OCI_IMAGE_MEDIA_TYPE,
    IMAGE_MANIFEST_MEDIA_TYPE,
    OCI_IMAGE_INDEX_MEDIA_TYPE,
];
/// The largest signature payload Warden reads.
const MAX_PAYLOAD_BYTES: i64 = 64 * 1024;

/// A component pulled from a registry, its digests checked.
#[derive(Clone, Debug)]
pub struct Pulled {
    /// The reference pulled, as given.
    pub reference: OciRef,
    /// `sha256:<hex>` of the manifest (what a signature signs).
    pub manifest_digest: String,
    /// The component's bytes.
    pub wasm: Vec<u8>,
    /// `sha256:<hex>` of the component (its layer digest).
    pub digest: String,
    /// The image manifest's annotations (title, version, Warden's manifest, WIT docs).
    pub annotations: BTreeMap<String, String>,
}

impl Pulled {
    /// The plugin's manifest (TOML) the author published with it, if any.
    pub fn manifest(&self) -> Option<&str> {
        self.annotations
            .get(artifact::ANNOTATION_MANIFEST)
            .map(String::as_str)
    }

    /// The WIT docs (`package-docs` JSON) published with it, if any.
    pub fn wit_docs(&self) -> Option<&str> {
        self.annotations
            .get(artifact::ANNOTATION_WIT_DOCS)
            .map(String::as_str)
    }
}

/// One signature found beside an artifact.
#[derive(Clone, Debug)]
pub enum FoundSignature {
    /// A cosign key-based signature (the `.sig` tag): the payload and its base64
    /// signature.
    Cosign {
        /// The simple-signing payload.
        payload: Vec<u8>,
        /// The base64 signature of the payload.
        signature: String,
        /// cosign 2's keyless form: the Fulcio certificate (PEM) and the Rekor entry
        /// (JSON) from the layer's annotations.
        keyless: Option<(String, String)>,
    },
    /// A Sigstore bundle (an OCI referrer), its JSON as stored.
    Bundle(Vec<u8>),
}

/// A client of the registry of one reference.
pub struct Registry {
    pub(crate) client: oci_client::Client,
    pub(crate) auth: RegistryAuth,
}

pub(crate) fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

impl Registry {
    /// A client for `reference`'s registry, with its credentials.
    pub fn connect(reference: &OciRef) -> Result<Self, OciError> {
        // reqwest's rustls takes the process's provider: Warden's is ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = ClientConfig {
            protocol: if reference.is_loopback() {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            user_agent: concat!("warden/", env!("CARGO_PKG_VERSION")),
            ..ClientConfig::default()
        };
        Ok(Self {
            client: oci_client::Client::new(config),
            auth: crate::auth::credentials(reference.registry())?,
        })
    }

    pub(crate) async fn manifest_raw(
        &self,
        reference: &OciRef,
    ) -> Result<(Vec<u8>, String), OciError> {
        let (body, digest) = self
            .client
            .pull_manifest_raw(&reference.client_ref(), &self.auth, ACCEPT)
            .await
            .map_err(|e| OciError::client("pulling", reference, e))?;
        let found = sha256(&body);
        let expected = reference.digest().unwrap_or(&digest);
        if found != expected || found != digest {
            return Err(OciError::DigestMismatch {
                reference: reference.to_string(),
                what: "manifest",
                expected: expected.to_string(),
                found,
            });
        }
        Ok((body.to_vec(), digest))
    }

    /// The blob `layer` of `reference`, checked against its digest; errors name
    /// `shown` (the reference as the user gave it).
    pub(crate) async fn blob(
        &self,
        reference: &OciRef,
        shown: &OciRef,
        layer: &OciDescriptor,
        what: &'static str,
    ) -> Result<Vec<u8>, OciError> {
        let map = |e| match OciError::client("pulling", shown, e) {
            OciError::DigestMismatch {
                reference,
                expected,
                found,
                ..
            } => OciError::DigestMismatch {
                reference,
                what,
                expected,
                found,
            },
            other => other,
        };
        let mut stream = self
            .client
            .pull_blob_stream(&reference.client_ref(), layer)
            .await
            .map_err(map)?;
        // Never more than the manifest declared: a registry that sends more is cut off.
        let limit = usize::try_from(layer.size).unwrap_or(0);
        let mut out = Vec::with_capacity(limit);
        while let Some(chunk) = stream.stream.next().await {
            let chunk = chunk.map_err(|e| {
                // The client checks the digest as the stream ends, and says so in an
                // io::Error.
                let verification = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<DigestError>());
                match verification {
                    Some(DigestError::VerificationError { expected, actual }) => {
                        OciError::DigestMismatch {
                            reference: shown.to_string(),
                            what,
                            expected: expected.clone(),
                            found: actual.clone(),
                        }
                    }
                    _ => OciError::Registry {
                        registry: shown.registry().to_string(),
                        action: "pulling",
                        reference: shown.to_string(),
                        source: Box::new(e),
                    },
                }
            })?;
            if out.len() + chunk.len() > limit {
                return Err(OciError::DigestMismatch {
                    reference: shown.to_string(),
                    what,
                    expected: layer.digest.clone(),
                    found: format!("more than the {limit} bytes its manifest declares"),
                });
            }
            out.extend_from_slice(&chunk);
        }
        let found = sha256(&out);
        if found != layer.digest {
            return Err(OciError::DigestMismatch {
                reference: shown.to_string(),
                what,
                expected: layer.digest.clone(),
                found,
            });
        }
        Ok(out)
    }

    /// Pulls the component artifact at `reference`: its manifest, checked as the Wasm
    /// layout, and its component layer, checked against its digest.
    pub async fn pull(&self, reference: &OciRef) -> Result<Pulled, OciError> {
        let (body, manifest_digest) = self.manifest_raw(reference).await?;
        let shown = reference.to_string();
        let doc: Value = serde_json::from_slice(&body).map_err(|e| OciError::NotWasm {
            reference: shown.clone(),
            found: format!("its manifest is not JSON ({e})"),
        })?;
        if doc["manifests"].is_array() {
            return Err(OciError::NotWasm {
                reference: shown,
                found: "it is an image index (several platforms), not one component artifact"
                    .into(),
            });
        }
        let manifest: OciImageManifest =
            serde_json::from_value(doc).map_err(|e| OciError::NotWasm {
                reference: shown.clone(),
                found: format!("its manifest is not an OCI image manifest ({e})"),
            })?;
        let layer = artifact::component_layer(&shown, &manifest)?;
        let pinned = reference.at_digest(&manifest_digest);
        let wasm = self
            .blob(&pinned, reference, layer, "component layer")
            .await?;
        Ok(Pulled {
            reference: reference.clone(),
            manifest_digest,
            digest: layer.digest.clone(),
            wasm,
            annotations: manifest.annotations.clone().unwrap_or_default(),
        })
    }

    /// The manifest digest `reference` names now (a tag is resolved).
    pub async fn resolve(&self, reference: &OciRef) -> Result<String, OciError> {
        if let Some(digest) = reference.digest() {
            return Ok(digest.to_string());
        }
        Ok(self.manifest_raw(reference).await?.1)
    }

    async fn push_manifest(
        &self,
        reference: &OciRef,
        manifest: &OciImageManifest,
    ) -> Result<String, OciError> {
        let body = serde_json::to_vec(manifest).unwrap_or_default();
        let digest = sha256(&body);
        let content_type = http_value(OCI_IMAGE_MEDIA_TYPE);
        self.client
            .push_manifest_raw(&reference.client_ref(), body, content_type)
            .await
            .map_err(|e| OciError::client("pushing", reference, e))?;
        Ok(digest)
    }

    pub(crate) async fn push_blob(
        &self,
        reference: &OciRef,
        data: Vec<u8>,
    ) -> Result<String, OciError> {
        let digest = sha256(&data);
        let client_ref = reference.client_ref();
        let exists = self
            .client
            .blob_exists(&client_ref, &digest)
            .await
            .unwrap_or(false);
        if !exists {
            self.client
                .push_blob(&client_ref, data, &digest)
                .await
                .map_err(|e| OciError::client("pushing", reference, e))?;
        }
        Ok(digest)
    }

    /// Pushes `artifact` to `reference` (a tag); returns the manifest digest.
    pub async fn push(&self, reference: &OciRef, artifact: &Artifact) -> Result<String, OciError> {
        self.client
            .store_auth_if_needed(reference.registry(), &self.auth)
            .await;
        let (layer, config, manifest) = artifact.build();
        self.push_blob(reference, layer.data.to_vec()).await?;
        self.push_blob(reference, config.data.to_vec()).await?;
        self.push_manifest(reference, &manifest).await
    }

    /// The cosign signatures stored beside the manifest `manifest_digest` (none when
    /// there is no signature tag).
    pub async fn signatures(
        &self,
        reference: &OciRef,
        manifest_digest: &str,
    ) -> Result<Vec<FoundSignature>, OciError> {
        let Some(manifest) = self.signature_manifest(reference, manifest_digest).await? else {
            return Ok(Vec::new());
        };
        let sig_ref = reference.at_tag(&cosign::signature_tag(manifest_digest));
        let mut found = Vec::new();
        for layer in &manifest.layers {
            if layer.media_type != cosign::SIMPLE_SIGNING_MEDIA_TYPE
                || !(0..=MAX_PAYLOAD_BYTES).contains(&layer.size)
            {
                continue;
            }
            let Some(signature) = layer
                .annotations
                .as_ref()
                .and_then(|a| a.get(cosign::SIGNATURE_ANNOTATION))
            else {
                continue;
            };
            let payload = self
                .blob(&sig_ref, &sig_ref, layer, "signature payload")
                .await?;
            let annotation = |name| {
                layer
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(name))
                    .cloned()
            };
            let keyless = annotation(cosign::CERTIFICATE_ANNOTATION)
                .zip(annotation(cosign::REKOR_BUNDLE_ANNOTATION));
            found.push(FoundSignature::Cosign {
                payload,
                signature: signature.clone(),
                keyless,
            });
        }
        Ok(found)
    }

    async fn signature_manifest(
        &self,
        reference: &OciRef,
        manifest_digest: &str,
    ) -> Result<Option<OciImageManifest>, OciError> {
        let sig_ref = reference.at_tag(&cosign::signature_tag(manifest_digest));
        match self.manifest_raw(&sig_ref).await {
            Ok((body, _)) => Ok(serde_json::from_slice(&body).ok()),
            Err(OciError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Adds a signature (`payload` and its base64 `signature`, with `annotations`
    /// beside it on the layer) beside the manifest `manifest_digest`, keeping the
    /// signatures already there, as cosign does.
    pub async fn push_signature(
        &self,
        reference: &OciRef,
        manifest_digest: &str,
        payload: Vec<u8>,
        signature: String,
        annotations: BTreeMap<String, String>,
    ) -> Result<(), OciError> {
        self.client
            .store_auth_if_needed(reference.registry(), &self.auth)
            .await;
        let sig_ref = reference.at_tag(&cosign::signature_tag(manifest_digest));
        let mut layers = match self.signature_manifest(reference, manifest_digest).await? {
            Some(existing) => existing.layers,
            None => Vec::new(),
        };
        let size = payload.len() as i64;
        let digest = self.push_blob(&sig_ref, payload).await?;
        let same = |l: &OciDescriptor| {
            l.digest == digest
                && l.annotations
                    .as_ref()
                    .and_then(|a| a.get(cosign::SIGNATURE_ANNOTATION))
                    == Some(&signature)
        };
        if !layers.iter().any(same) {
            let mut annotations = annotations;
            annotations.insert(cosign::SIGNATURE_ANNOTATION.to_string(), signature);
            layers.push(OciDescriptor {
                media_type: cosign::SIMPLE_SIGNING_MEDIA_TYPE.to_string(),
                digest,
                size,
                annotations: Some(annotations),
                ..OciDescriptor::default()
            });
        }
        let config = json!({
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l.digest.clone()).collect::<Vec<_>>()},
        });
        let config = serde_json::to_vec(&config).unwrap_or_default();
        let config_size = config.len() as i64;
        let config_digest = self.push_blob(&sig_ref, config).await?;
        let manifest = OciImageManifest {
            media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
            config: OciDescriptor {
                media_type: oci_client::manifest::IMAGE_CONFIG_MEDIA_TYPE.to_string(),
                digest: config_digest,
                size: config_size,
                ..OciDescriptor::default()
            },
            layers,
            ..OciImageManifest::default()
        };
        self.push_manifest(&sig_ref, &manifest).await?;
        Ok(())
    }
}

pub(crate) fn http_value(text: &'static str) -> http::HeaderValue {
    http::HeaderValue::from_static(text)
}
