//! What can go wrong with a partitioner plugin: [`PluginError`], shared by
//! the [`Partitioner`](crate::partitioner::Partitioner) trait (a strategy's
//! call fails) and the loader in [`plugin`](crate::plugin) (a file cannot be
//! loaded). Owns the error type only; never loads or calls anything. Kept
//! apart so that `partitioner` and `plugin` do not import each other.

use std::path::PathBuf;
use thiserror::Error;

/// What can go wrong with a partitioner plugin. Each one names the file.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// No file at that path.
    #[error("partitioner plugin {path}: no such file")]
    Missing {
        /// The plugin path.
        path: PathBuf,
    },
    /// The dynamic loader refused the file (not an ELF shared library, wrong architecture, ...).
    #[error("partitioner plugin {path}: not a loadable shared library ({reason})")]
    NotLoadable {
        /// The plugin path.
        path: PathBuf,
        /// The loader's message.
        reason: String,
    },
    /// A shared library, but not a partitioner plugin.
    #[error("partitioner plugin {path}: not a YaK partitioner plugin (no symbol `{symbol}`)")]
    MissingSymbol {
        /// The plugin path.
        path: PathBuf,
        /// The symbol looked for.
        symbol: &'static str,
    },
    /// Built against another version of the ABI.
    #[error("partitioner plugin {path}: ABI version {found}, this yak-node speaks version {expected}; rebuild the plugin against yak-partitioner-api {expected}")]
    AbiVersion {
        /// The plugin path.
        path: PathBuf,
        /// Version in the plugin's table.
        found: u32,
        /// Version of this host.
        expected: u32,
    },
    /// The table is null or its name is not 1..=64 bytes of UTF-8.
    #[error("partitioner plugin {path}: malformed table ({reason})")]
    BadTable {
        /// The plugin path.
        path: PathBuf,
        /// What is wrong.
        reason: &'static str,
    },
    /// `new` or `partition` failed or panicked (the panic was caught in the plugin).
    #[error("partitioner plugin '{name}' ({path}): {call} {what}")]
    Call {
        /// The plugin path.
        path: PathBuf,
        /// The strategy's name.
        name: String,
        /// `new` or `partition`.
        call: &'static str,
        /// `panicked` or `returned status N`.
        what: String,
    },
    /// The client config file could not be read or parsed.
    #[error("client config {path}: {reason}")]
    ClientConfig {
        /// The config file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}
