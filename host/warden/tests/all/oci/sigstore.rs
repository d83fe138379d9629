//! Keyless signatures: Sigstore bundles verified offline against a trusted root.
//!
//! Each test makes its own Sigstore-like root of trust: a Fulcio CA (a self-signed
//! ECDSA P-256 certificate) and a Rekor log key, written as a `trusted_root.json`. A
//! "Fulcio" leaf certificate is issued for an identity (an email SAN) with the OIDC
//! issuer extensions (1.3.6.1.4.1.57264.1.1 and .1.8), signs the pushed component's
//! manifest, and "Rekor" logs it: a hashedrekord entry with its signed entry timestamp
//! and an inclusion proof under a signed checkpoint. The bundle is attached to the
//! artifact as an OCI referrer, as cosign does. Nothing leaves the machine.

use warden_tests::guests;

use super::fake_sigstore::{FakeSigstore, b64, now};
use super::{Env, TestRegistry, digest_after, variant};

const IDENTITY: &str = "release@acme.example";
const ISSUER: &str = "https://issuer.acme.example";

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

#[test]
fn a_cosign_3_dsse_bundle_whose_statement_names_the_manifest_verifies_and_one_naming_another_does_not()
 {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let sigstore = FakeSigstore::new("trusted");
    let root = env.file("trusted_root.json");
    std::fs::write(&root, sigstore.trusted_root()).unwrap();
    env.config(&format!(
        "[trust]\nrequire_signatures = true\n\n[trust.identities.acme-ci]\nidentity = \"{IDENTITY}\"\nissuer = \"{ISSUER}\"\ntrusted_root = \"{}\"\nrepositories = [\"{}/dsse/*\"]\n",
        root.display(),
        registry.addr
    ));
    let t = now();
    let leaf = sigstore.leaf(IDENTITY, ISSUER, t - 300, t + 300);
    let repository = format!("{}/dsse/text", registry.addr);

    let good = registry.reference("dsse/text:1");
    let (digest, _) = push(&env, &registry, guests::TEXT, &good);
    attach(
        &good,
        sigstore.dsse_bundle(&leaf, &repository, &digest, t - 60),
    );
    let (out, _) = env.run(&["plugin", "add", &good, "--name", "text"], 0);
    assert!(
        out.contains(&format!(
            "signed by \"acme-ci\" (keyless: identity {IDENTITY}, issuer {ISSUER}"
        )),
        "{out}"
    );

    // The statement names the first manifest; beside the second it says nothing.
    let other = registry.reference("dsse/text:2");
    let v2 = variant(guests::TEXT, "v2", env.files.path());
    let (other_digest, _) = push(&env, &registry, v2.to_str().unwrap(), &other);
    attach(
        &other,
        sigstore.dsse_bundle(&leaf, &repository, &digest, t - 60),
    );
    let (_, err) = env.run(&["plugin", "add", &other, "--name", "other"], 2);
    assert!(
        err.contains("1 Sigstore bundle beside it, none by a key or identity trusted for")
            && err.contains(&format!(
                "it signs another artifact, not manifest {other_digest} (artifact mismatch: artifact hash does not match any subject in attestation)"
            )),
        "{err}"
    );
    assert_eq!(env.names(), ["text"]);
}

#[test]
fn with_a_ct_log_in_the_trusted_root_a_certificate_needs_its_sct() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let sigstore = FakeSigstore::with_ct("trusted");
    let root = env.file("trusted_root.json");
    std::fs::write(&root, sigstore.trusted_root()).unwrap();
    env.config(&format!(
        "[trust]\nrequire_signatures = true\n\n[trust.identities.acme-ci]\nidentity = \"{IDENTITY}\"\nissuer = \"{ISSUER}\"\ntrusted_root = \"{}\"\nrepositories = [\"{}/ct/*\"]\n",
        root.display(),
        registry.addr
    ));
    let t = now();

    let good = registry.reference("ct/good:1");
    let (_, manifest) = push(&env, &registry, guests::TEXT, &good);
    let leaf = sigstore.leaf(IDENTITY, ISSUER, t - 300, t + 300);
    attach(&good, sigstore.bundle(&leaf, &manifest, t - 60));
    env.run(&["plugin", "add", &good, "--name", "text"], 0);

    let bare = registry.reference("ct/no-sct:1");
    let (_, manifest) = push(&env, &registry, guests::TEXT, &bare);
    let leaf = sigstore.leaf_without_sct(IDENTITY, ISSUER, t - 300, t + 300);
    attach(&bare, sigstore.bundle(&leaf, &manifest, t - 60));
    let (_, err) = env.run(&["plugin", "add", &bare, "--name", "bare"], 2);
    assert!(
        err.contains("invalid signed certificate timestamp: certificate is missing SCT extension"),
        "{err}"
    );
    assert_eq!(env.names(), ["text"]);
}
