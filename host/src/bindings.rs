//! The one `bindgen!` site of the host, for every interface in `wit/`.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "warden:plugin/services",
    imports: { "warden:host/models.complete": async },
});

pub use self::warden::host::{log, memory, models};
