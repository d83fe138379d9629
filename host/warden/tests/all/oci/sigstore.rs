//! Keyless signatures: Sigstore bundles verified offline against a trusted root.
//!
//! Each test makes its own Sigstore-like root of trust: a Fulcio CA (a self-signed
//! ECDSA P-256 certificate) and a Rekor log key, written as a `trusted_root.json`. A
//! "Fulcio" leaf certificate is issued for an identity (an email SAN) with the OIDC
//! issuer extensions (1.3.6.1.4.1.57264.1.1 and .1.8), signs the pushed component's
//! manifest, and "Rekor" logs it: a hashedrekord entry with its signed entry timestamp
//! and an inclusion proof under a signed checkpoint. The bundle is attached to the
//! artifact as an OCI referrer, as cosign does. Nothing leaves the machine.

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
    PublicKeyData as _, SanType, SigningKey as _,
};
use sha2::{Digest as _, Sha256};
use warden_tests::guests;

use super::{Env, TestRegistry, digest_after, variant};

const IDENTITY: &str = "release@acme.example";
const ISSUER: &str = "https://issuer.acme.example";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn at(unix: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(unix).unwrap()
}

/// A test's own Sigstore: a Fulcio CA and a Rekor log key.
struct FakeSigstore {
    ca: CertifiedIssuer<'static, KeyPair>,
    rekor: std::rc::Rc<KeyPair>,
}

/// A Fulcio leaf certificate and its key.
struct Leaf {
    der: Vec<u8>,
    key: KeyPair,
}

impl FakeSigstore {
    fn new(name: &str) -> Self {
        let rekor = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        Self::with_log(name, std::rc::Rc::new(rekor))
    }

    /// Another Fulcio CA whose certificates this root's Rekor logs.
    fn rogue_fulcio(&self, name: &str) -> Self {
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
        Self {
            ca: CertifiedIssuer::self_signed(params, key).unwrap(),
            rekor,
        }
    }

    fn log_id(&self) -> Vec<u8> {
        Sha256::digest(self.rekor.subject_public_key_info()).to_vec()
    }

    /// This root as a Sigstore `trusted_root.json`.
    fn trusted_root(&self) -> String {
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
            "ctlogs": [],
            "timestampAuthorities": [],
        })
        .to_string()
    }

    /// A leaf certificate for `email`, vouched for by OIDC `issuer`, valid from
    /// `not_before` to `not_after` (Unix seconds).
    fn leaf(&self, email: &str, issuer: &str, not_before: i64, not_after: i64) -> Leaf {
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
        Leaf {
            der: cert.der().to_vec(),
            key,
        }
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
    fn legacy(
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
    fn bundle(&self, leaf: &Leaf, artifact: &[u8], integrated_time: i64) -> String {
        let digest = Sha256::digest(artifact);
        let signature = leaf.key.sign(artifact).unwrap();
        let body = Self::hashedrekord(leaf, artifact, &signature);
        let log_id = self.log_id();
        let set = self.signed_entry_timestamp(&body, integrated_time);
        // A tree of one leaf: its root is the leaf's hash; the checkpoint signs it.
        let mut leaf_hash = Sha256::new();
        leaf_hash.update([0u8]);
        leaf_hash.update(body.as_bytes());
        let root = leaf_hash.finalize();
        let note = format!("rekor.test\n1\n{}\n", b64(&root));
        let mut signed = log_id[..4].to_vec();
        signed.extend(self.rekor.sign(note.as_bytes()).unwrap());
        let checkpoint = format!("{note}\n\u{2014} rekor.test {}\n", b64(&signed));
        serde_json::json!({
            "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
            "verificationMaterial": {
                "certificate": {"rawBytes": b64(&leaf.der)},
                "tlogEntries": [{
                    "logIndex": "0",
                    "logId": {"keyId": b64(&log_id)},
                    "kindVersion": {"kind": "hashedrekord", "version": "0.0.1"},
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
            "messageSignature": {
                "messageDigest": {"algorithm": "SHA2_256", "digest": b64(&digest)},
                "signature": b64(&signature),
            },
        })
        .to_string()
    }
}

/// Pushes `wasm` to `reference`; returns the manifest digest and the manifest's bytes
/// (what a bundle signs), read from the registry's storage.
fn push(env: &Env, registry: &TestRegistry, wasm: &str, reference: &str) -> (String, Vec<u8>) {
    let (out, _) = env.run(&["plugin", "push", wasm, reference], 0);
    let digest = digest_after(&out, "manifest");
    let bytes = std::fs::read(registry.blob_file(&digest)).unwrap();
    (digest, bytes)
}

/// Attaches `bundle` to `reference` as an OCI referrer, as cosign does.
fn attach(reference: &str, bundle: String) {
    let reference: warden_oci::OciRef = reference.parse().unwrap();
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(warden_oci::attach_bundle(&reference, bundle.into_bytes()))
        .unwrap();
}

#[test]
fn a_sigstore_bundle_from_the_trusted_identity_installs_and_any_other_is_refused_saying_what_was_expected()
 {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let sigstore = FakeSigstore::new("trusted");
    let root = env.file("trusted_root.json");
    std::fs::write(&root, sigstore.trusted_root()).unwrap();
    env.config(&format!(
        "[trust]\nrequire_signatures = true\n\n[trust.identities.acme-ci]\nidentity = \"{IDENTITY}\"\nissuer = \"{ISSUER}\"\ntrusted_root = \"{}\"\nrepositories = [\"{}/keyless/*\"]\n",
        root.display(),
        registry.addr
    ));
    let t = now();

    // Signed by the trusted identity, logged while its certificate was valid.
    let good = registry.reference("keyless/good:1");
    let (_, manifest) = push(&env, &registry, guests::TEXT, &good);
    let leaf = sigstore.leaf(IDENTITY, ISSUER, t - 300, t + 300);
    let good_bundle = sigstore.bundle(&leaf, &manifest, t - 60);
    attach(&good, good_bundle.clone());
    let (out, _) = env.run(&["plugin", "add", &good, "--name", "text"], 0);
    let signed = format!("signed by \"acme-ci\" (keyless: identity {IDENTITY}, issuer {ISSUER}");
    assert!(out.contains(&signed), "{out}");
    let doc = env.inspect("text");
    let signature = &doc["provenance"]["signature"];
    assert_eq!(signature["signer"], "acme-ci");
    assert_eq!(signature["identity"], IDENTITY);
    assert_eq!(signature["issuer"], ISSUER);
    let (out, _) = env.run(&["plugin", "inspect", "text"], 0);
    assert!(out.contains(&signed), "{out}");
    let (out, _) = env.run(&["audit", "query", "--kind", "plugin.add", "--json"], 0);
    assert!(
        out.contains(&format!("\"signer_identity\":\"{IDENTITY}\""))
            && out.contains(&format!("\"signer_issuer\":\"{ISSUER}\""))
            && out.contains("\"signer\":\"acme-ci\""),
        "{out}"
    );

    let expected = format!(
        "expected a Sigstore bundle from \"acme-ci\" (identity {IDENTITY}, issuer {ISSUER}, trusted root {}) ([trust] require_signatures = true)",
        root.display()
    );
    let refused = |reference: &str, found: &str| {
        let (_, err) = env.run(&["plugin", "add", reference, "--name", "refused"], 2);
        assert!(err.contains(&format!("{reference} is refused: 1 Sigstore bundle beside it, none by a key or identity trusted for")), "{err}");
        assert!(err.contains(found), "{err}");
        assert!(err.contains(&expected), "{err}");
    };

    // Nothing beside it at all.
    let unsigned = registry.reference("keyless/unsigned:1");
    let (digest, _) = push(&env, &registry, guests::TEXT, &unsigned);
    let (_, err) = env.run(&["plugin", "add", &unsigned, "--name", "refused"], 2);
    assert!(
        err.contains(&format!(
            "{unsigned} is refused: it is not signed (no {}.sig beside it, no Sigstore bundle referring to it)",
            digest.replacen(':', "-", 1)
        )),
        "{err}"
    );
    assert!(err.contains(&expected), "{err}");

    // Another identity, from the same trusted Fulcio.
    let other = registry.reference("keyless/other-identity:1");
    let (_, manifest) = push(&env, &registry, guests::TEXT, &other);
    let mallory = sigstore.leaf("mallory@evil.example", ISSUER, t - 300, t + 300);
    attach(&other, sigstore.bundle(&mallory, &manifest, t - 60));
    refused(
        &other,
        &format!("identity mismatch: expected {IDENTITY}, got mallory@evil.example"),
    );

    // The right identity vouched for by another OIDC issuer.
    let issuer = registry.reference("keyless/other-issuer:1");
    let (_, manifest) = push(&env, &registry, guests::TEXT, &issuer);
    let elsewhere = sigstore.leaf(IDENTITY, "https://evil.example", t - 300, t + 300);
    attach(&issuer, sigstore.bundle(&elsewhere, &manifest, t - 60));
    refused(
        &issuer,
        &format!("issuer mismatch: expected {ISSUER}, got https://evil.example"),
    );

    // Logged after its certificate expired.
    let expired = registry.reference("keyless/expired:1");
    let (_, manifest) = push(&env, &registry, guests::TEXT, &expired);
    let old = sigstore.leaf(IDENTITY, ISSUER, t - 3600, t - 3000);
    attach(&expired, sigstore.bundle(&old, &manifest, t - 60));
    refused(
        &expired,
        "the certificate was not valid when the log integrated the entry (certificate chain is invalid: certificate chain validation failed: CertExpired",
    );

    // A certificate from a Fulcio CA the trusted root does not list (logged by the
    // trusted log, which logs whatever it is given).
    let foreign = registry.reference("keyless/foreign-ca:1");
    let (_, manifest) = push(&env, &registry, guests::TEXT, &foreign);
    let rogue = sigstore.rogue_fulcio("rogue");
    let leaf = rogue.leaf(IDENTITY, ISSUER, t - 300, t + 300);
    attach(&foreign, rogue.bundle(&leaf, &manifest, t - 60));
    refused(
        &foreign,
        &format!(
            "the certificate does not chain to a Fulcio CA of {} (certificate chain is invalid: certificate chain validation failed: UnknownIssuer)",
            root.display()
        ),
    );

    // The right certificate, logged by a log the trusted root does not list.
    let unlogged = registry.reference("keyless/foreign-log:1");
    let (_, manifest) = push(&env, &registry, guests::TEXT, &unlogged);
    let rogue_log = FakeSigstore::new("rogue-log");
    let leaf = sigstore.leaf(IDENTITY, ISSUER, t - 300, t + 300);
    attach(&unlogged, rogue_log.bundle(&leaf, &manifest, t - 60));
    refused(
        &unlogged,
        &format!(
            "the transparency log entry is not proven by a log key of {} (invalid inclusion promise: No log key valid at integrated time {} for log ID {}",
            root.display(),
            time::OffsetDateTime::from_unix_timestamp(t - 60)
                .unwrap()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap(),
            b64(&rogue_log.log_id())
        ),
    );

    // The trusted identity's bundle, beside another component: it signs another
    // manifest, so it says nothing about this one.
    let tampered = registry.reference("keyless/tampered:1");
    let v2 = variant(guests::TEXT, "tampered", env.files.path());
    let (digest, _) = push(&env, &registry, v2.to_str().unwrap(), &tampered);
    attach(&tampered, good_bundle);
    refused(
        &tampered,
        &format!("it signs another artifact, not manifest {digest} (artifact mismatch"),
    );

    assert_eq!(env.names(), ["text"]);
}

#[test]
fn a_grant_pinned_to_a_keyless_signer_survives_a_bundle_signed_update_and_gives_nothing_to_an_unsigned_one()
 {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let sigstore = FakeSigstore::new("trusted");
    let root = env.file("trusted_root.json");
    std::fs::write(&root, sigstore.trusted_root()).unwrap();
    env.config(&format!(
        "[trust.identities.acme-ci]\nidentity = \"{IDENTITY}\"\nissuer = \"{ISSUER}\"\ntrusted_root = \"{}\"\nrepositories = [\"{}/tools/*\"]\n",
        root.display(),
        registry.addr
    ));
    let data = env.file("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hello.txt"), "hi").unwrap();
    let grant = env.file("files.toml");
    std::fs::write(
        &grant,
        format!(
            "signer = \"acme-ci\"\n\n[[fs]]\nhost = \"{}\"\nguest = \"/data\"\naccess = \"read\"\n",
            data.display()
        ),
    )
    .unwrap();
    let manifest = format!(
        "{}/../../plugins/files/warden.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let reference = registry.reference("tools/files:stable");
    let t = now();
    let publish = |wasm: &str, sign: bool| {
        let (out, _) = env.run(
            &["plugin", "push", wasm, &reference, "--manifest", &manifest],
            0,
        );
        if sign {
            let digest = digest_after(&out, "manifest");
            let bytes = std::fs::read(registry.blob_file(&digest)).unwrap();
            let leaf = sigstore.leaf(IDENTITY, ISSUER, t - 300, t + 300);
            attach(&reference, sigstore.bundle(&leaf, &bytes, t - 60));
        }
    };
    let list = || env.warden(&["call", "files/list", "--input", r#"{"path": "/data"}"#]);

    publish(guests::FILES, true);
    env.run(
        &[
            "plugin",
            "add",
            &reference,
            "--grant",
            grant.to_str().unwrap(),
        ],
        0,
    );
    let out = list();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello.txt"),
        "{out:?}"
    );

    // Another component, signed by the same identity: the grant holds.
    let v2 = variant(guests::FILES, "v2", env.files.path());
    publish(v2.to_str().unwrap(), true);
    let (out, _) = env.run(&["plugin", "update", "files", "--yes"], 0);
    assert!(
        out.contains("  signature signed by \"acme-ci\" -> signed by \"acme-ci\""),
        "{out}"
    );
    assert!(out.contains("  grant     kept"), "{out}");
    let out = list();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello.txt"),
        "{out:?}"
    );

    // An unsigned one installs (signatures are not required) but gets nothing.
    let v3 = variant(guests::FILES, "v3", env.files.path());
    publish(v3.to_str().unwrap(), false);
    let (out, _) = env.run(&["plugin", "update", "files", "--yes"], 0);
    assert!(
        out.contains("  signature signed by \"acme-ci\" -> unsigned"),
        "{out}"
    );
    assert!(
        out.contains("its grant is pinned to signer \"acme-ci\""),
        "{out}"
    );
    let out = list();
    assert!(!out.status.success(), "{out:?}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("hello.txt"));
}

#[test]
fn a_cosign_2_keyless_signature_in_the_sig_tag_verifies_against_the_trusted_root() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let sigstore = FakeSigstore::new("trusted");
    let root = env.file("trusted_root.json");
    std::fs::write(&root, sigstore.trusted_root()).unwrap();
    env.config(&format!(
        "[trust]\nrequire_signatures = true\n\n[trust.identities.acme-ci]\nidentity = \"{IDENTITY}\"\nissuer = \"{ISSUER}\"\ntrusted_root = \"{}\"\nrepositories = [\"{}/legacy/*\"]\n",
        root.display(),
        registry.addr
    ));
    let t = now();
    let sign = |reference: &str, email: &str| {
        let (digest, _) = push(&env, &registry, guests::TEXT, reference);
        let parsed: warden_oci::OciRef = reference.parse().unwrap();
        let payload = warden_oci::cosign::payload(&parsed.name(), &digest);
        let leaf = sigstore.leaf(email, ISSUER, t - 300, t + 300);
        let (signature, annotations) = sigstore.legacy(&leaf, &payload, t - 60);
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(warden_oci::attach_signature(
                &parsed,
                payload,
                signature,
                annotations,
            ))
            .unwrap();
    };

    let good = registry.reference("legacy/good:1");
    sign(&good, IDENTITY);
    let (out, _) = env.run(&["plugin", "add", &good, "--name", "text"], 0);
    assert!(
        out.contains(&format!(
            "signed by \"acme-ci\" (keyless: identity {IDENTITY}, issuer {ISSUER}"
        )),
        "{out}"
    );

    let other = registry.reference("legacy/other:1");
    sign(&other, "mallory@evil.example");
    let (_, err) = env.run(&["plugin", "add", &other, "--name", "other"], 2);
    assert!(
        err.contains("1 signature beside it, none by a key or identity trusted for")
            && err.contains(&format!(
                "identity mismatch: expected {IDENTITY}, got mallory@evil.example"
            )),
        "{err}"
    );
    assert_eq!(env.names(), ["text"]);
}
