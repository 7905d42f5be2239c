//! Write hookhost webhook handler plugins in Rust.
//!
//! A plugin is a WebAssembly component. The host verifies each webhook, then
//! calls your handler once per delivery, each time in a fresh instance (nothing
//! kept in memory survives to the next delivery, unless the plugin's manifest
//! opts into reuse with `[instance] max_deliveries`). You implement [`Handler`]
//! and name your type in [`export!`]; this crate does the rest.
//!
//! # Example
//!
//! ```
//! use hookhost_sdk::{Delivery, Response, Result};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Order {
//!     id: u64,
//!     total_cents: u64,
//! }
//!
//! struct Shop;
//!
//! impl hookhost_sdk::Handler for Shop {
//!     fn handle(delivery: Delivery) -> Result<Response> {
//!         match delivery.header("x-shop-topic") {
//!             Some("orders/create") => {
//!                 // Bad JSON becomes a `reject`: answered 422, never retried.
//!                 let order: Order = delivery.json()?;
//!                 hookhost_sdk::info!("order {} for {} cents", order.id, order.total_cents);
//!                 if order.total_cents == 0 {
//!                     return Err(hookhost_sdk::reject("empty order"));
//!                 }
//!                 Response::json(&serde_json::json!({ "accepted": order.id }))
//!             }
//!             // Not for us: acknowledge so the sender does not retry.
//!             _ => Ok(Response::empty(204)),
//!         }
//!     }
//! }
//!
//! hookhost_sdk::export!(Shop);
//! # fn main() {
//! #     let delivery = Delivery {
//! #         id: "d1".into(), route: "/hooks/shop".into(), method: "POST".into(),
//! #         path: "/hooks/shop".into(), query: String::new(),
//! #         headers: vec![hookhost_sdk::Header::new("X-Shop-Topic", "orders/create")],
//! #         body: br#"{"id":7,"total_cents":1250}"#.to_vec(),
//! #         received_at: 0, attempt: 1, verified_by: None,
//! #     };
//! #     let response = <Shop as hookhost_sdk::Handler>::handle(delivery).unwrap();
//! #     assert_eq!(response.body, br#"{"accepted":7}"#);
//! # }
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasip2`; the output is a component the
//! host loads directly:
//!
//! ```text
//! cargo build --release --target wasm32-wasip2
//! cp target/wasm32-wasip2/release/shop.wasm /path/to/plugins/
//! ```
//!
//! # Errors
//!
//! A handler fails with an [`Error`]: [`retry`] when trying the same delivery
//! later may succeed (a downstream is down; [`retry_after`] when it said when
//! it is back), [`reject`] when it never will
//! (malformed payload, unsupported event). A panic is not an error but a bug:
//! the host sees a trap and logs it.
//!
//! # Logging
//!
//! [`trace!`], [`debug!`], [`info!`], [`warn!`] and [`error!`] write to the
//! host's log, tagged with the plugin and the delivery id. Lines printed to
//! stdout or stderr reach the host's log too, marked with their stream.
//!
//! # Testing
//!
//! The crate also compiles natively, so a handler can be unit-tested with a
//! plain `cargo test`: build a [`Delivery`] literal and call
//! `<MyHandler as Handler>::handle(delivery)`. Off WebAssembly the log macros
//! print to stderr.

#![deny(missing_docs)]

pub mod config;
mod delivery;
mod error;
pub mod http;
pub mod kv;
mod log;
mod response;

/// The generated bindings for `wit/world.wit`; an implementation detail of
/// [`export!`], not a stable API.
#[doc(hidden)]
#[allow(unsafe_code, reason = "generated component ABI glue")]
pub mod __bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "handler",
        // `export!` below calls the generated macro from the plugin's crate, so it
        // has to be exported; plugins never name it themselves.
        pub_export_macro: true,
        export_macro_name: "export_handler",
        // Lets tests compare deliveries, responses and errors with `assert_eq!`.
        additional_derives: [PartialEq, Eq],
    });
}

pub use __bindings::hookhost::plugin::log::Level;
pub use __bindings::hookhost::plugin::types::{Delivery, HandlerError, Header, Response};
pub use error::{reject, retry, retry_after};
pub use log::log;

/// Why a handler could not handle a delivery: [`HandlerError::Retry`] or
/// [`HandlerError::Reject`]. Make one with [`retry`] or [`reject`].
pub type Error = HandlerError;

/// The result of handling a delivery.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// A webhook handler: the one thing a plugin implements.
///
/// There is no `self`: the host makes a fresh instance for every delivery, so a
/// handler has nothing to keep between calls (keep state in [`kv`]; statics
/// last longer only under the manifest's opt-in `[instance] max_deliveries`). Register the type with [`export!`].
pub trait Handler {
    /// Handles one delivery (called again, with a higher
    /// [`attempt`](Delivery::attempt), when the host retries it).
    ///
    /// In sync mode the response goes back to the sender; an `Err` is answered
    /// 503 ([`retry`]) or 422 ([`reject`]).
    fn handle(delivery: Delivery) -> Result<Response>;
}

/// Makes a type implementing [`Handler`] the plugin's entry point.
///
/// Call it once, at the top level of the plugin crate (a `cdylib`):
///
/// ```
/// struct Echo;
/// impl hookhost_sdk::Handler for Echo {
///     fn handle(delivery: hookhost_sdk::Delivery) -> hookhost_sdk::Result<hookhost_sdk::Response> {
///         Ok(hookhost_sdk::Response::ok().with_body(delivery.body))
///     }
/// }
/// hookhost_sdk::export!(Echo);
/// ```
#[macro_export]
macro_rules! export {
    ($handler:ty) => {
        // The generated export macro wants a type implementing its own `Guest`
        // trait; a private adapter keeps that trait out of the public API and
        // lets `$handler` be any path, not just an identifier.
        const _: () = {
            struct __HookhostExport;
            impl $crate::__bindings::Guest for __HookhostExport {
                fn handle(
                    delivery: $crate::Delivery,
                ) -> ::core::result::Result<$crate::Response, $crate::HandlerError> {
                    <$handler as $crate::Handler>::handle(delivery)
                }
            }
            // `$crate` rather than a fixed `default_bindings_module` path, so
            // the macro works even if a plugin renames the dependency.
    $crate::__bindings::export_handler!(__HookhostExport with_types_in $crate::__bindings);
        };
    };
}
