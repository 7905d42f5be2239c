//! `hookhost plugins`: list a running host's plugins (route, mode, scheme,
//! deliveries by outcome, load errors) from the admin API's `GET /plugins`.
//!
//! Its flags are the shared [`AdminArgs`]; the table is
//! [`hookhost::console`]'s.

use super::{AdminArgs, console};

pub fn run(args: AdminArgs) -> anyhow::Result<()> {
    console(
        &args,
        |target, json| async move { target.plugins(json).await },
    )
}
