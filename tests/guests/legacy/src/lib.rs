//! A plugin built against `hookhost:plugin@0.1.0` (its own copy of that
//! contract is in `wit/`, taken unchanged from before 0.1.1 added `kv` and
//! `config`), with wit-bindgen directly. Logs one line through the 0.1.0
//! `log` import and answers `200` with `legacy 0.1.0 plugin: <delivery id>`.
//! Proves that the host still links plugins built against an older 0.1.x.

#[allow(unsafe_code, reason = "generated component ABI glue")]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "handler",
    });
}

use bindings::hookhost::plugin::log::{Level, log};
use bindings::hookhost::plugin::types::{Delivery, HandlerError, Header, Response};

struct Legacy;

impl bindings::Guest for Legacy {
    fn handle(delivery: Delivery) -> Result<Response, HandlerError> {
        log(Level::Info, &format!("legacy plugin got {}", delivery.id));
        Ok(Response {
            status: 200,
            headers: vec![Header {
                name: "content-type".into(),
                value: "text/plain".into(),
            }],
            body: format!("legacy 0.1.0 plugin: {}", delivery.id).into_bytes(),
        })
    }
}

// The generated export glue is `unsafe` (the component ABI), like the
// bindings themselves.
#[allow(unsafe_code, reason = "generated component ABI glue")]
mod export {
    use super::Legacy;
    crate::bindings::export!(Legacy with_types_in crate::bindings);
}
