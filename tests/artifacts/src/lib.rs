//! Paths to the example plugins (`plugins/*`) and test guests (`tests/guests/*`),
//! compiled to `wasm32-wasip2` components by this crate's build script, so that
//! `cargo test` needs no manual build step.
//!
//! Each component has a constant named after its package in SCREAMING_SNAKE
//! case (`ECHO`, `GITHUB`, `GUEST_LOOPER`, `GUEST_MEMORY_HOG`, …) holding its
//! absolute path. [`PLUGINS`] and [`GUESTS`] list them all as
//! `(folder name, path)`, e.g. `("memory-hog", GUEST_MEMORY_HOG)`. A new folder
//! under `tests/guests/` (package `guest-<folder>`, a `cdylib`) is picked up
//! automatically.
//!
//! [`foreach_guest!`] calls a macro once per guest with its name as an
//! identifier (`memory_hog`), as wasmtime's test-programs do with
//! `foreach_preview1!`: `tests/all/guests.rs` uses it so that a guest
//! without tests is a compile error (the rule is in `tests/guests/README.md`).

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
