//! A bound on open files: [`CachedFs`] wraps another [`Fs`] and hands out
//! files that are opened when read or written and closed again when more
//! than `capacity` files are open (the least recently used first). A broker
//! with 10,000 segments keeps about `capacity` descriptors open, not
//! 20,000 (a `.log` and an `.index` each).
//!
//! A closed file is reopened by its path, for reading and writing, never
//! created or emptied again. On Linux an fsync through the reopened
//! descriptor covers writes made through the old one, and a writeback error
//! no descriptor has seen yet is still reported (errseq, since 4.16).
//! [`FsFile::try_clone`] opens a descriptor of its own, outside the cache, so
//! a handle taken for an fsync outside a lock keeps its file even if the
//! file is removed meanwhile. Owns descriptors; never decides what to write.

use super::fs::{Fs, FsFile, FsRef, OpenOptions};
use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

type Shared = Arc<dyn FsFile>;

#[derive(Default)]
struct State {
    next_id: u64,
    tick: u64,
    /// Open files: id -> (file, tick of last use).
    open: HashMap<u64, (Shared, u64)>,
    /// Tick of last use -> id, oldest first.
    by_use: BTreeMap<u64, u64>,
}

struct Cache {
    capacity: usize,
    state: Mutex<State>,
}

impl Cache {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open file `id`, marked as just used.
    fn get(&self, id: u64) -> Option<Shared> {
        let mut s = self.lock();
        s.tick += 1;
        let tick = s.tick;
        let (file, used) = s.open.get_mut(&id)?;
        let (file, old) = (Arc::clone(file), std::mem::replace(used, tick));
        s.by_use.remove(&old);
        s.by_use.insert(tick, id);
        Some(file)
    }

    /// Keeps `file` open as `id` (or the one another thread put there
    /// first); closes the least recently used files past the capacity,
    /// after the lock is released.
    fn put(&self, id: u64, file: Shared) -> Shared {
        let mut closed = Vec::new();
        let kept = {
            let mut s = self.lock();
            s.tick += 1;
            let tick = s.tick;
            let kept = match s.open.get_mut(&id) {
                Some((existing, used)) => {
                    let (existing, old) = (Arc::clone(existing), std::mem::replace(used, tick));
                    s.by_use.remove(&old);
                    existing
                }
                None => {
                    s.open.insert(id, (Arc::clone(&file), tick));
                    file
                }
            };
            s.by_use.insert(tick, id);
            while s.open.len() > self.capacity {
                let Some((_, oldest)) = s.by_use.pop_first() else {
                    break;
                };
                closed.extend(s.open.remove(&oldest).map(|(f, _)| f));
            }
            kept
        };
        drop(closed);
        kept
    }

    fn forget(&self, id: u64) {
        let removed = {
            let mut s = self.lock();
            let removed = s.open.remove(&id);
            if let Some((_, used)) = &removed {
                let used = *used;
                s.by_use.remove(&used);
            }
            removed
        };
        drop(removed);
    }

    fn new_id(&self) -> u64 {
        let mut s = self.lock();
        s.next_id += 1;
        s.next_id
    }
}

/// An [`Fs`] whose files hold a descriptor only while among the `capacity`
/// most recently used.
pub struct CachedFs {
    inner: FsRef,
    cache: Arc<Cache>,
}

impl CachedFs {
    /// Wraps `inner`; at most `capacity` files (at least one) are open at once.
    pub fn new(inner: FsRef, capacity: usize) -> CachedFs {
        CachedFs {
            inner,
            cache: Arc::new(Cache {
                capacity: capacity.max(1),
                state: Mutex::default(),
            }),
        }
    }

    /// Files holding a descriptor now.
    pub fn open_count(&self) -> usize {
        self.cache.lock().open.len()
    }
}

impl fmt::Debug for CachedFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedFs")
            .field("capacity", &self.cache.capacity)
            .field("open", &self.open_count())
            .finish()
    }
}

impl Fs for CachedFs {
    fn open(&self, path: &Path, options: OpenOptions) -> io::Result<Box<dyn FsFile>> {
        // Opened now, so creating, emptying and a missing file show here.
        let file: Shared = Arc::from(self.inner.open(path, options)?);
        let id = self.cache.new_id();
        self.cache.put(id, file);
        let reopen = OpenOptions {
            create: false,
            truncate: false,
            ..options
        };
        Ok(Box::new(CachedFile {
            id,
            path: path.to_path_buf(),
            reopen,
            inner: Arc::clone(&self.inner),
            cache: Arc::clone(&self.cache),
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.inner.rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.remove_dir_all(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        self.inner.create_dir_all(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        self.inner.read_dir(path)
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        self.inner.len(path)
    }

    fn exists(&self, path: &Path) -> bool {
        self.inner.exists(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.inner.is_dir(path)
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        self.inner.sync_dir(path)
    }
}

/// A file of a [`CachedFs`]: its path, and a descriptor while cached.
struct CachedFile {
    id: u64,
    path: PathBuf,
    reopen: OpenOptions,
    inner: FsRef,
    cache: Arc<Cache>,
}

impl fmt::Debug for CachedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedFile")
            .field("path", &self.path)
            .finish()
    }
}

impl CachedFile {
    /// The open file, reopened by its path if it was closed.
    fn file(&self) -> io::Result<Shared> {
        if let Some(f) = self.cache.get(self.id) {
            return Ok(f);
        }
        let file: Shared = Arc::from(self.inner.open(&self.path, self.reopen)?);
        Ok(self.cache.put(self.id, file))
    }
}

impl Drop for CachedFile {
    fn drop(&mut self) {
        self.cache.forget(self.id);
    }
}

impl FsFile for CachedFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        self.file()?.read_at(buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.file()?.write_at(buf, offset)
    }

    fn append_all(&self, buf: &[u8]) -> io::Result<()> {
        self.file()?.append_all(buf)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file()?.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.file()?.len()
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file()?.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.file()?.sync_all()
    }

    fn try_clone(&self) -> io::Result<Box<dyn FsFile>> {
        self.file()?.try_clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::RealFs;
    use crate::test_util::append;
    use crate::{Log, LogConfig};
    use yak_protocol::batch::{BatchBuilder, NewRecord};

    #[test]
    fn given_more_files_than_capacity_when_used_in_turn_should_keep_few_open_and_lose_no_byte() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fs = CachedFs::new(Arc::new(RealFs), 3);
        let files: Vec<Box<dyn FsFile>> = (0..10)
            .map(|i| {
                fs.open(
                    &tmp.path().join(format!("f{i}")),
                    OpenOptions::create_append(),
                )
                .expect("open")
            })
            .collect();
        assert!(fs.open_count() <= 3, "{} open", fs.open_count());
        for round in 0..3u8 {
            for (i, f) in files.iter().enumerate() {
                f.append_all(&[round, i as u8])
                    .expect("append after a reopen");
                assert!(fs.open_count() <= 3);
            }
        }
        for (i, f) in files.iter().enumerate() {
            f.sync_data().expect("fsync through a reopened descriptor");
            assert_eq!(
                f.read_all().expect("read"),
                vec![0, i as u8, 1, i as u8, 2, i as u8]
            );
        }
        let clone = files[0].try_clone().expect("clone");
        drop(files);
        assert_eq!(fs.open_count(), 0, "dropped files close their descriptors");
        assert_eq!(clone.len().expect("a clone has a descriptor of its own"), 6);
    }

    #[test]
    fn given_file_created_then_closed_when_reopened_should_not_be_emptied_or_created_again() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let fs = CachedFs::new(Arc::new(RealFs), 1);
        let a = fs
            .open(&tmp.path().join("a"), OpenOptions::create_truncate())
            .expect("create");
        a.write_all_at(b"kept", 0).expect("write");
        let b = fs
            .open(&tmp.path().join("b"), OpenOptions::create_truncate())
            .expect("create b, closing a");
        assert_eq!(
            a.read_all().expect("reopened"),
            b"kept",
            "not truncated on reopen"
        );
        std::fs::remove_file(tmp.path().join("a")).expect("remove");
        drop(b);
        let _c = fs
            .open(&tmp.path().join("c"), OpenOptions::create_truncate())
            .expect("create c, closing a");
        let err = a.len().expect_err("a removed file is not created again");
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn given_log_with_many_segments_when_reading_all_should_hold_at_most_capacity_descriptors() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let cached = Arc::new(CachedFs::new(Arc::new(RealFs), 8));
        let fs: FsRef = Arc::clone(&cached) as FsRef;
        let config = LogConfig {
            segment_bytes: 1024,
            index_interval_bytes: 256,
        };
        let mut log = Log::open_with(Arc::clone(&fs), tmp.path(), config).expect("open");
        let value = [7u8; 600];
        for i in 0..200 {
            let mut b = BatchBuilder::new(-1, 0, -1, 64);
            b.push(NewRecord {
                key: None,
                value: &value,
                timestamp_ms: i,
            });
            append(&mut log, &mut b.finish(), 0).expect("append");
        }
        assert!(cached.open_count() <= 8, "{} open", cached.open_count());
        let segments = std::fs::read_dir(tmp.path()).expect("dir").count() / 2;
        assert!(segments >= 100, "{segments} segments");
        drop(log);
        let log = Log::open_with(fs, tmp.path(), config).expect("reopen every segment");
        assert!(
            cached.open_count() <= 8,
            "{} open after recovery",
            cached.open_count()
        );
        let mut offset = 0;
        while offset < log.log_end_offset() {
            let bytes = log.read(offset, 1).expect("read a closed segment");
            assert!(!bytes.is_empty());
            offset += 1;
        }
        assert_eq!(offset, 200);
        assert!(cached.open_count() <= 8);
    }
}
