//! What can stop the supervisor, each with the path or address at fault.

use std::path::PathBuf;

use nix::errno::Errno;

use crate::spawn::SpawnError;

/// What can stop the supervisor.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("cannot create directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write client config {path}: {source}")]
    ClientConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open lock file {path}: {source}")]
    OpenLock {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: Errno },
    #[error("another yak-supervisor is running in {dir}")]
    AlreadyRunning { dir: PathBuf },
    /// The data dir is locked by another process (another cluster, with
    /// another run dir): the message names the holder's pid.
    #[error("cannot use data dir: {0}")]
    DataDir(#[from] yak_storage::datadir::DataDirError),
    #[error("cannot clean stale sockets in {dir}: {source}")]
    CleanSockets {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot install signal handlers: {source}")]
    Signals { source: std::io::Error },
    #[error("zookeeper did not accept connections on {path} within {waited_ms} ms")]
    ZookeeperTimeout { path: PathBuf, waited_ms: u128 },
    #[error("zookeeper was given up before its socket {path} was ready")]
    ZookeeperGaveUp { path: PathBuf },
    /// ZooKeeper crashed more often than the restart budget allows: the
    /// cluster cannot work without it, so everything is stopped.
    #[error(
        "zookeeper crashed more than {restarts} times within {window_s} s (last: {last}); \
         stopped the whole cluster, since nothing works without it; see its lines above"
    )]
    ZookeeperCrashLoop {
        restarts: usize,
        window_s: u64,
        last: String,
    },
    #[error("cannot serve the control socket {path}: {source}")]
    Control {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    BrokerSet(#[from] crate::broker_set::BrokerSetError),
    #[error("cannot serve metrics on {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}
