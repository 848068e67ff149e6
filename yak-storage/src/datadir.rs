//! What a data dir holds besides partition data and the metadata log: the
//! lock that keeps one process per dir, the cluster id a broker's dir
//! belongs to, the marker naming the record format of its logs, and the
//! durable small-file write they use.
//!
//! Locks: the supervisor holds `<data>/yak.lock`, ZooKeeper
//! `<data>/zookeeper/zookeeper.lock`, broker *i* `<data>/broker-<i>/broker.lock`,
//! each an exclusive `flock` taken before anything in the dir is opened and
//! held for the life of the process. The holder writes its pid into the
//! file so a second process can say who holds it.

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use yak_protocol::limits::{DIR_LOCK_HOLDER_READ_POLL_MS, DIR_LOCK_HOLDER_READ_WAIT_MS};

pub use yak_protocol::paths::{
    BROKER_LOCK_FILE, CLUSTER_ID_FILE, SUPERVISOR_LOCK_FILE, ZOOKEEPER_LOCK_FILE,
};

/// The record format marker of a broker's dir, in `<data>/broker-<id>/`.
pub const RECORD_FORMAT_FILE: &str = "record_format";
/// What the marker holds: the logs hold Kafka v2 record batches (varint
/// records). Dirs written before it have no marker.
pub const RECORD_FORMAT: &str = "kafka-v2";
/// How the format of a dir without a marker is named in errors.
pub const OLD_RECORD_FORMAT: &str =
    "YaK's first record format (fixed-width records, before Kafka v2 records)";

/// What can go wrong with a data dir's lock or small files.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    /// A file system call failed.
    #[error("{path}: {source}")]
    Io {
        /// File or directory the call was about.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `flock` failed for another reason than the lock being held.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The cause.
        source: Errno,
    },
    /// Another process holds the lock.
    #[error("{dir} is in use by another process: {path} is held by {holder}")]
    Locked {
        /// The dir the lock guards.
        dir: PathBuf,
        /// The lock file.
        path: PathBuf,
        /// What the holder wrote into it (`pid=<pid> role=<role>`), or a
        /// note that it wrote nothing.
        holder: String,
    },
    /// The dir holds logs written in an older record format.
    #[error("{dir} holds partition logs in {OLD_RECORD_FORMAT} (it has no {RECORD_FORMAT_FILE} marker); this broker reads only {RECORD_FORMAT} records: move the dir aside and let the broker start empty (it re-replicates from its peers), or read it with the YaK release that wrote it")]
    OldRecordFormat {
        /// The broker's dir.
        dir: PathBuf,
    },
    /// The marker names a format this broker does not know.
    #[error("{path}: unknown record format {found:?} (this broker reads only {RECORD_FORMAT})")]
    UnknownRecordFormat {
        /// The marker.
        path: PathBuf,
        /// What it holds (cut short).
        found: String,
    },
    /// The file holds something other than a cluster id.
    #[error("{path}: not a cluster id: {found:?}")]
    BadClusterId {
        /// The file.
        path: PathBuf,
        /// What it holds (cut short).
        found: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> DataDirError + '_ {
    move |source| DataDirError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An exclusive lock on a dir, held until dropped (or the process exits).
#[derive(Debug)]
pub struct DirLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl DirLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// How long a process that finds the lock held waits for the holder's pid
/// to appear in the file (the holder writes it right after locking).
const HOLDER_READ_WAIT: Duration = Duration::from_millis(DIR_LOCK_HOLDER_READ_WAIT_MS);

/// Takes the exclusive lock `dir/file_name` (creating `dir`), without
/// waiting, and writes `pid=<pid> role=<role>` into it. Fails with
/// [`DataDirError::Locked`], naming the holder, when another process holds it.
pub fn lock(dir: &Path, file_name: &str, role: &str) -> Result<DirLock, DataDirError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let path = dir.join(file_name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io_err(&path))?;
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => lock,
        Err((mut file, Errno::EWOULDBLOCK)) => {
            return Err(DataDirError::Locked {
                dir: dir.to_path_buf(),
                holder: read_holder(&mut file),
                path,
            });
        }
        Err((_, source)) => return Err(DataDirError::Lock { path, source }),
    };
    let holder = format!("pid={} role={role}\n", std::process::id());
    lock.set_len(0)
        .and_then(|()| lock.rewind())
        .and_then(|()| lock.write_all(holder.as_bytes()))
        .map_err(io_err(&path))?;
    Ok(DirLock { _lock: lock, path })
}

/// What the holder of a lock file wrote into it, waiting briefly for it.
fn read_holder(file: &mut File) -> String {
    let deadline = std::time::Instant::now() + HOLDER_READ_WAIT;
    loop {
        let mut text = String::new();
        let read = file
            .rewind()
            .and_then(|()| file.take(256).read_to_string(&mut text));
        let text = text.trim();
        if read.is_ok() && !text.is_empty() {
            return text.to_string();
        }
        if std::time::Instant::now() >= deadline {
            return "a process that has not written its pid".to_string();
        }
        std::thread::sleep(Duration::from_millis(DIR_LOCK_HOLDER_READ_POLL_MS));
    }
}

/// Makes a directory's entries (files created, renamed or removed in it) durable.
pub fn sync_dir(dir: &Path) -> Result<(), DataDirError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Writes `path` durably and atomically: a temp file beside it, fsync,
/// rename over `path`, fsync the directory. A crash leaves the old content
/// or the new, never a mix or nothing.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), DataDirError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    let mut file = File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(dir)
}

/// A fresh cluster id: 128 random bits from the kernel, as 32 hex digits.
pub fn new_cluster_id() -> Result<String, DataDirError> {
    let path = Path::new("/dev/urandom");
    let mut bytes = [0u8; 16];
    File::open(path)
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(io_err(path))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// True for what [`new_cluster_id`] makes.
pub fn is_cluster_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The cluster id stored in `dir` (None if it has none yet).
pub fn read_cluster_id(dir: &Path) -> Result<Option<String>, DataDirError> {
    let path = dir.join(CLUSTER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if is_cluster_id(text.trim()) => Ok(Some(text.trim().to_string())),
        Ok(text) => Err(DataDirError::BadClusterId {
            found: text.chars().take(64).collect(),
            path,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(DataDirError::Io { path, source: e }),
    }
}

/// Stores `cluster_id` in `dir` durably.
pub fn write_cluster_id(dir: &Path, cluster_id: &str) -> Result<(), DataDirError> {
    write_atomic(
        &dir.join(CLUSTER_ID_FILE),
        format!("{cluster_id}\n").as_bytes(),
    )
}

/// Checks, before any log in the broker dir `dir` is opened, that its logs
/// are in the record format this broker reads. A dir without the marker
/// gets it when it holds no partition log yet (a new dir, or one that never
/// held data); one that holds logs predates the marker and is refused with
/// [`DataDirError::OldRecordFormat`], naming the format.
pub fn check_record_format(dir: &Path) -> Result<(), DataDirError> {
    let path = dir.join(RECORD_FORMAT_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim() == RECORD_FORMAT => Ok(()),
        Ok(text) => Err(DataDirError::UnknownRecordFormat {
            found: text.chars().take(64).collect(),
            path,
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if holds_logs(dir)? {
                return Err(DataDirError::OldRecordFormat {
                    dir: dir.to_path_buf(),
                });
            }
            write_atomic(&path, format!("{RECORD_FORMAT}\n").as_bytes())
        }
        Err(e) => Err(DataDirError::Io { path, source: e }),
    }
}

/// Whether `dir` holds a subdirectory: partition logs live in
/// `<topic>-<partition>/`, and nothing else in a broker dir is a directory.
fn holds_logs(dir: &Path) -> Result<bool, DataDirError> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if entry.file_type().map_err(io_err(&entry.path()))?.is_dir() {
            return Ok(true);
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_lock_held_when_locking_again_should_name_the_holder_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let held = lock(dir.path(), "x.lock", "test").expect("first lock");
        let err = lock(dir.path(), "x.lock", "test").expect_err("second lock must fail");
        let text = err.to_string();
        assert!(
            text.contains(&format!("pid={}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("is in use"), "{text}");
        drop(held);
        lock(dir.path(), "x.lock", "test").expect("lock again after release");
    }

    #[test]
    fn given_file_when_writing_atomically_should_replace_it_and_leave_no_temp() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        write_atomic(&path, b"one").expect("write");
        write_atomic(&path, b"two").expect("overwrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"two");
        assert!(!dir.path().join("f.tmp").exists());
    }

    #[test]
    fn given_cluster_ids_when_made_should_differ_and_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (new_cluster_id().expect("id"), new_cluster_id().expect("id"));
        assert!(is_cluster_id(&a) && a != b);
        assert_eq!(read_cluster_id(dir.path()).expect("read"), None);
        write_cluster_id(dir.path(), &a).expect("write");
        assert_eq!(read_cluster_id(dir.path()).expect("read"), Some(a));
        std::fs::write(dir.path().join(CLUSTER_ID_FILE), "garbage").expect("write");
        assert!(matches!(
            read_cluster_id(dir.path()),
            Err(DataDirError::BadClusterId { .. })
        ));
    }

    #[test]
    fn given_dirs_old_and_new_when_checking_record_format_should_mark_new_and_refuse_old_by_name() {
        let fresh = tempfile::tempdir().expect("tempdir");
        check_record_format(fresh.path()).expect("a new dir is marked");
        let marker = fresh.path().join(RECORD_FORMAT_FILE);
        assert_eq!(
            std::fs::read_to_string(&marker).expect("marker"),
            "kafka-v2\n"
        );
        std::fs::create_dir(fresh.path().join("t-0")).expect("mkdir");
        check_record_format(fresh.path()).expect("a marked dir with logs opens");

        let old = tempfile::tempdir().expect("tempdir");
        write_cluster_id(old.path(), &new_cluster_id().expect("id")).expect("write");
        std::fs::create_dir(old.path().join("t-0")).expect("mkdir");
        let err = check_record_format(old.path()).expect_err("logs without a marker");
        assert!(matches!(err, DataDirError::OldRecordFormat { .. }));
        let text = err.to_string();
        assert!(
            text.contains("fixed-width records") && text.contains("kafka-v2"),
            "{text}"
        );
        assert!(
            !old.path().join(RECORD_FORMAT_FILE).exists(),
            "nothing written"
        );

        std::fs::write(&marker, "kafka-v9\n").expect("write");
        assert!(matches!(
            check_record_format(fresh.path()),
            Err(DataDirError::UnknownRecordFormat { .. })
        ));
    }
}
