//! A Sigstore of a test's own, for the keyless tests ([`super::sigstore`]): a Fulcio
//! CA (a self-signed ECDSA P-256 certificate) issuing short-lived leaf certificates
//! with an email SAN and the OIDC issuer extensions (1.3.6.1.4.1.57264.1.1 and .1.8),
//! and a Rekor log key signing entries (the signed entry timestamp, and a checkpoint
//! over a one-leaf tree for the inclusion proof); optionally a CT log whose SCT the
//! leaves embed, as Fulcio's do. `trusted_root.json` names them all.

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PublicKeyData as _, SanType, SigningKey as _,
};
use sha2::{Digest as _, Sha256};

pub(crate) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn at(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

/// A test's own Sigstore: a Fulcio CA and a Rekor log key.
pub(crate) struct FakeSigstore {
    ca: CertifiedIssuer<'static, KeyPair>,
    /// The CA's public key (SPKI DER): what an SCT's issuer key hash hashes.
    ca_spki: Vec<u8>,
    rekor: std::rc::Rc<KeyPair>,
    /// A certificate transparency log, when this Sigstore has one: its leaves then
    /// carry an embedded SCT, and the trusted root lists it.
    ct: Option<KeyPair>,
}

/// A Fulcio leaf certificate and its key.
pub(crate) struct Leaf {
    der: Vec<u8>,
    key: KeyPair,
}

impl FakeSigstore {
    pub(crate) fn new(name: &str) -> Self {
        let rekor = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        Self::with_log(name, std::rc::Rc::new(rekor))
    }

    /// A Sigstore with a certificate transparency log too.
    pub(crate) fn with_ct(name: &str) -> Self {
        Self {
            ct: Some(KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap()),
            ..Self::new(name)
        }
    }

    /// Another Fulcio CA whose certificates this root's Rekor logs.
    pub(crate) fn rogue_fulcio(&self, name: &str) -> Self {
        Self::with_log(name, self.rekor.clone())
    }

    fn with_log(name: &str, rekor: std::rc::Rc<KeyPair>) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "warden-test");
        dn.push(DnType::CommonName, format!("{name} fulcio"));
        params.distinguished_name = dn;
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let ca_spki = key.subject_public_key_info();
        Self {
            ca: CertifiedIssuer::self_signed(params, key).unwrap(),
            ca_spki,
            rekor,
            ct: None,
        }
    }

    pub(crate) fn log_id(&self) -> Vec<u8> {
        Sha256::digest(self.rekor.subject_public_key_info()).to_vec()
    }

    /// This root as a Sigstore `trusted_root.json`.
    pub(crate) fn trusted_root(&self) -> String {
        let valid = serde_json::json!({"start": "2020-01-01T00:00:00Z"});
        serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [{
                "baseUrl": "https://rekor.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(&self.rekor.subject_public_key_info()),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": valid,
                },
                "logId": {"keyId": b64(&self.log_id())},
            }],
            "certificateAuthorities": [{
                "subject": {"organization": "warden-test", "commonName": "fulcio"},
                "uri": "https://fulcio.test",
                "certChain": {"certificates": [{"rawBytes": b64(self.ca.der())}]},
                "validFor": valid,
            }],
            "ctlogs": self.ct.iter().map(|ct| serde_json::json!({
                "baseUrl": "https://ctfe.test",
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(&ct.subject_public_key_info()),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": valid,
                },
                "logId": {"keyId": b64(&Sha256::digest(ct.subject_public_key_info()))},
            })).collect::<Vec<_>>(),
            "timestampAuthorities": [],
        })
        .to_string()
    }

    /// A leaf certificate for `email`, vouched for by OIDC `issuer`, valid from
    /// `not_before` to `not_after` (Unix seconds).
    pub(crate) fn leaf(&self, email: &str, issuer: &str, not_before: i64, not_after: i64) -> Leaf {
        self.issue(email, issuer, not_before, not_after, true)
    }

    fn issue(&self, email: &str, issuer: &str, not_before: i64, not_after: i64, sct: bool) -> Leaf {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::Rfc822Name(email.try_into().unwrap())];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::CodeSigning];
        params.not_before = at(not_before);
        params.not_after = at(not_after);
        // Fulcio's OIDC issuer: .1.1 as raw bytes (v1), .1.8 as a DER UTF8String (v2).
        let mut utf8 = vec![0x0c, issuer.len() as u8];
        utf8.extend_from_slice(issuer.as_bytes());
        params.custom_extensions = vec![
            CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 57264, 1, 1],
                issuer.as_bytes().to_vec(),
            ),
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 57264, 1, 8], utf8),
        ];
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.signed_by(&key, &*self.ca).unwrap();
        let Some(ct) = self.ct.as_ref().filter(|_| sct) else {
            return Leaf {
                der: cert.der().to_vec(),
                key,
            };
        };
        // Fulcio's way: the log signs the precertificate (this certificate without
        // the SCT extension), and the SCT goes into the certificate issued.
        let sct = self.sct(ct, &tbs(cert.der()), not_before);
        let mut list = (sct.len() as u16).to_be_bytes().to_vec();
        list.extend(&sct);
        let mut tls = ((list.len()) as u16).to_be_bytes().to_vec();
        tls.extend(list);
        params
            .custom_extensions
            .push(CustomExtension::from_oid_content(
                &[1, 3, 6, 1, 4, 1, 11129, 2, 4, 2],
                der_octet_string(&tls),
            ));
        let cert = params.signed_by(&key, &*self.ca).unwrap();
        Leaf {
            der: cert.der().to_vec(),
            key,
        }
    }

    /// A leaf without an SCT, from this Sigstore's CA even when it has a CT log.
    pub(crate) fn leaf_without_sct(
        &self,
        email: &str,
        issuer: &str,
        not_before: i64,
        not_after: i64,
    ) -> Leaf {
        self.issue(email, issuer, not_before, not_after, false)
    }

    /// An RFC 6962 SCT (v1) by log `ct` over the precertificate `tbs`, at `time`.
    fn sct(&self, ct: &KeyPair, tbs: &[u8], time: i64) -> Vec<u8> {
        let timestamp = (time as u64) * 1000;
        let mut signed = vec![0u8, 0u8]; // v1, certificate_timestamp
        signed.extend(timestamp.to_be_bytes());
        signed.extend(1u16.to_be_bytes()); // precert_entry
        signed.extend(Sha256::digest(&self.ca_spki));
        signed.extend(&(tbs.len() as u32).to_be_bytes()[1..]);
        signed.extend(tbs);
        signed.extend(0u16.to_be_bytes()); // no extensions
        let signature = ct.sign(&signed).unwrap();
        let mut sct = vec![0u8]; // v1
        sct.extend(Sha256::digest(ct.subject_public_key_info()));
        sct.extend(timestamp.to_be_bytes());
        sct.extend(0u16.to_be_bytes());
        sct.extend([4u8, 3u8]); // sha256, ecdsa
        sct.extend((signature.len() as u16).to_be_bytes());
        sct.extend(signature);
        sct
    }

    /// The hashedrekord entry of `signature` by `leaf` over `artifact`, as Rekor
    /// canonicalizes it.
    fn hashedrekord(leaf: &Leaf, artifact: &[u8], signature: &[u8]) -> String {
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            b64(&leaf.der)
        );
        format!(
            r#"{{"apiVersion":"0.0.1","kind":"hashedrekord","spec":{{"data":{{"hash":{{"algorithm":"sha256","value":"{}"}}}},"signature":{{"content":"{}","publicKey":{{"content":"{}"}}}}}}}}"#,
            hex::encode(Sha256::digest(artifact)),
            b64(signature),
            b64(pem.as_bytes())
        )
    }

    /// The signed entry timestamp: Rekor's key over the entry, as canonical JSON.
    fn signed_entry_timestamp(&self, body: &str, integrated_time: i64) -> Vec<u8> {
        let payload = format!(
            r#"{{"body":"{}","integratedTime":{integrated_time},"logID":"{}","logIndex":0}}"#,
            b64(body.as_bytes()),
            hex::encode(self.log_id())
        );
        self.rekor.sign(payload.as_bytes()).unwrap()
    }

    /// cosign 2's keyless signature of `payload` by `leaf`, logged at
    /// `integrated_time`: the base64 signature and the layer's annotations (the
    /// certificate, and the Rekor entry with its signed entry timestamp).
    pub(crate) fn legacy(
        &self,
        leaf: &Leaf,
        payload: &[u8],
        integrated_time: i64,
    ) -> (String, std::collections::BTreeMap<String, String>) {
        let signature = leaf.key.sign(payload).unwrap();
        let body = Self::hashedrekord(leaf, payload, &signature);
        let set = self.signed_entry_timestamp(&body, integrated_time);
        let rekor = serde_json::json!({
            "SignedEntryTimestamp": b64(&set),
            "Payload": {
                "body": b64(body.as_bytes()),
                "integratedTime": integrated_time,
                "logIndex": 0,
                "logID": hex::encode(self.log_id()),
            },
        });
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            b64(&leaf.der)
        );
        let annotations = [
            (warden_oci::cosign::CERTIFICATE_ANNOTATION, pem),
            (
                warden_oci::cosign::REKOR_BUNDLE_ANNOTATION,
                rekor.to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        (b64(&signature), annotations)
    }

    /// A v0.3 bundle: `leaf` signs `artifact` (the manifest's bytes), and this root's
    /// Rekor logs it at `integrated_time`.
    pub(crate) fn bundle(&self, leaf: &Leaf, artifact: &[u8], integrated_time: i64) -> String {
        let digest = Sha256::digest(artifact);
        let signature = leaf.key.sign(artifact).unwrap();
        let body = Self::hashedrekord(leaf, artifact, &signature);
        let content = serde_json::json!({
            "messageDigest": {"algorithm": "SHA2_256", "digest": b64(&digest)},
            "signature": b64(&signature),
        });
        self.logged(
            leaf,
            "hashedrekord",
            &body,
            integrated_time,
            "messageSignature",
            content,
        )
    }

    /// A v0.3 bundle as `cosign sign` (cosign 3) makes for an image: a DSSE envelope
    /// whose in-toto statement's subject is the manifest `manifest_digest`, signed by
    /// `leaf`, logged (a `dsse` entry) at `integrated_time`.
    pub(crate) fn dsse_bundle(
        &self,
        leaf: &Leaf,
        repository: &str,
        manifest_digest: &str,
        integrated_time: i64,
    ) -> String {
        let statement = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{
                "name": repository,
                "digest": {"sha256": manifest_digest.strip_prefix("sha256:").unwrap()},
            }],
            "predicateType": "https://sigstore.dev/cosign/sign/v1",
            "predicate": {},
        })
        .to_string();
        let payload_type = "application/vnd.in-toto+json";
        let pae = format!(
            "DSSEv1 {} {payload_type} {} {statement}",
            payload_type.len(),
            statement.len()
        );
        let signature = leaf.key.sign(pae.as_bytes()).unwrap();
        let envelope = serde_json::json!({
            "payload": b64(statement.as_bytes()),
            "payloadType": payload_type,
            "signatures": [{"sig": b64(&signature), "keyid": ""}],
        });
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            b64(&leaf.der)
        );
        let body = format!(
            r#"{{"apiVersion":"0.0.1","kind":"dsse","spec":{{"envelopeHash":{{"algorithm":"sha256","value":"{}"}},"payloadHash":{{"algorithm":"sha256","value":"{}"}},"signatures":[{{"signature":"{}","verifier":"{}"}}]}}}}"#,
            hex::encode(Sha256::digest(envelope.to_string().as_bytes())),
            hex::encode(Sha256::digest(statement.as_bytes())),
            b64(&signature),
            b64(pem.as_bytes())
        );
        self.logged(
            leaf,
            "dsse",
            &body,
            integrated_time,
            "dsseEnvelope",
            envelope,
        )
    }

    /// A v0.3 bundle of `content` (under `content_key`) by `leaf`, whose Rekor entry
    /// (`kind`, `body`) this root's log integrated at `integrated_time`: its signed
    /// entry timestamp, and its inclusion proof in a tree of one leaf under a signed
    /// checkpoint.
    fn logged(
        &self,
        leaf: &Leaf,
        kind: &str,
        body: &str,
        integrated_time: i64,
        content_key: &str,
        content: serde_json::Value,
    ) -> String {
        let log_id = self.log_id();
        let set = self.signed_entry_timestamp(body, integrated_time);
        let mut leaf_hash = Sha256::new();
        leaf_hash.update([0u8]);
        leaf_hash.update(body.as_bytes());
        let root = leaf_hash.finalize();
        let note = format!("rekor.test\n1\n{}\n", b64(&root));
        let mut signed = log_id[..4].to_vec();
        signed.extend(self.rekor.sign(note.as_bytes()).unwrap());
        let checkpoint = format!("{note}\n\u{2014} rekor.test {}\n", b64(&signed));
        let mut bundle = serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(&leaf.der)},
                "tlogEntries": [{
                    "logIndex": "0",
                    "logId": {"keyId": b64(&log_id)},
                    "kindVersion": {"kind": kind, "version": "0.0.1"},
                    "integratedTime": integrated_time.to_string(),
                    "inclusionPromise": {"signedEntryTimestamp": b64(&set)},
                    "inclusionProof": {
                        "logIndex": "0",
                        "rootHash": b64(&root),
                        "treeSize": "1",
                        "hashes": [],
                        "checkpoint": {"envelope": checkpoint},
                    },
                    "canonicalizedBody": b64(body.as_bytes()),
                }],
            },
        });
        bundle[content_key] = content;
        bundle.to_string()
    }
}

/// The TBSCertificate of a DER certificate (its first element).
fn tbs(cert: &[u8]) -> Vec<u8> {
    let (_, start) = der_header(cert, 0);
    let (len, body) = der_header(cert, start);
    cert[start..body + len].to_vec()
}

/// The content length and content offset of the DER element at `at`.
fn der_header(bytes: &[u8], at: usize) -> (usize, usize) {
    let first = bytes[at + 1] as usize;
    if first < 0x80 {
        return (first, at + 2);
    }
    let n = first & 0x7f;
    let len = bytes[at + 2..at + 2 + n]
        .iter()
        .fold(0, |len, b| len << 8 | *b as usize);
    (len, at + 2 + n)
}

/// `bytes` as a DER OCTET STRING.
fn der_octet_string(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0x04];
    match bytes.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n < 0x100 => out.extend([0x81, n as u8]),
        n => out.extend([0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend(bytes);
    out
}
