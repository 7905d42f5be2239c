//! (c) queue mode: durable acks from a route with `mode = "queue"`, on a
//! hookhost of its own started after the other stages are done, since its
//! inbox workers keep delivering the backlog after a run and would steal the
//! servers' CPU from whatever ran next.

use std::path::Path;

use super::binaries::Binaries;
use super::folders::install;
use super::payload::Payload;
use super::server::{self, Server};
use super::wrk::{self, Target};
use super::{PATIENCE, Plan};

/// Starts the queue host, then warms up and runs (c) as the sync targets are.
pub fn measure(
    plan: &Plan,
    work: &Path,
    bins: &Binaries,
    compile_cache: &Path,
    payload: &Payload,
) -> anyhow::Result<Target> {
    let json = &payload.json_headers;
    let queue_plugins = work.join("queue-plugins");
    std::fs::create_dir_all(&queue_plugins)?;
    install(&queue_plugins, "q", &bins.echo, Some("mode = \"queue\"\n"))?;
    let queue = Server::start(
        "hookhost-queue",
        work,
        plan.server_cpu(),
        &bins.hookhost,
        &|port| {
            server::serve_args(
                port,
                &queue_plugins,
                &work.join("queue-data"),
                compile_cache,
            )
        },
    )?;
    queue.wait_status("/hooks/q", json, &payload.file, 202, PATIENCE)?;
    let mut target = Target::new(
        "(c) queue",
        "durable acks: 202 once fsync'd in the inbox (group commit); workers deliver meanwhile",
        queue.url("/hooks/q"),
        wrk::script(work, "queue", &payload.file, json)?,
    );
    wrk::measure(plan, std::slice::from_mut(&mut target))?;
    Ok(target)
}
