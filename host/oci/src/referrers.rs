//! Sigstore bundles in a registry, as cosign's bundle specification lays them out: an
//! artifact manifest (`artifactType` the bundle's media type, one layer: the bundle's
//! JSON) whose `subject` is the signed manifest, found through the registry's
//! referrers API or, where it has none, the referrers tag `sha256-<hex>` (an image
//! index kept by whoever attaches). Every blob is checked against its digest, and no
//! more than a few bundles of bounded size are read.

use oci_client::manifest::{OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciImageManifest};
use serde_json::{Value, json};

use crate::error::OciError;
use crate::reference::OciRef;
use crate::registry::{FoundSignature, Registry, http_value, sha256};

/// The largest Sigstore bundle Warden reads.
const MAX_BUNDLE_BYTES: i64 = 256 * 1024;
/// The most referrers of one artifact Warden looks at.
const MAX_REFERRERS: usize = 32;
/// The empty JSON object's descriptor (an artifact manifest's config).
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

impl Registry {
    /// The Sigstore bundles attached to the manifest `manifest_digest` as OCI
    /// referrers: from the registry's referrers API, or the referrers tag
    /// (`sha256-<hex>`) where it has none (as `oci-client` falls back).
    pub async fn bundles(
        &self,
        reference: &OciRef,
        manifest_digest: &str,
    ) -> Result<Vec<FoundSignature>, OciError> {
        self.client
            .store_auth_if_needed(reference.registry(), &self.auth)
            .await;
        let subject = reference.at_digest(manifest_digest);
        let index = match self
            .client
            .pull_referrers(&subject.client_ref(), None)
            .await
        {
            Ok(index) => index,
            Err(e) => match OciError::client("reading the referrers of", &subject, e) {
                OciError::NotFound { .. } => return Ok(Vec::new()),
                err => return Err(err),
            },
        };
        let mut found = Vec::new();
        for entry in index.manifests.iter().take(MAX_REFERRERS) {
            let is_bundle = entry
                .artifact_type
                .as_deref()
                .is_some_and(crate::sigstore::is_bundle_media_type);
            if !is_bundle {
                continue;
            }
            let referrer = reference.at_digest(&entry.digest);
            let (body, _) = self.manifest_raw(&referrer).await?;
            let Ok(manifest) = serde_json::from_slice::<OciImageManifest>(&body) else {
                continue;
            };
            if manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(manifest_digest) {
                continue;
            }
            for layer in &manifest.layers {
                if !crate::sigstore::is_bundle_media_type(&layer.media_type)
                    || !(0..=MAX_BUNDLE_BYTES).contains(&layer.size)
                {
                    continue;
                }
                let bundle = self
                    .blob(&referrer, &referrer, layer, "Sigstore bundle")
                    .await?;
                found.push(FoundSignature::Bundle(bundle));
            }
        }
        Ok(found)
    }

    /// Attaches `bundle` (a Sigstore bundle's JSON) to the manifest `manifest_digest`
    /// as cosign does: an artifact manifest whose subject is the signed manifest, and
    /// an entry in the referrers tag (`sha256-<hex>`) for registries without the
    /// referrers API.
    pub async fn push_bundle(
        &self,
        reference: &OciRef,
        manifest_digest: &str,
        bundle: Vec<u8>,
    ) -> Result<String, OciError> {
        self.client
            .store_auth_if_needed(reference.registry(), &self.auth)
            .await;
        let subject = reference.at_digest(manifest_digest);
        let (subject_body, _) = self.manifest_raw(&subject).await?;
        let subject_type = serde_json::from_slice::<Value>(&subject_body)
            .ok()
            .and_then(|d| d["mediaType"].as_str().map(str::to_string))
            .unwrap_or_else(|| OCI_IMAGE_MEDIA_TYPE.to_string());
        let size = bundle.len() as i64;
        let bundle_digest = self.push_blob(reference, bundle).await?;
        let config_digest = self.push_blob(reference, b"{}".to_vec()).await?;
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_MEDIA_TYPE,
            "artifactType": crate::sigstore::BUNDLE_MEDIA_TYPE,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": config_digest, "size": 2},
            "layers": [{
                "mediaType": crate::sigstore::BUNDLE_MEDIA_TYPE,
                "digest": bundle_digest,
                "size": size,
                "annotations": {"org.opencontainers.image.title": format!("{}.sigstore.json", bundle_digest.replacen(':', "-", 1))},
            }],
            "subject": {"mediaType": subject_type, "digest": manifest_digest, "size": subject_body.len()},
            "annotations": {"dev.sigstore.bundle.content": "message-signature"},
        });
        let body = serde_json::to_vec(&manifest).unwrap_or_default();
        let digest = sha256(&body);
        let referrer = reference.at_digest(&digest);
        self.client
            .push_manifest_raw(
                &referrer.client_ref(),
                body.clone(),
                http_value(OCI_IMAGE_MEDIA_TYPE),
            )
            .await
            .map_err(|e| OciError::client("pushing", &referrer, e))?;
        // The referrers tag: the index of what refers to the manifest, kept by hand.
        let tag = reference.at_tag(&manifest_digest.replacen(':', "-", 1));
        let mut entries = match self.manifest_raw(&tag).await {
            Ok((body, _)) => serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|d| d["manifests"].as_array().cloned())
                .unwrap_or_default(),
            Err(OciError::NotFound { .. }) => Vec::new(),
            Err(err) => return Err(err),
        };
        if !entries.iter().any(|e| e["digest"] == digest.as_str()) {
            entries.push(json!({
                "mediaType": OCI_IMAGE_MEDIA_TYPE,
                "digest": digest,
                "size": body.len(),
                "artifactType": crate::sigstore::BUNDLE_MEDIA_TYPE,
                "annotations": {"dev.sigstore.bundle.content": "message-signature"},
            }));
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_INDEX_MEDIA_TYPE,
            "manifests": entries,
        });
        self.client
            .push_manifest_raw(
                &tag.client_ref(),
                serde_json::to_vec(&index).unwrap_or_default(),
                http_value(OCI_IMAGE_INDEX_MEDIA_TYPE),
            )
            .await
            .map_err(|e| OciError::client("pushing", &tag, e))?;
        Ok(digest)
    }
}
