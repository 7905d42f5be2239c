//! hookhost's integration suite: the real host on 127.0.0.1, real HTTP, real
//! compiled plugins (built for wasm32-wasip2 by `tests/artifacts`).
//!
//! One test binary with modules, so the shared set-up (and the compile cache)
//! is paid once. Most tests run the host in-process through `hookhost::run`;
//! `cli` spawns the real binary for what only a process shows (signals, exit
//! codes, the log).

mod admin;
mod alerts;
mod capabilities;
mod cli;
mod connections;
mod console;
mod crash_loop;
mod dashboard;
mod deploy;
mod examples;
mod folder;
mod fuzz;
mod guests;
mod handshakes;
mod health;
mod hostile_guests;
mod inbox;
mod ingress;
mod instances;
mod languages;
mod metrics;
mod plugins;
mod postgres;
mod reload;
mod sandbox;
mod scaffold;
mod secrets;
mod serve;
mod settings;
mod support;
mod tracing;
mod verify;
