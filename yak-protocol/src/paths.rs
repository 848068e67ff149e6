//! Where YaK's processes meet on disk: every file and directory name two
//! processes must agree on, spelled once. The run dir (`--cluster DIR` to
//! clients) holds the sockets, `client.toml` and the supervisor's marker
//! lock; the data dir holds one directory per server process, each with
//! its lock file. What lies inside a broker's or ZooKeeper's own directory
//! (segments, the metadata log) is the business of the code that writes
//! it. Names and path joins only: this module never touches the disk.
//!
//! ```text
//! <run>/zookeeper.sock  broker-<id>.sock  supervisor.sock
//! <run>/client.toml     supervisor.lock
//! <data>/yak.lock
//! <data>/zookeeper/zookeeper.lock
//! <data>/broker-<id>/broker.lock  cluster_id  <topic>-<partition>/…
//! ```

use std::path::{Path, PathBuf};

/// ZooKeeper's socket, in the run dir.
pub const ZOOKEEPER_SOCKET_FILE: &str = "zookeeper.sock";
/// The supervisor's control socket, in the run dir.
pub const SUPERVISOR_SOCKET_FILE: &str = "supervisor.sock";
/// The extension every socket in the run dir has (a supervisor removes
/// stale ones at start).
pub const SOCKET_EXTENSION: &str = "sock";
/// Client settings the supervisor writes into the run dir (the default
/// partitioner plugin).
pub const CLIENT_CONFIG_FILE: &str = "client.toml";
/// Present in the run dir while a supervisor runs there: clients read it
/// as "a missing socket is a restart, not an absent cluster".
pub const SUPERVISOR_RUN_LOCK_FILE: &str = "supervisor.lock";

/// The supervisor's lock file, directly in the data dir.
pub const SUPERVISOR_LOCK_FILE: &str = "yak.lock";
/// ZooKeeper's directory in the data dir.
pub const ZOOKEEPER_DIR: &str = "zookeeper";
/// ZooKeeper's lock file, in `<data>/zookeeper/`.
pub const ZOOKEEPER_LOCK_FILE: &str = "zookeeper.lock";
/// A broker's lock file, in `<data>/broker-<id>/`.
pub const BROKER_LOCK_FILE: &str = "broker.lock";
/// The cluster id a broker's dir belongs to, in `<data>/broker-<id>/`.
pub const CLUSTER_ID_FILE: &str = "cluster_id";
/// How a broker is named: its data dir, its socket stem and its child
/// name in the supervisor's logs are `broker-<id>`.
const BROKER_PREFIX: &str = "broker-";

/// `broker-<id>`: a broker's data dir name and the supervisor's name for it.
pub fn broker_name(id: u32) -> String {
    format!("{BROKER_PREFIX}{id}")
}

/// The broker id in a name made by [`broker_name`], if it is one.
pub fn broker_id_of(name: &str) -> Option<u32> {
    name.strip_prefix(BROKER_PREFIX)?.parse().ok()
}

/// `<run>/zookeeper.sock`.
pub fn zookeeper_socket(run_dir: &Path) -> PathBuf {
    run_dir.join(ZOOKEEPER_SOCKET_FILE)
}

/// `<run>/broker-<id>.sock`.
pub fn broker_socket(run_dir: &Path, id: u32) -> PathBuf {
    run_dir.join(format!("{}.{SOCKET_EXTENSION}", broker_name(id)))
}

/// `<run>/supervisor.sock`.
pub fn supervisor_socket(run_dir: &Path) -> PathBuf {
    run_dir.join(SUPERVISOR_SOCKET_FILE)
}

/// `<run>/client.toml`.
pub fn client_config(run_dir: &Path) -> PathBuf {
    run_dir.join(CLIENT_CONFIG_FILE)
}

/// `<run>/supervisor.lock`.
pub fn supervisor_run_lock(run_dir: &Path) -> PathBuf {
    run_dir.join(SUPERVISOR_RUN_LOCK_FILE)
}

/// Whether `path` is a socket file by its name (`*.sock`).
pub fn is_socket_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == SOCKET_EXTENSION)
}

/// `<data>/zookeeper`.
pub fn zookeeper_data_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(ZOOKEEPER_DIR)
}

/// `<data>/broker-<id>`.
pub fn broker_data_dir(data_dir: &Path, id: u32) -> PathBuf {
    data_dir.join(broker_name(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_run_dir_when_naming_sockets_should_match_the_documented_layout() {
        let run = Path::new("/r");
        assert_eq!(zookeeper_socket(run), Path::new("/r/zookeeper.sock"));
        assert_eq!(broker_socket(run, 7), Path::new("/r/broker-7.sock"));
        assert_eq!(supervisor_socket(run), Path::new("/r/supervisor.sock"));
        assert_eq!(client_config(run), Path::new("/r/client.toml"));
        assert_eq!(supervisor_run_lock(run), Path::new("/r/supervisor.lock"));
        assert!(is_socket_file(&broker_socket(run, 1)));
        assert!(is_socket_file(&zookeeper_socket(run)));
        assert!(!is_socket_file(&client_config(run)));
    }

    #[test]
    fn given_a_data_dir_when_naming_process_dirs_should_match_the_documented_layout() {
        let data = Path::new("/d");
        assert_eq!(zookeeper_data_dir(data), Path::new("/d/zookeeper"));
        assert_eq!(broker_data_dir(data, 3), Path::new("/d/broker-3"));
    }

    #[test]
    fn given_names_when_parsing_broker_ids_should_accept_only_broker_names() {
        assert_eq!(broker_id_of(&broker_name(12)), Some(12));
        assert_eq!(broker_id_of("zookeeper"), None);
        assert_eq!(broker_id_of("broker-"), None);
        assert_eq!(broker_id_of("broker-x"), None);
    }
}
