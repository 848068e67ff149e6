//! Cluster configuration: reads the TOML file, merges command-line flags over
//! it, validates the result and turns the `[zookeeper]` / `[broker]` sections
//! into `yak-node` flags. Also finds the `yak-node` binary.
//!
//! Owns: every setting the supervisor runs with, already checked.
//! Never: creates directories, spawns or prints anything.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Smallest and largest broker count a cluster may have.
pub const BROKERS_MIN: u32 = 1;
/// See [`BROKERS_MIN`].
pub const BROKERS_MAX: u32 = 64;
/// Broker count when neither the file nor a flag gives one.
pub const BROKERS_DEFAULT: u32 = 3;
/// Most producer (and, separately, consumer) workers a cluster may have.
pub const WORKERS_MAX: u32 = 64;
/// Largest message a producer worker may generate.
pub use yak_protocol::limits::WORKER_MESSAGE_BYTES_MAX;
/// Most messages per second one producer worker may send (shared with
/// `yak-node worker`, which checks its flags against the same limits).
pub use yak_protocol::limits::WORKER_RATE_MSGS_PER_SEC_MAX as WORKER_RATE_MAX;
/// Environment variable naming the `yak-node` binary.
pub const NODE_BIN_ENV: &str = "YAK_NODE_BIN";

/// What can be wrong with the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("config {path}: [{section}] {key}: {reason}")]
    Value {
        path: PathBuf,
        section: &'static str,
        key: String,
        reason: &'static str,
    },
    #[error("brokers must be {BROKERS_MIN}..={BROKERS_MAX}, got {brokers}")]
    Brokers { brokers: i64 },
    #[error("{what} must be 0..={WORKERS_MAX}, got {count}")]
    Workers { what: &'static str, count: i64 },
    #[error("config {path}: [workers] {key}: {reason}")]
    WorkerValue {
        path: PathBuf,
        key: &'static str,
        reason: String,
    },
    #[error("cannot resolve {what} {path}: {source}")]
    Path {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "yak-node binary not found at {path} ({origin}); pass --node-bin or set {NODE_BIN_ENV}"
    )]
    NodeBinMissing { path: PathBuf, origin: &'static str },
    #[error("cannot locate the supervisor's own executable to find yak-node: {source}")]
    CurrentExe { source: std::io::Error },
    #[error("metrics_addr must be IP:PORT (e.g. 127.0.0.1:9464), got '{addr}'")]
    MetricsAddr { addr: String },
    #[error("[kafka] port_base {base} with {brokers} brokers runs past port 65535")]
    KafkaPorts { base: u16, brokers: u32 },
}

/// The file as written; every field optional so flags can fill the gaps.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    run_dir: Option<PathBuf>,
    data_dir: Option<PathBuf>,
    brokers: Option<i64>,
    partitioner: Option<PathBuf>,
    producers: Option<i64>,
    consumers: Option<i64>,
    metrics_addr: Option<String>,
    #[serde(default)]
    zookeeper: BTreeMap<String, toml::Value>,
    #[serde(default)]
    broker: BTreeMap<String, toml::Value>,
    #[serde(default)]
    workers: WorkersFile,
    #[serde(default)]
    kafka: KafkaFile,
}

/// The `[kafka]` table: where brokers serve the Kafka protocol.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct KafkaFile {
    /// Broker i listens on 127.0.0.1:port_base + i - 1; 0 or absent: off.
    port_base: Option<u16>,
}

/// The `[workers]` table: what producer and consumer workers do.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkersFile {
    topic: Option<String>,
    rate: Option<f64>,
    message_bytes: Option<i64>,
    group: Option<String>,
}

/// What the workers do (`[workers]`), checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Workers {
    /// Topic both kinds use.
    pub topic: String,
    /// Messages per second per producer worker.
    pub rate: f64,
    /// Size of each generated message.
    pub message_bytes: u64,
    /// Consumer group of the consumer workers.
    pub group: String,
}

impl Default for Workers {
    fn default() -> Self {
        Workers {
            topic: "workers".into(),
            rate: 5.0,
            message_bytes: 64,
            group: "workers".into(),
        }
    }
}

/// Settings given on the command line; `Some` wins over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub brokers: Option<i64>,
    pub producers: Option<i64>,
    pub consumers: Option<i64>,
    pub run_dir: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub node_bin: Option<PathBuf>,
    pub metrics_addr: Option<String>,
    /// `--kafka-port-base`: overrides `[kafka] port_base` (0 turns it off).
    pub kafka_port_base: Option<u16>,
}

/// The checked configuration the supervisor runs with. Paths are absolute.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub run_dir: PathBuf,
    pub data_dir: PathBuf,
    pub brokers: u32,
    /// Extra flags for `yak-node zookeeper`, e.g. `["--session-timeout-ms", "600"]`.
    pub zookeeper_args: Vec<String>,
    /// Extra flags for every `yak-node broker`.
    pub broker_args: Vec<String>,
    /// Cluster-wide default partitioner plugin for clients, written to
    /// `<run_dir>/client.toml` (clients are not children of the supervisor).
    pub partitioner: Option<PathBuf>,
    /// Producer workers (`yak-node worker produce`), started after the brokers.
    pub producers: u32,
    /// Consumer workers (`yak-node worker consume`), started after the brokers.
    pub consumers: u32,
    /// What the workers do.
    pub workers: Workers,
    /// Where `GET /metrics` is served; `None`: not served.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Broker i serves the Kafka protocol on 127.0.0.1:base + i - 1; `None`: off.
    pub kafka_port_base: Option<u16>,
}

impl Config {
    /// Broker `id`'s Kafka port, if the listeners are on.
    pub fn kafka_port(&self, id: u32) -> Option<u16> {
        let base = u32::from(self.kafka_port_base?);
        u16::try_from(base + id - 1).ok()
    }
}

impl Config {
    /// Reads the file named in `overrides` (if any) and merges the flags over it.
    pub fn load(overrides: &Overrides) -> Result<Config, ConfigError> {
        match &overrides.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.clone(),
                    source,
                })?;
                Config::from_toml(&text, path, overrides)
            }
            None => Config::merge(FileConfig::default(), Path::new("<defaults>"), overrides),
        }
    }

    /// Parses `text` (read from `path`, used only in messages) and merges `overrides`.
    pub fn from_toml(
        text: &str,
        path: &Path,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })?;
        Config::merge(file, path, overrides)
    }

    fn merge(file: FileConfig, path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let brokers = overrides
            .brokers
            .or(file.brokers)
            .unwrap_or(i64::from(BROKERS_DEFAULT));
        let brokers = u32::try_from(brokers)
            .ok()
            .filter(|b| (BROKERS_MIN..=BROKERS_MAX).contains(b))
            .ok_or(ConfigError::Brokers { brokers })?;
        let count = |what: &'static str, n: Option<i64>| {
            let n = n.unwrap_or(0);
            u32::try_from(n)
                .ok()
                .filter(|n| *n <= WORKERS_MAX)
                .ok_or(ConfigError::Workers { what, count: n })
        };
        let producers = count("producers", overrides.producers.or(file.producers))?;
        let consumers = count("consumers", overrides.consumers.or(file.consumers))?;
        let workers = check_workers(path, file.workers)?;
        let run_dir = overrides
            .run_dir
            .clone()
            .or(file.run_dir)
            .unwrap_or_else(|| "yak-run".into());
        let data_dir = overrides
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| "yak-data".into());
        let metrics_addr = overrides
            .metrics_addr
            .clone()
            .or(file.metrics_addr)
            .map(|addr| addr.parse().map_err(|_| ConfigError::MetricsAddr { addr }))
            .transpose()?;
        let kafka_port_base = overrides
            .kafka_port_base
            .or(file.kafka.port_base)
            .filter(|b| *b != 0);
        if let Some(base) = kafka_port_base {
            if u32::from(base) + brokers - 1 > u32::from(u16::MAX) {
                return Err(ConfigError::KafkaPorts { base, brokers });
            }
        }
        Ok(Config {
            run_dir: absolute("run dir", &run_dir)?,
            data_dir: absolute("data dir", &data_dir)?,
            brokers,
            zookeeper_args: section_to_flags(path, "zookeeper", &file.zookeeper)?,
            broker_args: section_to_flags(path, "broker", &file.broker)?,
            partitioner: file
                .partitioner
                .as_deref()
                .map(|p| absolute("partitioner plugin", p))
                .transpose()?,
            producers,
            consumers,
            workers,
            metrics_addr,
            kafka_port_base,
        })
    }
}

fn check_workers(path: &Path, w: WorkersFile) -> Result<Workers, ConfigError> {
    let bad = |key, reason: String| ConfigError::WorkerValue {
        path: path.to_path_buf(),
        key,
        reason,
    };
    let d = Workers::default();
    let name_ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 249
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    };
    let topic = w.topic.unwrap_or(d.topic);
    if !name_ok(&topic) {
        return Err(bad(
            "topic",
            format!("'{topic}' is not a valid topic name (1-249 of a-z A-Z 0-9 . _ -)"),
        ));
    }
    let group = w.group.unwrap_or(d.group);
    if !name_ok(&group) {
        return Err(bad(
            "group",
            format!("'{group}' is not a valid group name (1-249 of a-z A-Z 0-9 . _ -)"),
        ));
    }
    let rate = w.rate.unwrap_or(d.rate);
    if !(rate > 0.0 && rate <= WORKER_RATE_MAX) {
        return Err(bad(
            "rate",
            format!("must be above 0 and at most {WORKER_RATE_MAX} messages/s, got {rate}"),
        ));
    }
    let message_bytes = w.message_bytes.unwrap_or(d.message_bytes as i64);
    let message_bytes = u64::try_from(message_bytes)
        .ok()
        .filter(|b| (1..=WORKER_MESSAGE_BYTES_MAX).contains(b))
        .ok_or_else(|| {
            bad(
                "message_bytes",
                format!("must be 1..={WORKER_MESSAGE_BYTES_MAX}, got {message_bytes}"),
            )
        })?;
    Ok(Workers {
        topic,
        rate,
        message_bytes,
        group,
    })
}

fn absolute(what: &'static str, path: &Path) -> Result<PathBuf, ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(ConfigError::Path {
            what,
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty path"),
        });
    }
    std::path::absolute(path).map_err(|source| ConfigError::Path {
        what,
        path: path.to_path_buf(),
        source,
    })
}

/// `key_name = v` becomes `--key-name v`; `true` a bare `--key-name`; `false` nothing.
fn section_to_flags(
    path: &Path,
    section: &'static str,
    table: &BTreeMap<String, toml::Value>,
) -> Result<Vec<String>, ConfigError> {
    let mut args = Vec::new();
    for (key, value) in table {
        let bad = |reason| ConfigError::Value {
            path: path.to_path_buf(),
            section,
            key: key.clone(),
            reason,
        };
        let key_ok = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            && !key.starts_with('-');
        if !key_ok {
            return Err(bad("keys must be letters, digits, '_' or '-'"));
        }
        let flag = format!("--{}", key.replace('_', "-"));
        match value {
            toml::Value::String(s) => args.extend([flag, s.clone()]),
            toml::Value::Integer(i) => args.extend([flag, i.to_string()]),
            toml::Value::Float(f) => args.extend([flag, f.to_string()]),
            toml::Value::Boolean(true) => args.push(flag),
            toml::Value::Boolean(false) => {}
            _ => return Err(bad("value must be a string, integer, float or boolean")),
        }
    }
    Ok(args)
}

/// Finds `yak-node`: the flag, else `$YAK_NODE_BIN`, else next to `current_exe`.
pub fn resolve_node_bin(
    flag: Option<PathBuf>,
    env: Option<OsString>,
    current_exe: impl FnOnce() -> std::io::Result<PathBuf>,
) -> Result<PathBuf, ConfigError> {
    let (path, origin) = match (flag, env.filter(|e| !e.is_empty())) {
        (Some(path), _) => (path, "--node-bin"),
        (None, Some(env)) => (PathBuf::from(env), NODE_BIN_ENV),
        (None, None) => {
            let exe = current_exe().map_err(|source| ConfigError::CurrentExe { source })?;
            (exe.with_file_name("yak-node"), "next to yak-supervisor")
        }
    };
    let path = absolute("yak-node binary", &path)?;
    if !path.is_file() {
        return Err(ConfigError::NodeBinMissing { path, origin });
    }
    Ok(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(text: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"), overrides)
    }

    #[test]
    fn given_example_cluster_toml_when_parsing_should_give_its_settings() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cluster.toml");
        let config = Config::load(&Overrides {
            config: Some(path),
            ..Overrides::default()
        })
        .unwrap();
        assert_eq!(config.brokers, 3);
        assert!(config.run_dir.is_absolute() && config.run_dir.ends_with("yak-run"));
        assert!(config.data_dir.is_absolute() && config.data_dir.ends_with("yak-data"));
        assert!(config
            .zookeeper_args
            .windows(2)
            .any(|w| w == ["--session-timeout-ms", "600"]));
        assert!(config
            .broker_args
            .windows(2)
            .any(|w| w == ["--fsync", "always"]));
        assert_eq!(config.metrics_addr, Some("127.0.0.1:9464".parse().unwrap()));
        assert_eq!(config.kafka_port_base, Some(9092));
        assert_eq!(
            (1..=3).map(|id| config.kafka_port(id)).collect::<Vec<_>>(),
            [Some(9092), Some(9093), Some(9094)]
        );
    }

    #[test]
    fn given_kafka_port_base_in_file_and_flag_when_merging_should_let_the_flag_win_and_zero_turn_it_off(
    ) {
        let file = "[kafka]\nport_base = 9092";
        assert_eq!(
            parse("", &Overrides::default()).unwrap().kafka_port(1),
            None
        );
        assert_eq!(
            parse(file, &Overrides::default()).unwrap().kafka_port(2),
            Some(9093)
        );
        let flag = |p| Overrides {
            kafka_port_base: Some(p),
            ..Overrides::default()
        };
        assert_eq!(
            parse(file, &flag(20000)).unwrap().kafka_port(1),
            Some(20000)
        );
        assert_eq!(parse(file, &flag(0)).unwrap().kafka_port(1), None);
        let err = parse(
            "brokers = 3\n[kafka]\nport_base = 65534",
            &Overrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("runs past port 65535"), "{err}");
    }

    #[test]
    fn given_metrics_addr_in_file_and_flag_when_merging_should_check_it_and_let_the_flag_win() {
        assert_eq!(
            parse("", &Overrides::default()).unwrap().metrics_addr,
            None,
            "off by default"
        );
        let file = parse("metrics_addr = \"127.0.0.1:9000\"", &Overrides::default()).unwrap();
        assert_eq!(file.metrics_addr, Some("127.0.0.1:9000".parse().unwrap()));
        let flag = Overrides {
            metrics_addr: Some("[::1]:9100".into()),
            ..Overrides::default()
        };
        assert_eq!(
            parse("metrics_addr = \"127.0.0.1:9000\"", &flag)
                .unwrap()
                .metrics_addr,
            Some("[::1]:9100".parse().unwrap())
        );
        for bad in ["localhost:9464", "127.0.0.1", "9464", ""] {
            let flag = Overrides {
                metrics_addr: Some(bad.into()),
                ..Overrides::default()
            };
            let err = parse("", &flag).unwrap_err().to_string();
            assert!(
                err.contains("metrics_addr must be IP:PORT"),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn given_no_file_when_loading_should_use_defaults() {
        let config = Config::load(&Overrides::default()).unwrap();
        let cwd = std::env::current_dir().unwrap();
        assert_eq!(config.run_dir, cwd.join("yak-run"));
        assert_eq!(config.data_dir, cwd.join("yak-data"));
        assert_eq!(config.brokers, 3);
        assert!(config.zookeeper_args.is_empty() && config.broker_args.is_empty());
        assert_eq!((config.producers, config.consumers), (0, 0));
        assert_eq!(config.workers, Workers::default());
    }

    #[test]
    fn given_workers_in_file_and_flags_when_merging_should_count_and_check_them() {
        let text = "producers = 1\nconsumers = 4\n[workers]\ntopic = \"flow\"\nrate = 2.5\nmessage_bytes = 100\ngroup = \"g\"";
        let overrides = Overrides {
            producers: Some(2),
            ..Overrides::default()
        };
        let config = parse(text, &overrides).unwrap();
        assert_eq!((config.producers, config.consumers), (2, 4));
        let want = Workers {
            topic: "flow".into(),
            rate: 2.5,
            message_bytes: 100,
            group: "g".into(),
        };
        assert_eq!(config.workers, want);
        let cases = [
            ("producers = -1", "producers must be"),
            ("consumers = 65", "consumers must be"),
            ("[workers]\nrate = 0.0", "[workers] rate"),
            ("[workers]\nmessage_bytes = 0", "[workers] message_bytes"),
            ("[workers]\ntopic = \"a b\"", "[workers] topic"),
            ("[workers]\ncolour = 1", "unknown field"),
        ];
        for (text, expected) in cases {
            let err = parse(text, &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn given_flags_when_merging_should_override_file() {
        let overrides = Overrides {
            brokers: Some(5),
            run_dir: Some("/tmp/r".into()),
            ..Overrides::default()
        };
        let config = parse(
            "brokers = 2\nrun_dir = \"x\"\ndata_dir = \"/d\"",
            &overrides,
        )
        .unwrap();
        assert_eq!(config.brokers, 5);
        assert_eq!(config.run_dir, PathBuf::from("/tmp/r"));
        assert_eq!(config.data_dir, PathBuf::from("/d"));
    }

    #[test]
    fn given_section_values_when_merging_should_become_flags() {
        let text = r#"
            [broker]
            segment_bytes = 10
            fsync = "never"
            ratio = 0.5
            verbose = true
            quiet = false
        "#;
        let config = parse(text, &Overrides::default()).unwrap();
        // BTreeMap: keys come out sorted.
        assert_eq!(
            config.broker_args,
            [
                "--fsync",
                "never",
                "--ratio",
                "0.5",
                "--segment-bytes",
                "10",
                "--verbose"
            ]
        );
    }

    #[test]
    fn given_partitioner_key_when_parsing_should_make_it_absolute() {
        let config = parse("partitioner = \"/p/libx.so\"", &Overrides::default()).unwrap();
        assert_eq!(config.partitioner, Some(PathBuf::from("/p/libx.so")));
        let config = parse("partitioner = \"t/liby.so\"", &Overrides::default()).unwrap();
        assert_eq!(
            config.partitioner,
            Some(std::env::current_dir().unwrap().join("t/liby.so"))
        );
        assert_eq!(parse("", &Overrides::default()).unwrap().partitioner, None);
    }

    #[test]
    fn given_bad_input_when_parsing_should_fail_clearly() {
        let cases = [
            ("colour = 1", "unknown field"),
            ("brokers = 0", "brokers must be"),
            ("brokers = 65", "brokers must be"),
            ("brokers = -1", "brokers must be"),
            ("[broker]\nx = [1]", "[broker] x"),
            ("[zookeeper]\nx = { a = 1 }", "[zookeeper] x"),
            ("brokers = \"three\"", "invalid config"),
        ];
        for (text, expected) in cases {
            let err = parse(text, &Overrides::default()).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(
                err.contains("test.toml") || expected == "brokers must be",
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn given_node_bin_sources_when_resolving_should_prefer_flag_then_env_then_sibling() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        let sibling = dir.path().join("yak-node");
        for p in [&a, &b, &sibling] {
            std::fs::write(p, "").unwrap();
        }
        let exe = || Ok(dir.path().join("yak-supervisor"));
        assert_eq!(
            resolve_node_bin(Some(a.clone()), Some(b.clone().into()), exe).unwrap(),
            a
        );
        assert_eq!(
            resolve_node_bin(None, Some(b.clone().into()), exe).unwrap(),
            b
        );
        assert_eq!(resolve_node_bin(None, None, exe).unwrap(), sibling);
        let err = resolve_node_bin(Some(dir.path().join("nope")), None, exe).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
    }
}
