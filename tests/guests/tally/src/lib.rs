//! Counts its executions in the host's memory (namespace `tally`).

use warden_sdk::host::memory;

warden_sdk::wit_bindgen::generate!({
    world: "warden-test:tally/tally",
    path: ["../../../wit", "wit"],
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: {
        "warden:host/log@0.1.0": warden_sdk::host::log,
        "warden:host/memory@0.1.0": warden_sdk::host::memory,
    },
});

const NAMESPACE: &str = "tally";

struct Tally;

fn read(key: &str) -> Result<u64, String> {
    Ok(memory::get(NAMESPACE, key)
        .map_err(|e| format!("{e:?}"))?
        .and_then(|e| String::from_utf8(e.value).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

impl Guest for Tally {
    fn bump(key: String, sleep_ms: Option<u32>) -> Result<u64, String> {
        let next = read(&key)? + 1;
        memory::set(
            NAMESPACE,
            &key,
            next.to_string().as_bytes(),
            "text/plain",
            None,
        )
        .map_err(|e| format!("{e:?}"))?;
        if let Some(ms) = sleep_ms {
            std::thread::sleep(std::time::Duration::from_millis(u64::from(ms)));
        }
        Ok(next)
    }

    fn count(key: String) -> Result<u64, String> {
        read(&key)
    }
}

export!(Tally);
