//! Paths to the example plugins (`plugins/*`) and test guests (`tests/guests/*`),
//! compiled to `wasm32-wasip2` components by this crate's build script, so that
//! `cargo test` needs no manual build step.
//!
//! Each component has a constant named after its package in SCREAMING_SNAKE
//! case (`ECHO`, `GITHUB`, `GUEST_LOOPER`, `GUEST_MEMORY_HOG`, …) holding its
//! absolute path. [`PLUGINS`] and [`GUESTS`] list them all as
//! `(folder name, path)`, e.g. `("memory-hog", GUEST_MEMORY_HOG)`, so a test can
//! check that every guest is exercised. A new folder under `tests/guests/`
//! (package `guest-<folder>`, a `cdylib`) is picked up automatically.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
