//! YaK: a small, real Kafka. One binary `yak-node` runs the mini-ZooKeeper,
//! a broker, or a client command.
//!
//! # Crates
//! Data flows one way: cli → client → protocol → broker → storage.
//! - `yak-protocol` ([`protocol`]): frames, requests, responses, error codes,
//!   record batches, limits, the Unix-socket transport and connection.
//! - `yak-storage` ([`storage`]): segmented partition logs, producer state,
//!   the data directory.
//! - `yak-client` ([`client`]): admin, metadata cache, producer, consumer.
//! - `yak-bench` ([`bench`]): benchmarks against a live cluster.
//! - this crate: [`server`] (the accept/read/answer loop shared by ZooKeeper
//!   and brokers), [`zookeeper`], [`broker`], [`cli`].
//!
//! The other crates are re-exported here under their module names, so
//! `yak::protocol`, `yak::storage`, `yak::client`, `yak::bench`,
//! `yak::limits`, `yak::transport` and `yak::datadir` stay the paths the
//! binaries, the examples and the end-to-end tests use.
#![deny(missing_docs)]

pub mod broker;
pub mod cli;
pub mod fdlimit;

pub mod kafka;
pub mod server;
pub mod shutdown;
pub mod zookeeper;

pub use yak_bench as bench;
pub use yak_client as client;
pub use yak_protocol as protocol;
pub use yak_protocol::{limits, paths, transport};
pub use yak_storage as storage;
pub use yak_storage::datadir;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every `.rs` file under `dir`, with its text.
    fn sources(dir: &Path) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).expect("read source dir") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let text = std::fs::read_to_string(&path).expect("read source");
                    out.push((path.display().to_string(), text));
                }
            }
        }
        out
    }

    #[test]
    fn given_server_modules_when_reading_imports_should_never_reach_the_client_or_benches() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offenders = Vec::new();
        for module in ["broker", "zookeeper"] {
            for (path, text) in sources(&src.join(module)) {
                for needle in ["crate::client", "crate::bench", "yak_client", "yak_bench"] {
                    if text.contains(needle) {
                        offenders.push(format!("{path} names {needle}"));
                    }
                }
            }
        }
        assert!(
            sources(&src.join("broker")).len() > 5,
            "found the broker's sources"
        );
        assert!(offenders.is_empty(), "{offenders:#?}");
    }
}
