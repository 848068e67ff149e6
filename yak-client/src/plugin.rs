//! The host side of partitioner plugins: loads a `.so` with libloading,
//! checks its one symbol and its ABI version, and calls it through the C ABI
//! of `yak-partitioner-api`.
//!
//! Owns: the loaded library (kept alive as long as any instance of the
//! strategy) and one strategy instance per topic.
//! Never: trusts a plugin's answer. Every failure to load is a one-line
//! [`PluginError`] naming the file; a panic or a bad status while
//! partitioning comes back as an error (the producer falls back to the
//! built-in strategy for that message and counts it); the caller checks the
//! partition is in range.

use super::partitioner::Partitioner;
pub use super::plugin_error::PluginError;
use libloading::Library;
use std::collections::HashMap;
use std::ffi::c_void;
use std::path::{Path, PathBuf};
use yak_partitioner_api::{
    FreeFn, Message, NewFn, PartitionFn, PartitionerTable, TableFn, ABI_VERSION, NAME_BYTES_MAX,
    STATUS_OK, STATUS_PANIC, TABLE_SYMBOL,
};

/// Environment variable naming the partitioner plugin when `--partitioner` is absent.
pub const PARTITIONER_ENV: &str = "YAK_PARTITIONER";
/// File in a cluster's run dir holding client defaults (`partitioner = "path.so"`).
pub use yak_protocol::paths::CLIENT_CONFIG_FILE;

/// The functions of a checked table, copied out of the library.
#[derive(Clone, Copy)]
struct Calls {
    new: NewFn,
    partition: PartitionFn,
    free: FreeFn,
}

/// A strategy from a plugin, with one instance per topic. Field order
/// matters: instances are freed in `Drop` before `_library` is unloaded.
pub struct PluginPartitioner {
    path: PathBuf,
    name: String,
    calls: Calls,
    batch_bytes: u64,
    seed: u64,
    instances: HashMap<String, *mut c_void>,
    _library: Library,
}

// SAFETY: the ABI contract (yak-partitioner-api crate doc) says a state is
// used by one thread at a time but may move between threads; `&mut self`
// guarantees one caller at a time, and the library handle is thread-safe.
unsafe impl Send for PluginPartitioner {}

impl std::fmt::Debug for PluginPartitioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginPartitioner")
            .field("path", &self.path)
            .field("name", &self.name)
            .finish()
    }
}

impl PluginPartitioner {
    /// Loads and checks the plugin at `path`; `batch_bytes` is passed to each instance.
    pub fn load(path: &Path, batch_bytes: usize) -> Result<PluginPartitioner, PluginError> {
        let path = path.to_path_buf();
        if !path.is_file() {
            return Err(PluginError::Missing { path });
        }
        // dlopen needs a slash to not search the library path.
        let open_path = if path.is_absolute() {
            path.clone()
        } else {
            Path::new(".").join(&path)
        };
        // SAFETY: loading runs the library's initialisers. Loading arbitrary
        // code is the point of a plugin; the user named this file.
        let library =
            unsafe { Library::new(&open_path) }.map_err(|e| PluginError::NotLoadable {
                path: path.clone(),
                reason: one_line(&e.to_string()),
            })?;
        // SAFETY: the symbol's type is fixed by the ABI; a library without
        // it is refused here, before anything is called.
        let table_fn: TableFn = match unsafe { library.get::<TableFn>(TABLE_SYMBOL.as_bytes()) } {
            Ok(symbol) => *symbol,
            Err(_) => {
                return Err(PluginError::MissingSymbol {
                    path,
                    symbol: TABLE_SYMBOL,
                })
            }
        };
        // SAFETY: a plugin exporting the symbol promises it is a `TableFn`.
        let table: *const PartitionerTable = unsafe { table_fn() };
        if table.is_null() {
            return Err(PluginError::BadTable {
                path,
                reason: "the table pointer is null",
            });
        }
        // SAFETY: `abi_version` is the first field of every version of the
        // table; only it is read until the version is known to match.
        let found = unsafe { std::ptr::addr_of!((*table).abi_version).read() };
        if found != ABI_VERSION {
            return Err(PluginError::AbiVersion {
                path,
                found,
                expected: ABI_VERSION,
            });
        }
        // SAFETY: same version, so the layout is this crate's `PartitionerTable`,
        // a static in the library, which stays loaded while `library` lives.
        let table = unsafe { &*table };
        let name = read_name(table).map_err(|reason| PluginError::BadTable {
            path: path.clone(),
            reason,
        })?;
        let calls = Calls {
            new: table.new,
            partition: table.partition,
            free: table.free,
        };
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        Ok(PluginPartitioner {
            path,
            name,
            calls,
            batch_bytes: batch_bytes as u64,
            seed,
            instances: HashMap::new(),
            _library: library,
        })
    }

    /// The file this strategy came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn call_error(&self, call: &'static str, status: i32) -> PluginError {
        let what = if status == STATUS_PANIC {
            "panicked".to_string()
        } else {
            format!("returned status {status}")
        };
        PluginError::Call {
            path: self.path.clone(),
            name: self.name.clone(),
            call,
            what,
        }
    }

    fn instance(&mut self, topic: &str) -> Result<*mut c_void, PluginError> {
        if let Some(state) = self.instances.get(topic) {
            return Ok(*state);
        }
        let mut state: *mut c_void = std::ptr::null_mut();
        self.seed = self
            .seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        // SAFETY: `new` comes from a checked table of a loaded library and
        // `state` is a live local it may write once.
        let status = unsafe { (self.calls.new)(self.batch_bytes, self.seed, &mut state) };
        if status != STATUS_OK || state.is_null() {
            return Err(self.call_error("new", status));
        }
        self.instances.insert(topic.to_string(), state);
        Ok(state)
    }
}

fn read_name(table: &PartitionerTable) -> Result<String, &'static str> {
    if table.name_ptr.is_null() || table.name_len == 0 || table.name_len > NAME_BYTES_MAX {
        return Err("the name must be 1 to 64 bytes");
    }
    // SAFETY: non-null and at most 64 bytes, pointing into the library's
    // static data, as the ABI requires.
    let bytes = unsafe { std::slice::from_raw_parts(table.name_ptr, table.name_len) };
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|_| "the name is not UTF-8")
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl Partitioner for PluginPartitioner {
    fn name(&self) -> &str {
        &self.name
    }

    fn partition(&mut self, topic: &str, msg: &Message<'_>) -> Result<u32, PluginError> {
        let state = self.instance(topic)?;
        let (key_ptr, key_len) = msg
            .key
            .map_or((std::ptr::null(), 0), |k| (k.as_ptr(), k.len()));
        let mut out = u32::MAX;
        // SAFETY: `state` came from this library's `new` and is used by this
        // thread only (`&mut self`); the key and in-flight pointers are valid
        // for their lengths during the call; `out` is a live local.
        let status = unsafe {
            (self.calls.partition)(
                state,
                key_ptr,
                key_len,
                u8::from(msg.key.is_some()),
                msg.value_len,
                msg.in_flight.as_ptr(),
                msg.partitions(),
                &mut out,
            )
        };
        if status != STATUS_OK {
            return Err(self.call_error("partition", status));
        }
        Ok(out)
    }
}

impl Drop for PluginPartitioner {
    fn drop(&mut self) {
        for (_, state) in self.instances.drain() {
            // SAFETY: each state came from this library's `new`, is freed
            // once, and the library is unloaded only after this loop.
            unsafe { (self.calls.free)(state) };
        }
    }
}

/// Where the partitioner plugin to use was named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginSource {
    /// `--partitioner`.
    Flag,
    /// `$YAK_PARTITIONER`.
    Env,
    /// `partitioner = "..."` in the cluster's `client.toml`.
    ClusterConfig(PathBuf),
}

/// Picks the plugin: the flag, else `$YAK_PARTITIONER` (`env`, empty means
/// unset), else `partitioner` in `<cluster_dir>/client.toml` (written by the
/// supervisor from cluster.toml), else none (the built-in default).
pub fn resolve_plugin_path(
    flag: Option<&Path>,
    env: Option<&str>,
    cluster_dir: &Path,
) -> Result<Option<(PathBuf, PluginSource)>, PluginError> {
    if let Some(p) = flag {
        return Ok(Some((p.to_path_buf(), PluginSource::Flag)));
    }
    if let Some(e) = env.filter(|e| !e.is_empty()) {
        return Ok(Some((PathBuf::from(e), PluginSource::Env)));
    }
    let file = yak_protocol::paths::client_config(cluster_dir);
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(PluginError::ClientConfig {
                path: file,
                reason: e.to_string(),
            })
        }
    };
    let bad = |reason: String| PluginError::ClientConfig {
        path: file.clone(),
        reason,
    };
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| bad(one_line(e.message())))?;
    match table.get("partitioner") {
        None => Ok(None),
        Some(toml::Value::String(p)) if p.is_empty() => Ok(None),
        Some(toml::Value::String(p)) => {
            let p = PathBuf::from(p);
            let p = if p.is_absolute() {
                p
            } else {
                cluster_dir.join(p)
            };
            Ok(Some((p, PluginSource::ClusterConfig(file))))
        }
        Some(_) => Err(bad("partitioner must be a string (a path to a .so)".into())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn given_missing_or_text_file_when_loading_should_name_file_and_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.so");
        let err = PluginPartitioner::load(&missing, 1).unwrap_err();
        assert_eq!(
            err,
            PluginError::Missing {
                path: missing.clone()
            }
        );
        assert!(
            err.to_string().contains("nope.so") && err.to_string().contains("no such file"),
            "{err}"
        );

        let text = dir.path().join("notes.so");
        std::fs::write(&text, "just some text\n").unwrap();
        let err = PluginPartitioner::load(&text, 1).unwrap_err();
        assert!(matches!(err, PluginError::NotLoadable { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("notes.so") && msg.contains("not a loadable shared library"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn given_flag_env_and_client_toml_when_resolving_should_prefer_in_that_order() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve_plugin_path(None, None, dir.path()).unwrap(), None);
        std::fs::write(
            dir.path().join(CLIENT_CONFIG_FILE),
            "partitioner = \"/p/c.so\"\n",
        )
        .unwrap();
        let (p, src) = resolve_plugin_path(None, Some(""), dir.path())
            .unwrap()
            .unwrap();
        assert_eq!(
            (p, src),
            (
                PathBuf::from("/p/c.so"),
                PluginSource::ClusterConfig(dir.path().join("client.toml"))
            )
        );
        let (p, src) = resolve_plugin_path(None, Some("/p/e.so"), dir.path())
            .unwrap()
            .unwrap();
        assert_eq!((p, src), (PathBuf::from("/p/e.so"), PluginSource::Env));
        let (p, src) = resolve_plugin_path(Some(Path::new("f.so")), Some("/p/e.so"), dir.path())
            .unwrap()
            .unwrap();
        assert_eq!((p, src), (PathBuf::from("f.so"), PluginSource::Flag));
        std::fs::write(dir.path().join(CLIENT_CONFIG_FILE), "partitioner = 3\n").unwrap();
        let err = resolve_plugin_path(None, None, dir.path())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("client.toml") && err.contains("must be a string"),
            "{err}"
        );
    }
}
