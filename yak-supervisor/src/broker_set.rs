//! The run's broker set, durable in the data dir (`<data>/brokers`, one id
//! per line), so brokers added or removed at run time (`cluster
//! add-broker`, `cluster remove-broker`) stay so across a supervisor
//! restart. Written the durable way (temp file, fsync, rename, fsync the
//! dir).
//!
//! Owns: the file's format and which id a new broker gets.
//! Never: starts or stops a broker.

use std::path::{Path, PathBuf};

/// The file, in the data dir.
pub const BROKERS_FILE: &str = "brokers";

/// Why the set cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum BrokerSetError {
    /// The file exists but cannot be read.
    #[error("cannot read the broker set {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A line is not a broker id (1..=1,000,000), or the set is empty.
    #[error("broker set {path}: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The file cannot be written.
    #[error(transparent)]
    Write(#[from] yak_storage::datadir::DataDirError),
}

/// The ids in `text`, sorted; refuses anything else.
fn parse(text: &str, path: &Path) -> Result<Vec<u32>, BrokerSetError> {
    let bad = |reason: String| BrokerSetError::Parse {
        path: path.to_path_buf(),
        reason,
    };
    let mut ids = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let id: u32 = line
            .parse()
            .ok()
            .filter(|id| (1..=yak_protocol::limits::BROKER_ID_MAX).contains(id))
            .ok_or_else(|| bad(format!("'{line}' is not a broker id")))?;
        ids.push(id);
    }
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(bad("no broker id".into()));
    }
    Ok(ids)
}

/// The stored set, or `None` when there is none yet (a new data dir).
pub fn load(data_dir: &Path) -> Result<Option<Vec<u32>>, BrokerSetError> {
    let path = data_dir.join(BROKERS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => parse(&text, &path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(BrokerSetError::Read { path, source }),
    }
}

/// Stores `ids` durably.
pub fn store(data_dir: &Path, ids: &[u32]) -> Result<(), BrokerSetError> {
    let text: String = ids.iter().map(|id| format!("{id}\n")).collect();
    yak_storage::datadir::write_atomic(&data_dir.join(BROKERS_FILE), text.as_bytes())?;
    Ok(())
}

/// The id a new broker gets: one above every id in `ids` and every
/// `broker-<id>` dir in the data dir, so a removed broker's old files are
/// never taken over by a newcomer.
pub fn next_id(data_dir: &Path, ids: &[u32]) -> u32 {
    let on_disk = std::fs::read_dir(data_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("broker-"))
                .and_then(|id| id.parse::<u32>().ok())
        });
    ids.iter().copied().chain(on_disk).max().unwrap_or(0) + 1
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn given_stored_set_when_loading_should_read_it_back_and_pick_a_fresh_id() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()).unwrap(), None);
        store(dir.path(), &[1, 2, 4]).unwrap();
        assert_eq!(load(dir.path()).unwrap(), Some(vec![1, 2, 4]));
        assert_eq!(next_id(dir.path(), &[1, 2, 4]), 5);
        std::fs::create_dir(dir.path().join("broker-7")).unwrap();
        assert_eq!(
            next_id(dir.path(), &[1, 2, 4]),
            8,
            "a removed broker's dir is not reused"
        );
    }

    #[test]
    fn given_bad_file_when_loading_should_refuse_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        for text in ["1\nx\n", "", "0\n", "2000000\n"] {
            std::fs::write(dir.path().join(BROKERS_FILE), text).unwrap();
            let e = load(dir.path()).unwrap_err().to_string();
            assert!(e.contains(BROKERS_FILE), "{e}");
        }
    }
}
