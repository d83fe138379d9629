//! Logs through the SDK with fields, and returns a string.

use warden_sdk::log;

warden_sdk::wit_bindgen::generate!({
    world: "warden-test:logger/logger",
    path: ["../../../wit", "wit"],
    runtime_path: "warden_sdk::wit_bindgen::rt",
    with: { "warden:host/log@0.1.0": warden_sdk::host::log },
});

struct Logger;

impl Guest for Logger {
    fn greet(name: String) -> String {
        log::trace_with("greeting", &[("name", &name), ("step", "trace")]);
        log::debug_with("greeting", &[("name", &name), ("step", "debug")]);
        log::info_with("greeting", &[("name", &name), ("step", "info")]);
        log::warn_with("greeting", &[("name", &name), ("step", "warn")]);
        warden_sdk::log!(error, "greeting {}", name; name = name, step = "error");
        format!("hello, {name}")
    }
}

export!(Logger);
