//! Host-side bindings for the `hookhost:plugin/handler` world in `wit/`.
//!
//! The one `bindgen!` call of the host: every Rust name for a WIT item comes
//! from here, so the host can never drift from the contract.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "handler",
    imports: { default: async },
    exports: { default: async },
});

pub use self::hookhost::plugin::log::Level;
