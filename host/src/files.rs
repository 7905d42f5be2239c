//! Reads the operator's files safely: plugin components, manifests and
//! `file:` secrets, which live in folders that anyone with write access to
//! them (a deploy script, a mounted volume, a mistake) can fill with
//! something that is not a file.
//!
//! Owns the one way the host reads such a file: opened without blocking
//! (`O_NONBLOCK`, so a FIFO without a writer or a device answers at once
//! instead of parking the opening thread for good), refused unless the
//! opened file is a regular file (`fstat` on the descriptor, so a symlink to
//! a FIFO or `/dev/zero` is caught too, and nothing can be swapped between
//! the check and the read), read up to a size cap (one more byte than the
//! cap is read, so a file that grows while being read is still refused),
//! and given up after a timeout (a hung network or FUSE file system). Does
//! not own what the bytes mean, or which files may be read (that is
//! [`crate::secret::SecretRules`] for secrets).
//!
//! Strategy: the read runs on a thread of its own and the caller waits for
//! it at most the timeout. A thread stuck in the kernel cannot be cancelled,
//! so it is left behind (it is not part of the async runtime, so it delays
//! neither requests nor shutdown) and counted: at most
//! [`MAX_READS_IN_FLIGHT`] reads run at once, and further reads are refused
//! at once instead of piling up threads behind a file system that no longer
//! answers.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::units::MIB;

/// Largest plugin component read: far above the 12-19 MB of a JavaScript or
/// Python component (docs/performance.md), low enough that a stray disk
/// image dropped into the folder is refused before it is hashed and
/// compiled.
pub const MAX_COMPONENT: u64 = 256 * MIB;
/// Largest manifest read: a manifest is a few hundred bytes of TOML.
pub const MAX_MANIFEST: u64 = MIB;
/// Largest `file:` secret or config value read: a key or a certificate
/// chain is a few KiB.
pub const MAX_SECRET: u64 = MIB;
/// How long one read may take: 256 MiB from a slow disk takes a few
/// seconds; a file system that has not answered in this long has hung.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Most reads running (or stuck) at once, process-wide. A reload reads one
/// file at a time; this leaves room for secrets and the admin API's reload.
pub const MAX_READS_IN_FLIGHT: usize = 16;

static READS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// Why a file was not read. The messages complete "PATH: ...".
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// There is no file at the path (or a symlink points nowhere).
    #[error("no such file")]
    NotFound,
    /// The path is a FIFO, a device, a socket or a folder.
    #[error(
        "is {0}, not a regular file; the host reads only regular files (replace it with a file or remove it)"
    )]
    NotRegular(&'static str),
    /// The file is larger than the cap.
    #[error("is larger than the {}MiB the host reads for it{}", .limit / MIB, fix(*.limit))]
    TooLarge {
        /// The cap, in bytes.
        limit: u64,
    },
    /// The read did not finish within the timeout.
    #[error(
        "was not read within {0:?} (a hung network or FUSE file system?); it is tried again at the next reload"
    )]
    Timeout(Duration),
    /// Too many earlier reads have not finished.
    #[error(
        "not read: {} earlier reads have not finished (a hung file system?); it is tried again at the next reload",
        MAX_READS_IN_FLIGHT
    )]
    Busy,
    /// The OS refused (permissions, I/O error).
    #[error("cannot read: {0}")]
    Io(std::io::Error),
}

fn fix(limit: u64) -> &'static str {
    if limit >= MAX_COMPONENT {
        " (is it really a plugin component?)"
    } else {
        ""
    }
}

/// Reads the regular file at `path`, at most `limit` bytes, waiting at most
/// [`READ_TIMEOUT`]. Blocks the calling thread (for up to the timeout): call
/// it from a blocking context.
pub fn read(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    read_within(path, limit, READ_TIMEOUT)
}

/// [`read`] with another timeout.
pub fn read_within(path: &Path, limit: u64, timeout: Duration) -> Result<Vec<u8>, ReadError> {
    read_where(path, limit, timeout).map(|(bytes, _)| bytes)
}

/// [`read`], and where the file that was read really is (on Linux, what
/// the kernel says of the open descriptor: a symlink or folder swapped after
/// a path was checked cannot hide the file's real place). `None` where the
/// OS cannot tell.
pub fn read_where(
    path: &Path,
    limit: u64,
    timeout: Duration,
) -> Result<(Vec<u8>, Option<PathBuf>), ReadError> {
    if READS_IN_FLIGHT.fetch_add(1, Ordering::AcqRel) >= MAX_READS_IN_FLIGHT {
        READS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        return Err(ReadError::Busy);
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let owned: PathBuf = path.to_owned();
    let spawned = std::thread::Builder::new()
        .name("hookhost-read".into())
        .spawn(move || {
            let result = read_now(&owned, limit);
            READS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
            let _ = tx.send(result);
        });
    if let Err(err) = spawned {
        READS_IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        return Err(ReadError::Io(err));
    }
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => Err(ReadError::Timeout(timeout)),
    }
}

/// The read itself, on the calling thread.
fn read_now(path: &Path, limit: u64) -> Result<(Vec<u8>, Option<PathBuf>), ReadError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // O_NONBLOCK: opening a FIFO for reading otherwise waits for a
        // writer, forever. O_NOCTTY: a terminal device must not become the
        // host's controlling terminal. (std adds O_CLOEXEC.)
        options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => ReadError::NotFound,
        // Opening a Unix socket fails with ENXIO.
        _ if err.raw_os_error() == Some(libc::ENXIO) => ReadError::NotRegular("a socket"),
        _ => ReadError::Io(err),
    })?;
    // fstat of what was opened, not a second lookup of the path.
    let metadata = file.metadata().map_err(ReadError::Io)?;
    if !metadata.is_file() {
        return Err(ReadError::NotRegular(kind(&metadata.file_type())));
    }
    if metadata.len() > limit {
        return Err(ReadError::TooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    // One byte past the cap tells a file that grew while being read.
    (&file)
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge { limit });
    }
    Ok((bytes, opened_path(&file)))
}

#[cfg(target_os = "linux")]
fn opened_path(file: &std::fs::File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd as _;
    std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd())).ok()
}

#[cfg(not(target_os = "linux"))]
fn opened_path(_: &std::fs::File) -> Option<PathBuf> {
    None
}

fn kind(file_type: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    if file_type.is_dir() {
        return "a folder";
    }
    "not a file"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_are_read_up_to_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"12345").unwrap();
        assert_eq!(read(&path, 5).unwrap(), b"12345");
        #[cfg(target_os = "linux")]
        assert_eq!(
            read_where(&path, 5, READ_TIMEOUT).unwrap().1,
            Some(path.canonicalize().unwrap())
        );
        assert!(matches!(
            read(&path, 4),
            Err(ReadError::TooLarge { limit: 4 })
        ));
        assert!(matches!(
            read(&dir.path().join("missing"), 5),
            Err(ReadError::NotFound)
        ));
        let err = read(dir.path(), 5).unwrap_err();
        assert!(err.to_string().contains("is a folder"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn fifos_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("p.wasm");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let started = std::time::Instant::now();
        let err = read(&fifo, MAX_COMPONENT).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let link = dir.path().join("link.wasm");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(matches!(
            read(&link, MAX_COMPONENT),
            Err(ReadError::NotRegular(_))
        ));
        let zero = dir.path().join("zero.wasm");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        let err = read(&zero, MAX_COMPONENT).unwrap_err();
        assert!(err.to_string().contains("character device"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
