//! `hookhost events list|show|replay`: a running host's queued events,
//! through the admin API.
//!
//! Owns the three subcommands' flags; the requests and their tables are
//! [`hookhost::console`]'s.

use clap::Subcommand;

use super::{AdminArgs, console};

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Events newest first, without their requests.
    List {
        #[command(flatten)]
        admin: AdminArgs,
        /// Only events in this state: `pending`, `done` or `dead`.
        #[arg(long, value_name = "STATUS")]
        status: Option<String>,
        /// Only events of this route, e.g. `/hooks/github`.
        #[arg(long, value_name = "ROUTE")]
        route: Option<String>,
        /// Most events to show (1-1000) [default: 100].
        #[arg(long, value_name = "N")]
        limit: Option<u32>,
        /// Next page: the `--before` printed under a full page.
        #[arg(long, value_name = "SEQ")]
        before: Option<i64>,
    },
    /// One event with its request (secret-bearing headers redacted), as JSON.
    Show {
        /// The delivery id.
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
        /// The route, when the id came on more than one.
        #[arg(long, value_name = "ROUTE")]
        route: Option<String>,
    },
    /// Put a done or dead event back to pending, due now, with a fresh retry
    /// budget; or, with `--dead`, every dead event (of `--route`).
    Replay {
        /// The delivery id (not with `--dead`).
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
        /// The route: the id's, when it came on more than one; with
        /// `--dead`, replay only this route's dead events.
        #[arg(long, value_name = "ROUTE")]
        route: Option<String>,
        /// Replay every dead event (of `--route`, else of all routes) and
        /// print how many.
        #[arg(long)]
        dead: bool,
    },
}

pub fn run(command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::List {
            admin,
            status,
            route,
            limit,
            before,
        } => {
            let filter = hookhost::console::ListFilter {
                status,
                route,
                limit,
                before,
            };
            console(&admin, |target, json| async move {
                target.list(&filter, json).await
            })
        }
        EventsCommand::Show { id, admin, route } => console(&admin, |target, _| async move {
            target.show(&id, route.as_deref()).await
        }),
        EventsCommand::Replay {
            id,
            admin,
            route,
            dead,
        } => console(&admin, |target, json| async move {
            match id {
                Some(id) if !dead => target.replay(&id, route.as_deref(), json).await,
                _ => target.replay_dead(route.as_deref(), json).await,
            }
        }),
    }
}
