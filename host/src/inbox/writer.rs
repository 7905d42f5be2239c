//! Group commit: one thread owns the store's writes and commits them in
//! batches, so concurrent deliveries share one fsync.
//!
//! Strategy: every write (an append from a request, a claim or an outcome
//! from a worker) is sent over a bounded channel with a oneshot for its
//! answer. The writer thread blocks for the first message, then drains
//! whatever else is already queued (up to [`MAX_BATCH_BYTES`] or the batch
//! limit), hands the whole batch to [`Store::apply`] as one transaction, and
//! only after the commit returned answers every waiter. Nothing waits on a
//! timer: while one commit is being fsync'd the next batch queues up, so the
//! batch size follows the load by itself (one write alone is committed at
//! once). If the commit fails, every waiter of that batch gets the error: a
//! request is then answered 503 and was not accepted.
//!
//! A plain thread, not a tokio task: `apply` blocks on fsync for
//! milliseconds, which must not stall an async worker thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{mpsc, oneshot};

use super::store::{Store, StoreError, Write, Written};

/// Most bytes one batch writes; more waits for the next batch. Bounds how long
/// one commit takes when large bodies arrive together.
const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// Writes queued before senders wait for room.
const QUEUE: usize = 8192;

type Reply = oneshot::Sender<Result<Written, StoreError>>;

/// A write and who waits for it; `None` on the channel means "finish what
/// was sent before, then exit".
struct Job {
    write: Write,
    reply: Reply,
}

/// The sending side of the writer thread.
pub struct Writer {
    sender: mpsc::Sender<Option<Job>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counts: Arc<Counts>,
}

/// Running totals of the writer, for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct Counts {
    /// Transactions committed (or failed): one fsync each.
    pub commits: AtomicU64,
    /// Writes in them.
    pub writes: AtomicU64,
}

impl Writer {
    /// Starts the writer thread for `store`, committing at most `max_batch`
    /// writes per transaction.
    pub fn start(store: Arc<dyn Store>, max_batch: usize) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::channel(QUEUE);
        let counts = Arc::new(Counts::default());
        let thread_counts = counts.clone();
        let thread = std::thread::Builder::new()
            .name("hookhost-inbox-writer".into())
            .spawn(move || run(store.as_ref(), receiver, max_batch.max(1), &thread_counts))?;
        Ok(Self {
            sender,
            thread: Mutex::new(Some(thread)),
            counts,
        })
    }

    /// Transactions and writes so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Sends `write` and waits until it is committed (or failed).
    pub async fn write(&self, write: Write) -> Result<Written, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender
            .send(Some(Job { write, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        // A dropped reply means the thread exited before this write's batch.
        answer.await.unwrap_or(Err(StoreError::Closed))
    }

    /// Commits everything sent so far, then stops the thread and waits for
    /// it. Writes sent afterwards fail with [`StoreError::Closed`].
    pub async fn close(&self) {
        let _ = self.sender.send(None).await;
        let thread = self.thread.lock().expect("writer handle poisoned").take();
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn run(
    store: &dyn Store,
    mut receiver: mpsc::Receiver<Option<Job>>,
    max_batch: usize,
    counts: &Counts,
) {
    let mut writes = Vec::with_capacity(max_batch);
    let mut replies: Vec<Reply> = Vec::with_capacity(max_batch);
    let mut stop = false;
    while !stop {
        let Some(first) = receiver.blocking_recv() else {
            break; // every sender is gone
        };
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                None => stop = true,
                Some(Job { write, reply }) => {
                    bytes += write.size();
                    writes.push(write);
                    replies.push(reply);
                    if !stop && writes.len() < max_batch && bytes < MAX_BATCH_BYTES {
                        next = receiver.try_recv().ok();
                    }
                }
            }
        }
        if writes.is_empty() {
            continue;
        }
        let started = std::time::Instant::now();
        let outcome = store.apply(&writes);
        counts.commits.fetch_add(1, Ordering::Relaxed);
        counts
            .writes
            .fetch_add(writes.len() as u64, Ordering::Relaxed);
        tracing::trace!(
            writes = writes.len(),
            bytes,
            elapsed_us = started.elapsed().as_micros() as u64,
            "inbox batch committed"
        );
        match outcome {
            Ok(results) => {
                for (reply, result) in replies.drain(..).zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(err) => {
                tracing::error!(error = %err, writes = writes.len(), "inbox commit failed; the batch was not stored");
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
        writes.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::inbox::store::{Event, EventKey, Filter, Millis};

    /// Records batch sizes; fails every batch when `fail` is set.
    #[derive(Default)]
    struct Recorder {
        batches: Mutex<Vec<usize>>,
        fail: bool,
        applied: AtomicUsize,
    }

    impl Store for Recorder {
        fn apply(&self, writes: &[Write]) -> Result<Vec<Result<Written, StoreError>>, StoreError> {
            // Slow enough that writes sent meanwhile queue up.
            std::thread::sleep(std::time::Duration::from_millis(20));
            self.batches.lock().unwrap().push(writes.len());
            if self.fail {
                return Err(StoreError::Backend("database or disk is full".into()));
            }
            self.applied.fetch_add(writes.len(), Ordering::SeqCst);
            Ok(writes.iter().map(|_| Ok(Written::Done)).collect())
        }
        fn get(&self, _: &EventKey) -> Result<Option<Event>, StoreError> {
            Ok(None)
        }
        fn list(&self, _: &Filter) -> Result<Vec<Event>, StoreError> {
            Ok(Vec::new())
        }
        fn seen(&self, _: &str, _: &str, _: Millis) -> Result<bool, StoreError> {
            Ok(false)
        }
        fn due_routes(&self, _: Millis) -> Result<Vec<String>, StoreError> {
            Ok(Vec::new())
        }
        fn next_due(&self, _: Millis) -> Result<Option<Millis>, StoreError> {
            Ok(None)
        }
        fn backlog(&self) -> Result<crate::inbox::Backlog, StoreError> {
            Ok(Default::default())
        }
        fn pending_by_route(&self) -> Result<Vec<(String, u64)>, StoreError> {
            Ok(Vec::new())
        }
        fn kv_get(&self, _: &str, _: &str) -> Result<Option<Vec<u8>>, StoreError> {
            Ok(None)
        }
        fn kv_keys(&self, _: &str, _: &str) -> Result<Vec<String>, StoreError> {
            Ok(Vec::new())
        }
    }

    fn remember(n: usize) -> Write {
        Write::Remember {
            route: "/r".into(),
            id: n.to_string(),
            at: 0,
        }
    }

    async fn write_concurrently(
        writer: &Arc<Writer>,
        n: usize,
    ) -> Vec<Result<Written, StoreError>> {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move { writer.write(remember(i)).await })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_share_a_commit() {
        let store = Arc::new(Recorder::default());
        let writer = Arc::new(Writer::start(store.clone(), 1024).unwrap());
        let results = write_concurrently(&writer, 200).await;
        assert!(results.iter().all(|r| matches!(r, Ok(Written::Done))));
        let batches = store.batches.lock().unwrap().clone();
        assert_eq!(batches.iter().sum::<usize>(), 200);
        assert!(
            batches.len() < 20,
            "200 concurrent writes took {} commits: {batches:?}",
            batches.len()
        );
        writer.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn batch_limit_is_respected() {
        let store = Arc::new(Recorder::default());
        let writer = Arc::new(Writer::start(store.clone(), 1).unwrap());
        write_concurrently(&writer, 5).await;
        assert_eq!(*store.batches.lock().unwrap(), vec![1; 5]);
        writer.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_commit_fails_every_waiter_of_the_batch() {
        let store = Arc::new(Recorder {
            fail: true,
            ..Default::default()
        });
        let writer = Arc::new(Writer::start(store.clone(), 1024).unwrap());
        let results = write_concurrently(&writer, 50).await;
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(StoreError::Backend(m)) if m.contains("disk is full"))),
            "{results:?}"
        );
        assert_eq!(store.applied.load(Ordering::SeqCst), 0);
        writer.close().await;
    }

    #[tokio::test]
    async fn writes_after_close_fail_as_closed() {
        let store = Arc::new(Recorder::default());
        let writer = Writer::start(store.clone(), 1024).unwrap();
        assert!(writer.write(remember(1)).await.is_ok());
        writer.close().await;
        assert!(matches!(
            writer.write(remember(2)).await,
            Err(StoreError::Closed)
        ));
    }
}
