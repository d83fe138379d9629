//! Signatures: the trust policy refuses what no trusted key signed, a grant pinned to
//! a signer keeps its capabilities across signed updates only.

use warden_tests::guests;

use super::{Env, TestRegistry, variant};

/// Makes a key pair `NAME.key` / `NAME.pub` in the test's files; returns the prefix
/// and the fingerprint.
fn keygen(env: &Env, name: &str) -> (String, String) {
    let prefix = env.file(name).display().to_string();
    let (out, _) = env.run(&["plugin", "keygen", "--out", &prefix], 0);
    let fingerprint = out
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint "))
        .unwrap()
        .to_string();
    (prefix, fingerprint)
}

#[test]
fn under_require_signatures_a_signed_plugin_installs_and_an_unsigned_or_foreign_one_is_refused() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let (acme, acme_key) = keygen(&env, "acme");
    let (mallory, _) = keygen(&env, "mallory");
    env.config(&format!(
        "[trust]\nrequire_signatures = true\n\n[trust.keys.acme]\npublic_key = \"{acme}.pub\"\nrepositories = [\"{}/signed/*\"]\n",
        registry.addr
    ));
    let signed = registry.reference("signed/text:1");
    let unsigned = registry.reference("signed/unsigned:1");
    let foreign = registry.reference("signed/foreign:1");
    let elsewhere = registry.reference("elsewhere/text:1");
    let (out, _) = env.run(
        &[
            "plugin",
            "push",
            guests::TEXT,
            &signed,
            "--key",
            &format!("{acme}.key"),
        ],
        0,
    );
    assert!(
        out.contains(&format!("signed    with key {acme_key}")),
        "{out}"
    );
    env.run(&["plugin", "push", guests::TEXT, &unsigned], 0);
    env.run(
        &[
            "plugin",
            "push",
            guests::TEXT,
            &foreign,
            "--key",
            &format!("{mallory}.key"),
        ],
        0,
    );
    env.run(
        &[
            "plugin",
            "push",
            guests::TEXT,
            &elsewhere,
            "--key",
            &format!("{acme}.key"),
        ],
        0,
    );

    let (out, _) = env.run(&["plugin", "add", &signed, "--name", "text"], 0);
    assert!(
        out.contains(&format!("signed by \"acme\" (key {acme_key})")),
        "{out}"
    );
    let doc = env.inspect("text");
    assert_eq!(doc["provenance"]["signature"]["signer"], "acme");
    assert_eq!(doc["provenance"]["signature"]["key"], acme_key.as_str());
    let (out, _) = env.run(&["plugin", "inspect", "text"], 0);
    assert!(
        out.contains(&format!("from     {signed} (manifest sha256:")),
        "{out}"
    );
    assert!(
        out.contains(&format!("signed by \"acme\" (key {acme_key})")),
        "{out}"
    );

    let expected = format!(
        "expected a signature by \"acme\" ({acme_key}) ([trust] require_signatures = true)"
    );
    let (_, err) = env.run(&["plugin", "add", &unsigned], 2);
    assert!(
        err.contains(&format!("{unsigned} is refused: it is not signed")),
        "{err}"
    );
    assert!(err.contains(&expected), "{err}");
    let (_, err) = env.run(&["plugin", "add", &foreign], 2);
    assert!(
        err.contains(&format!(
            "{foreign} is refused: 1 signature beside it, none by a key or identity trusted for {}/signed/foreign",
            registry.addr
        )),
        "{err}"
    );
    assert!(err.contains(&expected), "{err}");
    // Acme's key counts only where the policy says it may sign.
    let (_, err) = env.run(&["plugin", "add", &elsewhere, "--name", "elsewhere"], 2);
    assert!(
        err.contains("no [trust.keys] or [trust.identities] entry of warden.toml lists it in its repositories"),
        "{err}"
    );
    // A file has no signature at all.
    let (_, err) = env.run(&["plugin", "add", guests::TEXT, "--name", "local"], 2);
    assert!(
        err.contains("a plugin from a file has no signature"),
        "{err}"
    );
    assert_eq!(env.names(), ["text"]);

    // Both the add and the refusals are on the record.
    let (out, _) = env.run(&["audit", "query", "--kind", "plugin.add", "--json"], 0);
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let text = serde_json::to_string(&records).unwrap();
    assert!(text.contains("\"signer\":\"acme\""), "{text}");
    assert!(
        text.contains(&format!("\"signing_key\":\"{acme_key}\"")),
        "{text}"
    );
    assert!(text.contains("is refused: it is not signed"), "{text}");
}

#[test]
fn a_grant_pinned_to_a_signer_survives_a_signed_update_and_gives_nothing_to_an_unsigned_one() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let (acme, _) = keygen(&env, "acme");
    let key = format!("{acme}.key");
    env.config(&format!(
        "[trust.keys.acme]\npublic_key = \"{acme}.pub\"\nrepositories = [\"{}/tools/*\"]\n",
        registry.addr
    ));
    let data = env.file("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("hello.txt"), "hi").unwrap();
    let grant = env.file("files.toml");
    std::fs::write(
        &grant,
        format!(
            "signer = \"acme\"\n\n[[fs]]\nhost = \"{}\"\nguest = \"/data\"\naccess = \"read\"\n",
            data.display()
        ),
    )
    .unwrap();
    let manifest = format!(
        "{}/../../plugins/files/warden.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let reference = registry.reference("tools/files:stable");
    let push = |wasm: &str, sign: bool| {
        let mut args = vec!["plugin", "push", wasm, &reference, "--manifest", &manifest];
        if sign {
            args.extend(["--key", &key]);
        }
        env.run(&args, 0);
    };
    let list = || env.warden(&["call", "files/list", "--input", r#"{"path": "/data"}"#]);

    push(guests::FILES, true);
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
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello.txt"));

    // Another component, signed by the same key: the grant holds.
    let v2 = variant(guests::FILES, "v2", env.files.path());
    push(v2.to_str().unwrap(), true);
    let (out, _) = env.run(&["plugin", "update", "files", "--yes"], 0);
    assert!(
        out.contains("  signature signed by \"acme\" -> signed by \"acme\""),
        "{out}"
    );
    assert!(
        out.contains("  grant     kept: the new version runs with it"),
        "{out}"
    );
    let doc = env.inspect("files");
    assert_eq!(doc["notice"], serde_json::Value::Null);
    assert_eq!(doc["provenance"]["signature"]["signer"], "acme");
    let out = list();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello.txt"));

    // An unsigned one installs (signatures are not required) but gets nothing.
    let v3 = variant(guests::FILES, "v3", env.files.path());
    push(v3.to_str().unwrap(), false);
    let (out, _) = env.run(&["plugin", "update", "files", "--yes"], 0);
    assert!(
        out.contains("  signature signed by \"acme\" -> unsigned"),
        "{out}"
    );
    assert!(
        out.contains("its grant is pinned to signer \"acme\", but the installed component"),
        "{out}"
    );
    let notice = env.inspect("files")["notice"].as_str().unwrap().to_string();
    assert!(notice.contains("has no trusted signature"), "{notice}");
    let out = list();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("hello.txt"),
        "{out:?}"
    );
    assert!(!out.status.success(), "{out:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn put_by_reference_installs_a_signed_plugin_and_refuses_unsigned_ones() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let (acme, acme_key) = keygen(&env, "acme");
    let signed = registry.reference("signed/text:1");
    let unsigned = registry.reference("signed/unsigned:1");
    env.run(
        &[
            "plugin",
            "push",
            guests::TEXT,
            &signed,
            "--key",
            &format!("{acme}.key"),
        ],
        0,
    );
    env.run(&["plugin", "push", guests::TEXT, &unsigned], 0);
    let test = crate::serve::Test::start(
        &[],
        &format!(
            "[trust]\nrequire_signatures = true\n[trust.keys.acme]\npublic_key = \"{acme}.pub\"\nrepositories = [\"{}/signed/*\"]\n",
            registry.addr
        ),
    )
    .await;
    let put = |name: &str| {
        test.req(
            reqwest::Method::PUT,
            &format!("/v1/plugins/{name}"),
            Some(crate::serve::ADMIN),
        )
    };

    let resp = put("text")
        .json(&serde_json::json!({ "reference": signed }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::CREATED);
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(doc["provenance"]["signature"]["signer"], "acme");
    assert_eq!(doc["provenance"]["signature"]["key"], acme_key.as_str());
    assert_eq!(doc["source"], signed.as_str());

    let resp = put("other")
        .json(&serde_json::json!({ "reference": unsigned }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "untrusted-plugin");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("it is not signed"), "{message}");
    assert!(
        message.contains(&format!("expected a signature by \"acme\" ({acme_key})")),
        "{message}"
    );

    let resp = put("raw")
        .header("content-type", "application/wasm")
        .body(std::fs::read(guests::TEXT).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "untrusted-plugin");

    let resp = put("gone")
        .json(&serde_json::json!({ "reference": registry.reference("signed/gone:1") }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), reqwest::StatusCode::UNPROCESSABLE_ENTITY);

    let resp = test
        .req(
            reqwest::Method::GET,
            "/v1/plugins",
            Some(crate::serve::ADMIN),
        )
        .send()
        .await
        .unwrap();
    let list: serde_json::Value = resp.json().await.unwrap();
    let names: Vec<&str> = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["text"]);
}

#[test]
fn an_access_policy_may_require_a_signer() {
    let Some(registry) = TestRegistry::start() else {
        return;
    };
    let env = Env::new();
    let (acme, _) = keygen(&env, "acme");
    env.config(&format!(
        "[trust.keys.acme]\npublic_key = \"{acme}.pub\"\nrepositories = [\"{}/tools/*\"]\n",
        registry.addr
    ));
    std::fs::write(
        env.home.path().join("policy.cedar"),
        "@id(\"signed-by-acme\")\nforbid(principal, action == Warden::Action::\"call-tool\", resource is Warden::Tool)\nunless { resource has signer && resource.signer == \"acme\" };\n",
    )
    .unwrap();
    let signed = registry.reference("tools/text:1");
    let plain = registry.reference("tools/plain:1");
    env.run(
        &[
            "plugin",
            "push",
            guests::TEXT,
            &signed,
            "--key",
            &format!("{acme}.key"),
        ],
        0,
    );
    env.run(&["plugin", "push", guests::TEXT, &plain], 0);
    env.run(&["plugin", "add", &signed, "--name", "text"], 0);
    env.run(&["plugin", "add", &plain, "--name", "plain"], 0);
    let input = r#"{"text": "a b"}"#;
    env.run(&["call", "text/word-count", "--input", input], 0);
    let (_, err) = env.run(&["call", "plain/word-count", "--input", input], 3);
    assert!(err.contains("signed-by-acme"), "{err}");
}
