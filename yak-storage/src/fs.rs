//! The storage I/O seam: every file and directory operation of the storage
//! layer (and of other modules that keep files: the metadata log, the
//! replica directories) goes through [`Fs`] and [`FsFile`].
//!
//! [`RealFs`] is `std::fs`, the default everywhere. Tests use `SimFs`: an
//! in-memory model of the page cache that can fail writes (short, ENOSPC),
//! fail an fsync with EIO (and then behave as Linux does: the dirty data is
//! dropped but marked clean), cut the power (every write and directory entry
//! not yet fsynced is lost, file by file and entry by entry) and cut it at the
//! K-th mutating operation, for crash-point tests.

use std::ffi::OsString;
use std::fmt::Debug;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// A shared file system handle, cheap to clone.
pub type FsRef = Arc<dyn Fs>;

/// An open file of any [`Fs`].
pub type FileHandle = Box<dyn FsFile>;

/// How to open a file, as `std::fs::OpenOptions`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Open for reading.
    pub read: bool,
    /// Open for writing.
    pub write: bool,
    /// Every write goes to the end ([`FsFile::append_all`]).
    pub append: bool,
    /// Create the file if missing.
    pub create: bool,
    /// Empty an existing file.
    pub truncate: bool,
}

impl OpenOptions {
    /// Read only.
    pub fn read() -> OpenOptions {
        OpenOptions {
            read: true,
            ..OpenOptions::default()
        }
    }

    /// Read and write an existing file.
    pub fn read_write() -> OpenOptions {
        OpenOptions {
            read: true,
            write: true,
            ..OpenOptions::default()
        }
    }

    /// Read and write; created if missing, emptied if present.
    pub fn create_truncate() -> OpenOptions {
        OpenOptions {
            read: true,
            write: true,
            create: true,
            truncate: true,
            append: false,
        }
    }

    /// Read and append; created if missing.
    pub fn create_append() -> OpenOptions {
        OpenOptions {
            read: true,
            write: true,
            append: true,
            create: true,
            truncate: false,
        }
    }
}

/// A file system: names, directories and opening files.
pub trait Fs: Send + Sync + Debug {
    /// Opens (or creates) a file.
    fn open(&self, path: &Path, options: OpenOptions) -> io::Result<Box<dyn FsFile>>;
    /// The whole content of a file.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Renames a file or directory, replacing a file at `to`.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Creates a directory and its missing parents.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries of a directory, in no particular order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>>;
    /// Length of a file.
    fn len(&self, path: &Path) -> io::Result<u64>;
    /// Whether a file or directory exists.
    fn exists(&self, path: &Path) -> bool;
    /// Whether `path` is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// Makes the entries of a directory (created, renamed, removed files
    /// and directories) durable: fsync of the directory.
    fn sync_dir(&self, path: &Path) -> io::Result<()>;
}

/// An open file. Positioned reads and writes; no cursor.
pub trait FsFile: Send + Sync + Debug {
    /// Reads at `offset`; returns the bytes read (0 at the end).
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Writes at `offset`; returns the bytes written (may be short).
    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize>;
    /// Appends all of `buf` at the end of the file.
    fn append_all(&self, buf: &[u8]) -> io::Result<()>;
    /// Sets the length, cutting or zero-extending.
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Current length.
    fn len(&self) -> io::Result<u64>;
    /// Makes the content (and the length) durable.
    fn sync_data(&self) -> io::Result<()>;
    /// Makes the content and all metadata durable.
    fn sync_all(&self) -> io::Result<()>;
    /// A second handle on the same file.
    fn try_clone(&self) -> io::Result<Box<dyn FsFile>>;

    /// Whether the file is empty.
    fn is_empty(&self) -> io::Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Fills `buf` from `offset`; `UnexpectedEof` if the file ends first.
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.read_at(buf, offset) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file ends early",
                    ))
                }
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Writes all of `buf` at `offset`; on error a prefix may be written.
    fn write_all_at(&self, mut buf: &[u8], mut offset: u64) -> io::Result<()> {
        while !buf.is_empty() {
            match self.write_at(buf, offset) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
                Ok(n) => {
                    buf = &buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The whole content.
    fn read_all(&self) -> io::Result<Vec<u8>> {
        let len = usize::try_from(self.len()?).map_err(|_| io::Error::other("file too large"))?;
        let mut buf = vec![0u8; len];
        self.read_exact_at(&mut buf, 0)?;
        Ok(buf)
    }
}

/// Writes `bytes` to `path` atomically: a temporary file next to it
/// (`<name>.tmp`), fsync, rename over `path`, fsync of the directory.
/// After a crash `path` holds the old content or the new, never a mix.
pub fn write_atomic(fs: &dyn Fs, path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp_name = path.file_name().map(OsString::from).unwrap_or_default();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let file = fs.open(&tmp, OpenOptions::create_truncate())?;
    file.write_all_at(bytes, 0)?;
    file.sync_all()?;
    drop(file);
    fs.rename(&tmp, path)?;
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs.sync_dir(parent)
}

/// `std::fs`: the file system of production.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealFs;

/// A `std::fs::File` behind [`FsFile`].
#[derive(Debug)]
struct RealFile {
    file: std::fs::File,
    append: bool,
}

impl Fs for RealFs {
    fn open(&self, path: &Path, o: OpenOptions) -> io::Result<Box<dyn FsFile>> {
        let file = std::fs::OpenOptions::new()
            .read(o.read)
            .write(o.write && !o.append)
            .append(o.append)
            .create(o.create)
            .truncate(o.truncate)
            .open(path)?;
        Ok(Box::new(RealFile {
            file,
            append: o.append,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        std::fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect()
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        std::fs::metadata(path).map(|m| m.len())
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        std::fs::File::open(path)?.sync_all()
    }
}

impl FsFile for RealFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::write_at(&self.file, buf, offset)
    }

    fn append_all(&self, buf: &[u8]) -> io::Result<()> {
        if self.append {
            io::Write::write_all(&mut &self.file, buf)
        } else {
            let end = self.file.metadata()?.len();
            std::os::unix::fs::FileExt::write_all_at(&self.file, buf, end)
        }
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    fn len(&self) -> io::Result<u64> {
        self.file.metadata().map(|m| m.len())
    }

    fn sync_data(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn sync_all(&self) -> io::Result<()> {
        self.file.sync_all()
    }

    fn try_clone(&self) -> io::Result<Box<dyn FsFile>> {
        Ok(Box::new(RealFile {
            file: self.file.try_clone()?,
            append: self.append,
        }))
    }
}

#[cfg(any(test, feature = "sim"))]
pub use sim::{SimFs, WriteFault};

#[cfg(any(test, feature = "sim"))]
mod sim;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn given_unsynced_writes_and_entries_when_power_cut_should_keep_only_durable_state() {
        let sim = SimFs::new();
        let dir = Path::new("/d");
        sim.create_dir_all(dir).unwrap();
        sim.sync_dir(Path::new("/")).unwrap();
        let a = sim
            .open(&dir.join("a"), OpenOptions::create_truncate())
            .unwrap();
        a.write_all_at(b"hello", 0).unwrap();
        a.sync_data().unwrap();
        a.write_all_at(b" world", 5).unwrap();
        sim.sync_dir(dir).unwrap();
        let b = sim
            .open(&dir.join("b"), OpenOptions::create_truncate())
            .unwrap();
        b.write_all_at(b"x", 0).unwrap();
        b.sync_data().unwrap(); // its entry is not durable
        sim.power_cut();
        assert_eq!(sim.read(&dir.join("a")).unwrap(), b"hello");
        assert!(!sim.exists(&dir.join("b")));
        assert!(a.len().is_err(), "a handle from before the cut is dead");
    }

    #[test]
    fn given_unsynced_rename_when_power_cut_should_restore_old_names() {
        let sim = SimFs::new();
        write_atomic(&sim, Path::new("/f"), b"one").unwrap();
        let t = sim
            .open(Path::new("/f.tmp"), OpenOptions::create_truncate())
            .unwrap();
        t.write_all_at(b"two", 0).unwrap();
        t.sync_all().unwrap();
        sim.rename(Path::new("/f.tmp"), Path::new("/f")).unwrap();
        assert_eq!(sim.read(Path::new("/f")).unwrap(), b"two");
        sim.power_cut();
        assert_eq!(sim.read(Path::new("/f")).unwrap(), b"one");
    }

    #[test]
    fn given_failed_fsync_when_syncing_again_should_succeed_without_making_data_durable() {
        let sim = SimFs::new();
        let f = sim
            .open(Path::new("/f"), OpenOptions::create_truncate())
            .unwrap();
        sim.sync_dir(Path::new("/")).unwrap();
        f.write_all_at(b"data", 0).unwrap();
        sim.fail_syncs(1);
        assert_eq!(f.sync_data().unwrap_err().raw_os_error(), Some(5));
        f.sync_data().unwrap(); // "succeeds": fsyncgate
        assert_eq!(
            f.read_all().unwrap(),
            b"data",
            "the page cache still shows it"
        );
        sim.power_cut();
        // The length may have reached the disk; the bytes never did.
        assert!(!sim.read(Path::new("/f")).unwrap().contains(&b'd'));
    }

    #[test]
    fn given_faults_when_writing_should_be_short_or_fail() {
        let sim = SimFs::new();
        let f = sim
            .open(Path::new("/f"), OpenOptions::create_truncate())
            .unwrap();
        sim.fail_write(0, WriteFault::Short(2));
        assert_eq!(f.write_at(b"abcd", 0).unwrap(), 2);
        sim.fail_write(1, WriteFault::NoSpace);
        f.write_all_at(b"x", 2).unwrap();
        assert_eq!(f.write_at(b"y", 3).unwrap_err().raw_os_error(), Some(28));
        sim.set_capacity(Some(5));
        assert_eq!(f.write_at(b"12345", 3).unwrap(), 2);
        assert_eq!(f.write_at(b"z", 5).unwrap_err().raw_os_error(), Some(28));
        assert_eq!(f.read_all().unwrap(), b"abx12");
    }

    #[test]
    fn given_crash_point_when_reached_should_fail_everything_until_power_cut() {
        let sim = SimFs::new();
        let f = sim
            .open(Path::new("/f"), OpenOptions::create_truncate())
            .unwrap();
        let k = sim.ops() + 1;
        sim.crash_at(k);
        f.write_all_at(b"a", 0).unwrap();
        assert!(f.write_all_at(b"b", 1).is_err());
        assert!(sim.has_crashed());
        assert!(sim.read(Path::new("/f")).is_err());
        sim.power_cut();
        assert!(!sim.exists(Path::new("/f")), "its entry was never synced");
    }
}
