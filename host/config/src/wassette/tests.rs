use super::*;

fn ok(yaml: &str) -> Conversion {
    convert(yaml, None).unwrap()
}

fn skipped(c: &Conversion) -> Vec<String> {
    c.not_converted.iter().map(ToString::to_string).collect()
}

#[test]
fn storage_maps_to_preopens_with_the_same_guest_path() {
    let c = ok(r#"
version: "1.0"
permissions:
  storage:
    allow:
      - uri: "fs:///srv/reports/**"
        access: [read]
      - uri: "fs:///srv/out/"
        access: [read, write]
      - uri: "fs:///srv/reports"
        access: [write]
"#);
    let fs: Vec<_> = c
        .grant
        .fs
        .iter()
        .map(|f| (f.host.to_str().unwrap(), f.guest.as_str(), f.access))
        .collect();
    assert_eq!(
        fs,
        [
            ("/srv/reports", "/srv/reports", Access::ReadWrite),
            ("/srv/out", "/srv/out", Access::ReadWrite),
        ]
    );
    assert!(c.not_converted.is_empty(), "{:?}", c.not_converted);
    assert!(c.notes.iter().any(|n| n.text.contains("write-only")));
    assert!(c.notes.iter().any(|n| n.text.contains("`/**` dropped")));
}

#[test]
fn storage_that_warden_cannot_grant_is_named() {
    let c = ok(r#"
version: "1.0"
permissions:
  storage:
    allow:
      - uri: "fs://work/agent/**"
        access: [read]
      - uri: "fs:///srv/*/logs"
        access: [read]
      - uri: "s3://bucket"
        access: [read]
      - uri: "fs:///srv/../etc"
        access: [read]
    deny:
      - uri: "fs:///srv/secret"
        access: [read]
"#);
    assert!(c.grant.fs.is_empty());
    let s = skipped(&c);
    assert!(
        s[0].starts_with("permissions.storage.allow[0] fs://work/agent/** — relative path"),
        "{s:?}"
    );
    assert!(s[1].contains("not patterns"), "{s:?}");
    assert!(s[2].contains("only fs://"), "{s:?}");
    assert!(s[3].contains("`..`"), "{s:?}");
    assert!(
        s[4].starts_with("permissions.storage.deny[0] fs:///srv/secret — Warden has no deny lists"),
        "{s:?}"
    );
}

#[test]
fn hosts_become_https_entries_and_ranges_are_named() {
    let c = ok(r#"
version: "1.0"
permissions:
  network:
    allow:
      - host: "api.example.com"
      - host: "*.example.org"
      - cidr: "10.0.0.0/8"
      - host: "*"
      - host: "api.example.com"
      - defaults: true
      - host: "a.*.com"
    deny:
      - host: "evil.example.com"
"#);
    assert_eq!(
        c.grant.net.as_ref().unwrap().allow,
        ["https://api.example.com", "https://*.example.org"]
    );
    let s = skipped(&c);
    assert_eq!(
        s[0],
        "permissions.network.allow[2] cidr 10.0.0.0/8 — Warden allows hosts, not address ranges; list the hosts (or addresses) the plugin needs"
    );
    assert!(s[1].contains("no allow-all"), "{s:?}");
    assert!(s[2].contains("defaults"), "{s:?}");
    assert!(
        s[3].starts_with("permissions.network.allow[6] host a.*.com"),
        "{s:?}"
    );
    assert!(
        s[4].starts_with("permissions.network.deny[0] host evil.example.com"),
        "{s:?}"
    );
    assert!(c.notes.iter().any(|n| n.text.contains("https://HOST")));
    assert!(c.notes.iter().any(|n| n.text.contains("exactly one label")));
}

#[test]
fn environment_values_come_only_from_the_lookup_it_is_given() {
    let yaml = r#"
version: "1.0"
permissions:
  environment:
    allow:
      - key: LANG
      - key: API_KEY
"#;
    let c = ok(yaml);
    assert!(c.grant.env.vars.is_empty());
    assert_eq!(c.env_missing.len(), 2);
    assert!(c.env_missing[0].1.contains("--env-from-host"));

    let lookup = |key: &str| (key == "LANG").then(|| "C.UTF-8".to_string());
    let c = convert(yaml, Some(&lookup)).unwrap();
    assert_eq!(c.grant.env.vars["LANG"], "C.UTF-8");
    assert_eq!(c.env_missing.len(), 1);
    assert!(c.env_missing[0].1.contains("not set"));
}

#[test]
fn memory_in_every_form_wassette_reads() {
    let memory = |value: &str| {
        let c = ok(&format!(
            "version: \"1.0\"\npermissions:\n  resources:\n    limits:\n      memory: {value}\n"
        ));
        (c.grant.limits.memory_mb, skipped(&c), c.notes.len())
    };
    assert_eq!(memory("\"512Mi\"").0, 512);
    assert_eq!(memory("1Gi").0, 1024);
    assert_eq!(memory("64").0, 64);
    assert_eq!(memory("\"1500Ki\""), (2, vec![], 1));
    let (mb, s, _) = memory("2Gi");
    assert_eq!(mb, 128);
    assert!(s[0].contains("2048 MiB is outside"), "{s:?}");
    let (_, s, _) = memory("\"lots\"");
    assert!(s[0].contains("not a memory size"), "{s:?}");

    let c = ok(
        "version: \"1.0\"\npermissions:\n  resources:\n    memory: 256\n    cpu: 50\n    limits:\n      cpu: 500m\n",
    );
    assert_eq!(c.grant.limits.memory_mb, 256);
    let s = skipped(&c);
    assert!(
        s[0].starts_with("permissions.resources.limits.cpu 500m — Warden limits"),
        "{s:?}"
    );
    assert!(s[1].starts_with("permissions.resources.cpu 50"), "{s:?}");
}

#[test]
fn runtime_ipc_and_unknown_keys_are_named() {
    let c = ok(r#"
version: "1.0"
colour: blue
permissions:
  stroage: {}
  runtime:
    docker:
      security: { privileged: false }
    wasm:
      engine: wasmtime
      wasi:
        inherit_env: true
        args: ["--verbose"]
        preopens:
          - host_path: "/var/data"
            guest_path: "/data"
            access: [read]
  ipc:
    allow:
      - uri: "pipe://x"
"#);
    assert_eq!(c.grant.fs.len(), 1);
    assert_eq!(c.grant.fs[0].guest, "/data");
    let at: Vec<&str> = c.not_converted.iter().map(|n| n.at.as_str()).collect();
    assert_eq!(
        at,
        [
            "colour",
            "permissions.stroage",
            "permissions.runtime.docker",
            "permissions.runtime.wasm.engine",
            "permissions.runtime.wasm.wasi.inherit_env",
            "permissions.runtime.wasm.wasi.args",
            "permissions.ipc.allow",
        ]
    );
}

#[test]
fn bad_yaml_and_unknown_versions_are_errors_with_a_line() {
    let err = convert(
        "version: \"1.0\"\npermissions:\n  storage:\n    allow: [\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 5") || err.contains("line 4"), "{err}");
    let err = convert(
        "version: \"1.0\"\npermissions:\n  storage:\n    allow:\n      - uri: fs:///a\n        access: read\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("line 6"), "{err}");
    let err = convert("version: \"2.0\"\n", None).unwrap_err().to_string();
    assert!(err.contains("1.x"), "{err}");
}

#[test]
fn the_rendered_grant_parses_as_the_grant_it_shows() {
    let lookup = |_: &str| Some("va\"lue\n".to_string());
    let c = convert(
        r#"
version: "1.0"
description: "A \"quoted\" tool"
permissions:
  storage:
    allow:
      - uri: "fs:///srv/a b"
        access: [read]
  network:
    allow:
      - host: api.example.com
  environment:
    allow:
      - key: TOKEN
  resources:
    limits:
      memory: 64Mi
      fuel: 1000000
      execution_time: 30s
"#,
        Some(&lookup),
    )
    .unwrap();
    let digest = format!("sha256:{}", "ab".repeat(32));
    let text = c.to_toml("tool", Some(&digest), "policy.yaml");
    let parsed = Grant::parse(&text, "tool").unwrap();
    let expected = Grant {
        plugin: Some("tool".into()),
        digest: Some(digest),
        ..c.grant.clone()
    };
    assert_eq!(parsed, expected, "{text}");
    assert_eq!(parsed.limits.memory_mb, 64);
    assert_eq!(parsed.limits.fuel, 1_000_000);
    assert_eq!(parsed.limits.timeout_ms, 30_000);
}
