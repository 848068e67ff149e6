//! The in-memory page-cache model.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::{Component, Path};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Fs, FsFile, OpenOptions};

/// How an injected write fault fails the write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFault {
    /// Writes only this many bytes (at most), then reports success.
    Short(usize),
    /// Fails with ENOSPC, writing nothing.
    NoSpace,
    /// Fails with EIO, writing nothing.
    Io,
}

type Ino = u64;

const ROOT: Ino = 0;

#[derive(Debug, Default)]
struct FileNode {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// Byte ranges written since the last fsync, merged.
    dirty: Vec<(u64, u64)>,
    /// The length changed since the last fsync.
    len_dirty: bool,
}

#[derive(Debug, Default)]
struct DirNode {
    current: BTreeMap<OsString, Ino>,
    durable: BTreeMap<OsString, Ino>,
}

#[derive(Debug)]
enum Node {
    File(FileNode),
    Dir(DirNode),
}

#[derive(Debug)]
struct State {
    nodes: HashMap<Ino, Node>,
    next_ino: Ino,
    /// Bumped at every power cut: handles from before fail.
    generation: u64,
    /// Mutating operations so far.
    ops: u64,
    /// Cut the power when `ops` reaches this.
    crash_at: Option<u64>,
    /// The power is off: every call fails until [`SimFs::power_cut`].
    crashed: bool,
    /// Injected faults: (write number counted from the start, fault).
    write_faults: Vec<(u64, WriteFault)>,
    /// Injected faults for the next write to a file whose name ends so.
    named_faults: Vec<(String, WriteFault)>,
    writes: u64,
    fail_syncs: u64,
    capacity: Option<u64>,
}

/// The page-cache model. Clones share the same state.
#[derive(Debug, Clone)]
pub struct SimFs {
    state: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct SimFile {
    state: Arc<Mutex<State>>,
    /// The name it was opened by, for named faults.
    name: String,
    ino: Ino,
    generation: u64,
    append: bool,
}

fn err(kind: io::ErrorKind, what: &str) -> io::Error {
    io::Error::new(kind, what.to_string())
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(28)
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(5)
}

fn crashed() -> io::Error {
    io::Error::other("simulated power cut")
}

fn names(path: &Path) -> Vec<&OsStr> {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect()
}

impl Default for SimFs {
    fn default() -> Self {
        SimFs::new()
    }
}

impl SimFs {
    /// An empty file system with only its root directory.
    pub fn new() -> SimFs {
        let mut nodes = HashMap::new();
        nodes.insert(ROOT, Node::Dir(DirNode::default()));
        SimFs {
            state: Arc::new(Mutex::new(State {
                nodes,
                next_ino: 1,
                generation: 0,
                ops: 0,
                crash_at: None,
                crashed: false,
                write_faults: Vec::new(),
                named_faults: Vec::new(),
                writes: 0,
                fail_syncs: 0,
                capacity: None,
            })),
        }
    }

    /// As a shared [`super::FsRef`].
    pub fn shared(&self) -> super::FsRef {
        Arc::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The power fails: every file goes back to its durable content and
    /// every directory to its durable entries. Handles opened before fail
    /// from now on (the process died). The power is back afterwards.
    pub fn power_cut(&self) {
        let mut s = self.lock();
        s.revert(None);
    }

    /// A power cut where the disk had already written back some of what
    /// was not fsynced: for each file, its durable content, its current
    /// content or (when it only grew) a random prefix of the growth; for
    /// each directory entry, the durable or the current one, at random.
    pub fn power_cut_random(&self, seed: u64) {
        let mut s = self.lock();
        s.revert(Some(seed));
    }

    /// Cuts the power when the `k`-th mutating operation from the start
    /// (0-based; see [`SimFs::ops`]) is attempted: that operation and
    /// every later call fail until [`SimFs::power_cut`].
    pub fn crash_at(&self, k: u64) {
        self.lock().crash_at = Some(k);
    }

    /// Whether a [`SimFs::crash_at`] has struck.
    pub fn has_crashed(&self) -> bool {
        self.lock().crashed
    }

    /// Mutating operations so far (writes, truncations, fsyncs, creates,
    /// renames, removals).
    pub fn ops(&self) -> u64 {
        self.lock().ops
    }

    /// The `n`-th write from now (0: the next) fails as `fault` says.
    pub fn fail_write(&self, n: u64, fault: WriteFault) {
        let mut s = self.lock();
        let at = s.writes + n;
        s.write_faults.push((at, fault));
    }

    /// The next write to a file whose name ends with `suffix` fails as
    /// `fault` says.
    pub fn fail_write_to(&self, suffix: &str, fault: WriteFault) {
        self.lock().named_faults.push((suffix.to_string(), fault));
    }

    /// The next `n` file fsyncs fail with EIO, dropping the dirty data
    /// but marking it clean (Linux after a writeback error).
    pub fn fail_syncs(&self, n: u64) {
        self.lock().fail_syncs = n;
    }

    /// The disk holds at most `bytes` of file content (current view);
    /// writes past it are short, then fail with ENOSPC.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// The durable content of a file, as a power cut would leave it (if
    /// its directory entries were durable).
    pub fn durable(&self, path: &Path) -> Option<Vec<u8>> {
        let s = self.lock();
        let ino = s.resolve(path).ok()?;
        match s.nodes.get(&ino) {
            Some(Node::File(f)) => Some(f.durable.clone()),
            _ => None,
        }
    }
}

impl State {
    fn alloc(&mut self, node: Node) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, node);
        ino
    }

    /// Counts a mutating operation; cuts the power at the chosen one.
    fn op(&mut self) -> io::Result<()> {
        if self.crashed {
            return Err(crashed());
        }
        if self.crash_at == Some(self.ops) {
            self.crash_at = None;
            self.crashed = true;
            return Err(crashed());
        }
        self.ops += 1;
        Ok(())
    }

    fn alive(&self) -> io::Result<()> {
        if self.crashed {
            Err(crashed())
        } else {
            Ok(())
        }
    }

    fn dir(&self, ino: Ino) -> io::Result<&DirNode> {
        match self.nodes.get(&ino) {
            Some(Node::Dir(d)) => Ok(d),
            _ => Err(err(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }

    fn dir_mut(&mut self, ino: Ino) -> io::Result<&mut DirNode> {
        match self.nodes.get_mut(&ino) {
            Some(Node::Dir(d)) => Ok(d),
            _ => Err(err(io::ErrorKind::NotADirectory, "not a directory")),
        }
    }

    fn file_mut(&mut self, ino: Ino) -> io::Result<&mut FileNode> {
        match self.nodes.get_mut(&ino) {
            Some(Node::File(f)) => Ok(f),
            _ => Err(err(io::ErrorKind::IsADirectory, "not a file")),
        }
    }

    fn resolve(&self, path: &Path) -> io::Result<Ino> {
        let mut ino = ROOT;
        for name in names(path) {
            ino = *self
                .dir(ino)?
                .current
                .get(name)
                .ok_or_else(|| err(io::ErrorKind::NotFound, "no such file or directory"))?;
        }
        Ok(ino)
    }

    /// The directory holding `path` and the last name.
    fn parent<'p>(&self, path: &'p Path) -> io::Result<(Ino, &'p OsStr)> {
        let all = names(path);
        let (last, init) = all
            .split_last()
            .ok_or_else(|| err(io::ErrorKind::InvalidInput, "no file name"))?;
        let mut ino = ROOT;
        for name in init {
            ino = *self
                .dir(ino)?
                .current
                .get(*name)
                .ok_or_else(|| err(io::ErrorKind::NotFound, "no such directory"))?;
        }
        self.dir(ino)?;
        Ok((ino, last))
    }

    fn used_bytes(&self) -> u64 {
        self.nodes
            .values()
            .map(|n| match n {
                Node::File(f) => f.current.len() as u64,
                Node::Dir(_) => 0,
            })
            .sum()
    }

    fn write(&mut self, ino: Ino, name: &str, buf: &[u8], offset: u64) -> io::Result<usize> {
        self.op()?;
        let n = self.writes;
        self.writes += 1;
        let mut len = buf.len();
        let fault = match self.write_faults.iter().position(|&(at, _)| at == n) {
            Some(i) => Some(self.write_faults.remove(i).1),
            None => match self
                .named_faults
                .iter()
                .position(|(suffix, _)| name.ends_with(suffix.as_str()))
            {
                Some(i) => Some(self.named_faults.remove(i).1),
                None => None,
            },
        };
        if let Some(fault) = fault {
            match fault {
                WriteFault::Short(max) => len = len.min(max),
                WriteFault::NoSpace => return Err(enospc()),
                WriteFault::Io => return Err(eio()),
            }
        }
        if let Some(cap) = self.capacity {
            let file_len = self.file_mut(ino)?.current.len() as u64;
            let growth = (offset + len as u64).saturating_sub(file_len);
            let free = cap.saturating_sub(self.used_bytes());
            if growth > free {
                let fits = (file_len + free).saturating_sub(offset);
                len = len.min(fits as usize);
                if len == 0 {
                    return Err(enospc());
                }
            }
        }
        let f = self.file_mut(ino)?;
        let end = offset as usize + len;
        if f.current.len() < end {
            f.current.resize(end, 0);
            f.len_dirty = true;
        }
        f.current[offset as usize..end].copy_from_slice(&buf[..len]);
        if len > 0 {
            f.dirty.push((offset, end as u64));
        }
        Ok(len)
    }

    fn set_len(&mut self, ino: Ino, len: u64) -> io::Result<()> {
        self.op()?;
        let f = self.file_mut(ino)?;
        let old = f.current.len() as u64;
        f.current.resize(len as usize, 0);
        f.len_dirty = true;
        if len > old {
            f.dirty.push((old, len));
        }
        Ok(())
    }

    fn sync(&mut self, ino: Ino) -> io::Result<()> {
        self.op()?;
        let failing = self.fail_syncs > 0;
        if failing {
            self.fail_syncs -= 1;
        }
        let f = self.file_mut(ino)?;
        if failing {
            // Linux: the pages that failed to write are marked clean;
            // their new content is on no disk, and no later fsync will
            // write it.
            f.dirty.clear();
            f.len_dirty = false;
            return Err(eio());
        }
        let len = f.current.len();
        if f.len_dirty || f.durable.len() != len {
            f.durable.resize(len, 0);
        }
        for &(a, b) in &f.dirty {
            let (a, b) = (a as usize, (b as usize).min(len));
            if a < b {
                f.durable[a..b].copy_from_slice(&f.current[a..b]);
            }
        }
        f.dirty.clear();
        f.len_dirty = false;
        Ok(())
    }

    fn revert(&mut self, seed: Option<u64>) {
        let mut rng = seed.map(|s| s.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        let mut next = move || {
            rng.as_mut().map(|r| {
                *r ^= *r << 13;
                *r ^= *r >> 7;
                *r ^= *r << 17;
                *r
            })
        };
        let mut inos: Vec<Ino> = self.nodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let Some(node) = self.nodes.get_mut(&ino) else {
                continue;
            };
            match node {
                Node::File(f) => {
                    let kept = match next() {
                        None => f.durable.clone(),
                        Some(r) if f.current.starts_with(&f.durable) => {
                            let extra = f.current.len() - f.durable.len();
                            let keep = if extra == 0 {
                                0
                            } else {
                                (r as usize) % (extra + 1)
                            };
                            f.current[..f.durable.len() + keep].to_vec()
                        }
                        Some(r) if r % 2 == 0 => f.current.clone(),
                        Some(_) => f.durable.clone(),
                    };
                    f.current = kept.clone();
                    f.durable = kept;
                    f.dirty.clear();
                    f.len_dirty = false;
                }
                Node::Dir(d) => {
                    if seed.is_none() {
                        d.current = d.durable.clone();
                    } else {
                        let mut names: Vec<OsString> = d.current.keys().cloned().collect();
                        names.extend(d.durable.keys().cloned());
                        names.sort();
                        names.dedup();
                        let mut kept = BTreeMap::new();
                        for name in names {
                            let pick_current = next().is_some_and(|r| r % 2 == 0);
                            let from = if pick_current { &d.current } else { &d.durable };
                            if let Some(&i) = from.get(&name) {
                                kept.insert(name, i);
                            }
                        }
                        d.current = kept.clone();
                        d.durable = kept;
                    }
                }
            }
        }
        self.generation += 1;
        self.crashed = false;
        self.crash_at = None;
        self.write_faults.clear();
        self.named_faults.clear();
        self.fail_syncs = 0;
    }
}

impl Fs for SimFs {
    fn open(&self, path: &Path, o: OpenOptions) -> io::Result<Box<dyn FsFile>> {
        let mut s = self.lock();
        s.alive()?;
        let ino = match s.resolve(path) {
            Ok(ino) => {
                s.file_mut(ino)?;
                if o.truncate {
                    s.set_len(ino, 0)?;
                }
                ino
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound && o.create => {
                let (dir, name) = s.parent(path)?;
                s.op()?;
                let ino = s.alloc(Node::File(FileNode::default()));
                s.dir_mut(dir)?.current.insert(name.to_os_string(), ino);
                ino
            }
            Err(e) => return Err(e),
        };
        Ok(Box::new(SimFile {
            state: Arc::clone(&self.state),
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            ino,
            generation: s.generation,
            append: o.append,
        }))
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let mut s = self.lock();
        s.alive()?;
        let ino = s.resolve(path)?;
        Ok(s.file_mut(ino)?.current.clone())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.alive()?;
        let (from_dir, from_name) = s.parent(from)?;
        let ino = *s
            .dir(from_dir)?
            .current
            .get(from_name)
            .ok_or_else(|| err(io::ErrorKind::NotFound, "no such file"))?;
        let (to_dir, to_name) = s.parent(to)?;
        if let Some(&existing) = s.dir(to_dir)?.current.get(to_name) {
            if matches!(s.nodes.get(&existing), Some(Node::Dir(d)) if !d.current.is_empty()) {
                return Err(err(io::ErrorKind::DirectoryNotEmpty, "target not empty"));
            }
        }
        s.op()?;
        s.dir_mut(from_dir)?.current.remove(from_name);
        s.dir_mut(to_dir)?
            .current
            .insert(to_name.to_os_string(), ino);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.alive()?;
        let (dir, name) = s.parent(path)?;
        let ino = *s
            .dir(dir)?
            .current
            .get(name)
            .ok_or_else(|| err(io::ErrorKind::NotFound, "no such file"))?;
        s.file_mut(ino)?;
        s.op()?;
        s.dir_mut(dir)?.current.remove(name);
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.alive()?;
        let (dir, name) = s.parent(path)?;
        let ino = *s
            .dir(dir)?
            .current
            .get(name)
            .ok_or_else(|| err(io::ErrorKind::NotFound, "no such directory"))?;
        s.dir(ino)?;
        s.op()?;
        // The children's entries go with the directory; an unsynced
        // removal of the directory brings them back at a power cut.
        s.dir_mut(dir)?.current.remove(name);
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.alive()?;
        let mut ino = ROOT;
        for name in names(path) {
            ino = match s.dir(ino)?.current.get(name) {
                Some(&child) => {
                    s.dir(child)?;
                    child
                }
                None => {
                    s.op()?;
                    let child = s.alloc(Node::Dir(DirNode::default()));
                    s.dir_mut(ino)?.current.insert(name.to_os_string(), child);
                    child
                }
            };
        }
        Ok(())
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<OsString>> {
        let s = self.lock();
        s.alive()?;
        let ino = s.resolve(path)?;
        Ok(s.dir(ino)?.current.keys().cloned().collect())
    }

    fn len(&self, path: &Path) -> io::Result<u64> {
        let mut s = self.lock();
        s.alive()?;
        let ino = s.resolve(path)?;
        Ok(s.file_mut(ino)?.current.len() as u64)
    }

    fn exists(&self, path: &Path) -> bool {
        self.lock().resolve(path).is_ok()
    }

    fn is_dir(&self, path: &Path) -> bool {
        let s = self.lock();
        s.resolve(path).is_ok_and(|i| s.dir(i).is_ok())
    }

    fn sync_dir(&self, path: &Path) -> io::Result<()> {
        let mut s = self.lock();
        s.alive()?;
        let ino = s.resolve(path)?;
        s.dir(ino)?;
        s.op()?;
        let d = s.dir_mut(ino)?;
        d.durable = d.current.clone();
        Ok(())
    }
}

impl SimFile {
    fn lock(&self) -> io::Result<MutexGuard<'_, State>> {
        let s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.alive()?;
        if s.generation != self.generation {
            return Err(err(io::ErrorKind::Other, "handle from before a power cut"));
        }
        Ok(s)
    }
}

impl FsFile for SimFile {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let mut s = self.lock()?;
        let f = s.file_mut(self.ino)?;
        let start = (offset as usize).min(f.current.len());
        let n = buf.len().min(f.current.len() - start);
        buf[..n].copy_from_slice(&f.current[start..start + n]);
        Ok(n)
    }

    fn write_at(&self, buf: &[u8], offset: u64) -> io::Result<usize> {
        let mut s = self.lock()?;
        if self.append {
            let end = s.file_mut(self.ino)?.current.len() as u64;
            return s.write(self.ino, &self.name, buf, end);
        }
        s.write(self.ino, &self.name, buf, offset)
    }

    fn append_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let mut s = self.lock()?;
            let end = s.file_mut(self.ino)?.current.len() as u64;
            match s.write(self.ino, &self.name, buf, end)? {
                0 => return Err(io::Error::new(io::ErrorKind::WriteZero, "wrote nothing")),
                n => buf = &buf[n..],
            }
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.lock()?.set_len(self.ino, len)
    }

    fn len(&self) -> io::Result<u64> {
        let mut s = self.lock()?;
        Ok(s.file_mut(self.ino)?.current.len() as u64)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.lock()?.sync(self.ino)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.lock()?.sync(self.ino)
    }

    fn try_clone(&self) -> io::Result<Box<dyn FsFile>> {
        drop(self.lock()?);
        Ok(Box::new(SimFile {
            state: Arc::clone(&self.state),
            name: self.name.clone(),
            ino: self.ino,
            generation: self.generation,
            append: self.append,
        }))
    }
}
