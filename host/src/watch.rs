//! Hot reload: notices changes in the plugin folder and asks the registry to
//! reload the plugins they touch.
//!
//! Owns watching (inotify and friends through `notify`, or polling), grouping
//! bursts of events, and SIGHUP. Does not own what a reload does: that is
//! [`Registry::reload`], which re-reads the files, so this module only has to
//! say *which* plugin names may have changed, never *how*.
//!
//! Strategy:
//! - The OS watcher runs on notify's own thread; its callback only maps each
//!   event's paths to plugin names (`NAME.wasm`, `NAME.toml`; temp files and
//!   dotfiles ignored) and adds them to a shared pending set, then wakes the
//!   reload task. The pending set is deduplicated, so a flood of events costs
//!   memory per name, not per event. With `--poll`, a task compares file
//!   metadata (size, mtime, inode, ctime) every interval instead: notify's own
//!   poller compares mtimes in whole seconds and would miss `mv` of a file
//!   older than the one it replaces.
//! - One reload task owns the other end. After a wake-up it waits until no
//!   event has arrived for `debounce` (so `cp` writing a file in chunks, an
//!   editor's save dance or `mv` of ten files becomes one reload), but never
//!   longer than [`MAX_BATCH_DELAY`] after the first event, then reloads the
//!   names collected. When every pending file's last event says it is
//!   complete (renamed into place, closed after writing, removed), the wait
//!   is only [`SETTLED_DEBOUNCE`]: nothing more is coming for those files, and
//!   that short window still keeps `mv x.toml …; mv x.wasm …` in one reload.
//!   This is what makes an atomic rename, the deployment docs/operating.md
//!   recommends, go live a debounce sooner than a `cp` in progress. Events that arrive during a reload wake it again, and
//!   every reload re-reads the files, so the last reload after the last write
//!   sees the files' final content: a half-written file can fail once (the
//!   running version stays) and is then picked up complete.
//! - Reads (ours included: the registry reads the files it reloads) raise
//!   open/close-without-write events; those are ignored, or every reload
//!   would trigger the next.
//! - An event notify marks "rescan needed" (the kernel queue overflowed), a
//!   watcher error, or a change to `..data` (the symlink Kubernetes swaps to
//!   update a mounted ConfigMap or volume) reloads the whole folder; unchanged
//!   files are skipped by their hash. SIGHUP reloads the whole folder and also
//!   re-validates unchanged manifests, whose `env:`/`file:` secrets may have
//!   changed.
//! - The folder itself may go away (`rm -rf plugins`, a volume unmounted,
//!   a deploy that swaps the folder): an OS watch on it then silently
//!   watches nothing. Every [`FOLDER_CHECK`] the reload task compares the
//!   folder's identity (device and inode) with the one it watches. When it
//!   is gone, the log says so once (the plugins loaded keep serving, since
//!   nothing new can be read); when it is back, or was replaced by another
//!   folder of the same name, the OS watch is made again on the new folder
//!   and the whole folder is reloaded.
//! - [`Reloader::stop`] (host shutdown) aborts the task, which owns the OS
//!   watcher: dropping it ends notify's thread.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use notify::Watcher as _;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::WatchMode;

use crate::registry::{Changes, Registry, plugin_file};
use crate::runtime::Runtime;

/// Longest a reload waits for a burst of events to end. A file being written
/// slowly for longer than this is reloaded mid-write (fails, the running
/// version stays) and again once the writing stops.
pub const MAX_BATCH_DELAY: Duration = Duration::from_secs(2);

/// How long the folder must stay quiet when every pending file is complete
/// (or the debounce, if shorter). Two `mv` commands from a script are a few
/// milliseconds apart.
pub const SETTLED_DEBOUNCE: Duration = Duration::from_millis(20);

/// How often the reload task checks that the folder it watches is still
/// the one at its path.
pub const FOLDER_CHECK: Duration = Duration::from_secs(1);

/// Plugin names touched since the last reload; shared by the watcher (adds)
/// and the reload task (takes).
#[derive(Default)]
struct Pending {
    state: Mutex<PendingState>,
    wake: Notify,
}

#[derive(Default)]
struct PendingState {
    names: BTreeSet<String>,
    /// Names whose last event may be followed by more writes (created,
    /// written to, seen by polling): these wait the full debounce.
    writing: BTreeSet<String>,
    /// Reload the whole folder.
    rescan: bool,
    /// When the last event arrived, for the debounce.
    last_event: Option<Instant>,
}

/// What one event says about its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    /// More writes may follow (created, written to, or not known).
    Writing,
    /// The file is in its final state: renamed into place, closed after
    /// writing, or removed.
    Complete,
    /// Says nothing either way (a metadata change): keeps what is known.
    Unchanged,
}

impl Pending {
    fn add(&self, name: Option<String>, progress: Progress) {
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match name {
                Some(name) => {
                    match progress {
                        Progress::Writing => {
                            state.writing.insert(name.clone());
                        }
                        Progress::Complete => {
                            state.writing.remove(&name);
                        }
                        Progress::Unchanged => {}
                    }
                    state.names.insert(name);
                }
                // A rescan lists files that may be mid-write.
                None => state.rescan = true,
            }
            state.last_event = Some(Instant::now());
        }
        self.wake.notify_one();
    }

    /// When the last event arrived and how long the folder must then stay
    /// quiet: `debounce` while a file may still be written, less once every
    /// pending file is complete.
    fn quiet_from(&self, debounce: Duration) -> (Option<Instant>, Duration) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let wait = if state.rescan || !state.writing.is_empty() {
            debounce
        } else {
            debounce.min(SETTLED_DEBOUNCE)
        };
        (state.last_event, wait)
    }

    fn take(&self) -> Option<Changes> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let state = std::mem::take(&mut *state);
        if state.rescan {
            Some(Changes::Folder)
        } else if state.names.is_empty() {
            None
        } else {
            Some(Changes::Names(state.names))
        }
    }
}

/// Watches the plugin folder from the moment it is created, so that nothing
/// written while the first load runs is missed; [`Watcher::spawn`] then
/// starts reloading.
pub struct Watcher {
    dir: PathBuf,
    pending: Arc<Pending>,
    source: Source,
    /// The folder watched, as [`identity`] says.
    identity: Option<Identity>,
}

enum Source {
    /// Keeps the OS watch alive.
    Notify(notify::RecommendedWatcher),
    Poll(Duration, Listing),
}

impl Watcher {
    /// Starts watching `dir`. Fails if the OS refuses a watch (e.g. the
    /// per-user inotify instance limit is reached); `--poll` avoids that.
    pub fn new(dir: &Path, mode: WatchMode) -> anyhow::Result<Self> {
        // The same check (and message) as the first load's, before the OS
        // watch gives a vaguer one.
        std::fs::read_dir(dir)
            .with_context(|| format!("cannot read plugin folder {}", dir.display()))?;
        let pending = Arc::new(Pending::default());
        let identity = identity(dir);
        let source = match mode {
            WatchMode::Notify => Source::Notify(watch_os(dir, &pending)?),
            WatchMode::Poll(interval) => {
                Source::Poll(interval, Listing::read(dir).unwrap_or_default())
            }
        };
        Ok(Self {
            dir: dir.to_owned(),
            pending,
            source,
            identity,
        })
    }

    /// Starts the reload task: from now on, changes in the folder reach
    /// `registry`, grouped by `debounce`.
    pub fn spawn(
        self,
        registry: Arc<Registry>,
        runtime: Arc<Runtime>,
        debounce: Duration,
    ) -> Reloader {
        let Self {
            dir,
            pending,
            source,
            identity,
        } = self;
        let task = tokio::spawn(async move {
            // Owned here so that aborting this task stops the OS watch or
            // the polling task too.
            let (os_watch, _poll) = match source {
                Source::Notify(watcher) => (Some(watcher), None),
                Source::Poll(interval, listing) => (
                    None,
                    Some(AbortOnDrop(tokio::spawn(poll(
                        dir.clone(),
                        interval,
                        listing,
                        pending.clone(),
                    )))),
                ),
            };
            let folder = Folder {
                dir: dir.clone(),
                identity,
                notify: os_watch.is_some(),
                os_watch,
            };
            reload_loop(folder, &pending, &registry, &runtime, debounce).await;
        });
        Reloader { task }
    }
}

/// Starts an OS watch of `dir` that feeds `pending`.
fn watch_os(dir: &Path, pending: &Arc<Pending>) -> anyhow::Result<notify::RecommendedWatcher> {
    let sink = pending.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        on_event(&sink, event)
    })
    .context("cannot start watching the plugin folder (use --poll if the OS cannot)")?;
    watcher
        .watch(dir, notify::RecursiveMode::NonRecursive)
        .with_context(|| {
            format!(
                "cannot watch plugin folder {} (on Linux, raise fs.inotify.max_user_instances or max_user_watches, or use --poll)",
                dir.display()
            )
        })?;
    Ok(watcher)
}

/// Which folder a path names: device and inode, `None` if there is no
/// folder there (or it cannot be looked at).
type Identity = (u64, u64);

fn identity(dir: &Path) -> Option<Identity> {
    let metadata = std::fs::metadata(dir).ok().filter(|m| m.is_dir())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Some((metadata.dev(), metadata.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = metadata;
        Some((0, 0))
    }
}

/// The watched folder, as the reload task keeps track of it.
struct Folder {
    dir: PathBuf,
    /// The folder the OS watch (or the polling) is on; `None` while the
    /// path names no folder.
    identity: Option<Identity>,
    /// Notify mode (else polling, which looks at the path every time and
    /// needs no new watch).
    notify: bool,
    /// The OS watch, in notify mode; replaced when the folder is.
    os_watch: Option<notify::RecommendedWatcher>,
}

impl Folder {
    /// Compares the folder at the path with the one watched; says in the
    /// log when it is gone (once) and when it is back, then watches the new
    /// one and asks for a reload of it all.
    async fn check(&mut self, pending: &Arc<Pending>) {
        let now = {
            let dir = self.dir.clone();
            // A stat can hang on a network file system: off the async threads.
            tokio::task::spawn_blocking(move || identity(&dir))
                .await
                .unwrap_or(None)
        };
        if now == self.identity {
            return;
        }
        let folder = self.dir.display();
        let Some(now) = now else {
            tracing::warn!(
                folder = %folder,
                "plugin folder is gone: the plugins loaded keep serving, nothing is reloaded until it is back (checked every second)"
            );
            self.identity = None;
            self.os_watch = None;
            return;
        };
        if self.notify {
            // The old watch follows the old folder (moved away, or deleted
            // and so watching nothing): watch the one at the path now.
            match watch_os(&self.dir, pending) {
                Ok(watcher) => self.os_watch = Some(watcher),
                Err(err) => {
                    // Tried again at the next check.
                    tracing::warn!(folder = %folder, error = %format!("{err:#}"), "plugin folder is back but cannot be watched yet");
                    self.os_watch = None;
                    self.identity = None;
                    return;
                }
            }
        }
        tracing::info!(folder = %folder, "plugin folder is back (or was replaced): watching it again and loading what is in it");
        self.identity = Some(now);
        pending.add(None, Progress::Writing);
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The running reload task.
pub struct Reloader {
    task: JoinHandle<()>,
}

impl Reloader {
    /// Stops watching and reloading. A reload in progress is abandoned (a
    /// compile already started finishes on its thread, unused).
    pub async fn stop(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn reload_loop(
    mut folder: Folder,
    pending: &Arc<Pending>,
    registry: &Registry,
    runtime: &Arc<Runtime>,
    debounce: Duration,
) {
    let mut hangup = Hangup::new();
    let mut checks = tokio::time::interval_at(Instant::now() + FOLDER_CHECK, FOLDER_CHECK);
    checks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let changes = tokio::select! {
            () = pending.wake.notified() => {
                let first = Instant::now();
                loop {
                    let (last_event, wait) = pending.quiet_from(debounce);
                    let quiet = last_event.unwrap_or(first) + wait;
                    let until = quiet.min(first + MAX_BATCH_DELAY);
                    if Instant::now() >= until {
                        break;
                    }
                    tokio::time::sleep_until(until).await;
                }
                match pending.take() {
                    Some(changes) => changes,
                    None => continue,
                }
            }
            () = hangup.recv() => {
                tracing::info!(folder = %folder.dir.display(), "SIGHUP received: reloading every plugin and manifest");
                // Whatever was pending is covered by the full reload.
                let _ = pending.take();
                Changes::Refresh
            }
            _ = checks.tick() => {
                // Wakes the branch above (a rescan) when the folder is back.
                folder.check(pending).await;
                continue;
            }
        };
        tracing::debug!(?changes, "reloading plugins");
        if let Err(err) = registry.reload(runtime, &folder.dir, changes).await {
            if identity(&folder.dir).is_none() {
                // Gone: the folder check says so (once), and reloads it all
                // when it is back; retrying every second meanwhile would
                // only repeat the error.
                folder.check(pending).await;
                continue;
            }
            tracing::error!(error = %format!("{err:#}"), "plugin folder not reloaded; every plugin keeps serving; retrying in 1 s");
            // The folder could not be listed (EMFILE, a transient EACCES):
            // the changes taken above must not be lost, so rescan it all.
            tokio::time::sleep(Duration::from_secs(1)).await;
            pending.add(None, Progress::Writing);
        }
    }
}

/// Maps one notify event to pending plugin names.
fn on_event(pending: &Pending, event: notify::Result<notify::Event>) {
    let event = match event {
        Ok(event) => event,
        Err(err) => {
            tracing::warn!(error = %err, "plugin folder watch error; rescanning the folder");
            pending.add(None, Progress::Writing);
            return;
        }
    };
    if event.need_rescan() {
        tracing::warn!("plugin folder events were lost; rescanning the folder");
        pending.add(None, Progress::Writing);
        return;
    }
    let progress = match event.kind {
        // Opening or reading a file changes nothing; a writer closing it
        // has finished.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Progress::Complete,
        EventKind::Access(_) => return,
        // A rename is atomic: the file arrives (or leaves) whole.
        EventKind::Modify(ModifyKind::Name(_)) | EventKind::Remove(_) => Progress::Complete,
        EventKind::Modify(ModifyKind::Metadata(_)) => Progress::Unchanged,
        // Created (a writer may follow), written to, or unknown.
        _ => Progress::Writing,
    };
    for path in &event.paths {
        if let Some((name, _)) = plugin_file(path) {
            pending.add(Some(name), progress);
        } else if path.file_name().is_some_and(|name| name == "..data") {
            pending.add(None, Progress::Writing);
        }
    }
}

/// What polling compares: enough metadata to see a write in place (size,
/// mtime with the file system's full precision) and a rename into place
/// (inode and ctime change even when `mv` keeps an old mtime).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64, i64, i64),
}

impl Stamp {
    fn of(metadata: &std::fs::Metadata) -> Self {
        #[cfg(unix)]
        use std::os::unix::fs::MetadataExt as _;
        Self {
            len: metadata.len(),
            modified: metadata.modified().ok(),
            #[cfg(unix)]
            inode: (
                metadata.dev(),
                metadata.ino(),
                metadata.ctime(),
                metadata.ctime_nsec(),
            ),
        }
    }
}

/// Plugin files in the folder and their stamps.
#[derive(Default)]
struct Listing(HashMap<PathBuf, (String, Stamp)>);

impl Listing {
    /// `None` when the folder cannot be listed (gone, or unreadable): the
    /// folder check reports a missing folder, and the registry (which lists
    /// the folder itself) an unreadable one.
    fn read(dir: &Path) -> Option<Self> {
        let mut listing = HashMap::new();
        {
            let entries = std::fs::read_dir(dir).ok()?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Some((name, _)) = plugin_file(&path) else {
                    continue;
                };
                // `metadata` follows symlinks: a swapped link target counts.
                if let Ok(metadata) = std::fs::metadata(&path) {
                    listing.insert(path, (name, Stamp::of(&metadata)));
                }
            }
        }
        Some(Self(listing))
    }

    /// Names whose files appeared, disappeared or changed since `before`.
    fn changed_since(&self, before: &Listing) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (path, (name, stamp)) in &self.0 {
            if before.0.get(path).is_none_or(|(_, old)| old != stamp) {
                names.insert(name.clone());
            }
        }
        for (path, (name, _)) in &before.0 {
            if !self.0.contains_key(path) {
                names.insert(name.clone());
            }
        }
        names
    }
}

async fn poll(dir: PathBuf, interval: Duration, mut listing: Listing, pending: Arc<Pending>) {
    // The first comparison is one interval after `listing` was taken.
    let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let next = {
            let dir = dir.clone();
            match tokio::task::spawn_blocking(move || Listing::read(&dir)).await {
                Ok(Some(next)) => next,
                // Keep comparing with the last listing: a folder that is
                // back shows what changed while it was away.
                Ok(None) | Err(_) => continue,
            }
        };
        // A stamp that changed may belong to a file still being written.
        for name in next.changed_since(&listing) {
            pending.add(Some(name), Progress::Writing);
        }
        listing = next;
    }
}

/// SIGHUP as a stream; never fires where there are no signals, or if the
/// handler cannot be installed (logged).
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn new() -> Self {
        #[cfg(unix)]
        {
            let kind = tokio::signal::unix::SignalKind::hangup();
            match tokio::signal::unix::signal(kind) {
                Ok(signal) => Self {
                    signal: Some(signal),
                },
                Err(err) => {
                    tracing::warn!(error = %err, "cannot listen for SIGHUP; only file events reload plugins");
                    Self { signal: None }
                }
            }
        }
        #[cfg(not(unix))]
        Self {}
    }

    async fn recv(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal
            && signal.recv().await.is_some()
        {
            return;
        }
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_and_dot_files_are_not_plugins() {
        use crate::registry::FileKind;
        let kind = |name: &str| plugin_file(Path::new(name));
        assert_eq!(
            kind("/p/echo.wasm"),
            Some(("echo".into(), FileKind::Component))
        );
        assert_eq!(
            kind("/p/echo.toml"),
            Some(("echo".into(), FileKind::Manifest))
        );
        for ignored in [
            "/p/.echo.wasm",
            "/p/.echo.wasm.tmp",
            "/p/echo.wasm~",
            "/p/echo.wasm.part",
            "/p/echo.wasm.swp",
            "/p/#echo.wasm#",
            "/p/.wasm",
            "/p/README.md",
            "/p/echo",
        ] {
            assert_eq!(kind(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn pending_names_are_deduplicated_and_rescan_wins() {
        let pending = Pending::default();
        assert_eq!(pending.take(), None);
        pending.add(Some("a".into()), Progress::Writing);
        pending.add(Some("a".into()), Progress::Complete);
        pending.add(Some("b".into()), Progress::Complete);
        assert_eq!(
            pending.take(),
            Some(Changes::Names(["a".to_owned(), "b".to_owned()].into()))
        );
        pending.add(Some("a".into()), Progress::Complete);
        pending.add(None, Progress::Writing);
        assert_eq!(pending.take(), Some(Changes::Folder));
        assert_eq!(pending.take(), None);
    }

    #[test]
    fn only_files_still_being_written_wait_the_whole_debounce() {
        let debounce = Duration::from_millis(100);
        let wait = |pending: &Pending| pending.quiet_from(debounce).1;
        let pending = Pending::default();
        // `cp`: created, written, closed.
        pending.add(Some("a".into()), Progress::Writing);
        assert_eq!(wait(&pending), debounce);
        pending.add(Some("a".into()), Progress::Unchanged);
        assert_eq!(
            wait(&pending),
            debounce,
            "a chmod says nothing of the writes"
        );
        pending.add(Some("a".into()), Progress::Complete);
        assert_eq!(wait(&pending), SETTLED_DEBOUNCE);
        // Another file starts being written: everything waits for it.
        pending.add(Some("b".into()), Progress::Writing);
        assert_eq!(wait(&pending), debounce);
        pending.add(Some("b".into()), Progress::Complete);
        assert_eq!(wait(&pending), SETTLED_DEBOUNCE);
        pending.take();
        // A rescan may find files mid-write.
        pending.add(None, Progress::Writing);
        assert_eq!(wait(&pending), debounce);
        pending.take();
        // A debounce shorter than the settled window is kept.
        pending.add(Some("a".into()), Progress::Complete);
        assert_eq!(
            pending.quiet_from(Duration::from_millis(5)).1,
            Duration::from_millis(5)
        );
    }

    /// What inotify reports for the two ways plugins arrive, as notify maps it.
    #[test]
    fn renames_and_closed_writes_are_complete_creates_and_writes_are_not() {
        use notify::event::{CreateKind, DataChange, RenameMode};
        let event = |kind, path: &str| Ok(notify::Event::new(kind).add_path(PathBuf::from(path)));
        let pending = Pending::default();
        let debounce = Duration::from_secs(1);
        on_event(
            &pending,
            event(EventKind::Create(CreateKind::File), "/p/a.wasm"),
        );
        on_event(
            &pending,
            event(
                EventKind::Modify(ModifyKind::Data(DataChange::Any)),
                "/p/a.wasm",
            ),
        );
        assert_eq!(pending.quiet_from(debounce).1, debounce);
        on_event(
            &pending,
            event(
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                "/p/a.wasm",
            ),
        );
        assert_eq!(pending.quiet_from(debounce).1, SETTLED_DEBOUNCE);
        pending.take();

        on_event(
            &pending,
            event(
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                "/p/b.wasm",
            ),
        );
        assert_eq!(pending.quiet_from(debounce).1, SETTLED_DEBOUNCE);
        assert_eq!(
            pending.take(),
            Some(Changes::Names(["b".to_owned()].into()))
        );
    }

    #[test]
    fn polling_sees_a_rename_that_keeps_an_old_mtime() {
        let dir = tempfile::tempdir().unwrap();
        let plugin = dir.path().join("p.wasm");
        std::fs::write(&plugin, b"one").unwrap();
        let before = Listing::read(dir.path()).unwrap();
        assert!(before.changed_since(&before).is_empty());

        // `mv` of a file written earlier: same size, mtime not newer.
        let staged = dir.path().join(".p.wasm.tmp");
        std::fs::write(&staged, b"two").unwrap();
        let old = std::fs::metadata(&plugin).unwrap().modified().unwrap();
        std::fs::File::options()
            .write(true)
            .open(&staged)
            .unwrap()
            .set_modified(old)
            .unwrap();
        std::fs::rename(&staged, &plugin).unwrap();
        let after = Listing::read(dir.path()).unwrap();
        assert_eq!(after.changed_since(&before), ["p".to_owned()].into());

        std::fs::write(dir.path().join("q.toml"), b"").unwrap();
        std::fs::remove_file(&plugin).unwrap();
        let last = Listing::read(dir.path()).unwrap();
        assert_eq!(
            last.changed_since(&after),
            ["p".to_owned(), "q".to_owned()].into()
        );
    }
}
