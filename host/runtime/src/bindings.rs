//! The one `bindgen!` site of the host, for every interface in `wit/`: the host
//! services (world `services`) and, reusing their types, the agent policy's export
//! (world `agent`, in [`agent`]).

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "warden:plugin/services",
    imports: {
        "warden:host/models.complete": async,
        // These two may call the embedding route (hybrid search).
        "warden:host/memory.put-document": async,
        "warden:host/memory.search": async,
    },
});

pub use self::warden::host::{log, memory, models};

/// The world `warden:plugin/agent`: an agent policy's `step` export, called by the
/// runner of agent runs ([`warden_runs`]). Its imports are the host services above.
pub mod agent {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "warden:plugin/agent",
        exports: { default: async },
        with: {
            "warden:host/log": super::warden::host::log,
            "warden:host/memory": super::warden::host::memory,
            "warden:host/models": super::warden::host::models,
        },
    });

    pub use self::exports::warden::plugin::agent_policy as policy;
}
