//! The command line of each child: ZooKeeper, brokers (with their Kafka
//! ports) and workers, from the cluster's config.

use std::path::Path;

use yak_protocol::paths;

use crate::config::Config;
use crate::spawn::ChildSpec;

pub(crate) fn dir_args(config: &Config, args: &mut Vec<String>) {
    args.push("--run-dir".into());
    args.push(config.run_dir.display().to_string());
    args.push("--data-dir".into());
    args.push(config.data_dir.display().to_string());
}

/// Broker `id`'s child spec.
pub(crate) fn broker_spec(config: &Config, node_bin: &Path, id: u32) -> ChildSpec {
    let mut args = vec!["broker".to_string(), "--id".into(), id.to_string()];
    dir_args(config, &mut args);
    args.extend(config.broker_args.iter().cloned());
    if let Some(port) = config.kafka_port(id) {
        args.extend(["--kafka-port".to_string(), port.to_string()]);
    }
    ChildSpec {
        name: paths::broker_name(id),
        program: node_bin.to_path_buf(),
        args,
    }
}

/// The children of a cluster, ZooKeeper first, then brokers `broker_ids`.
pub(crate) fn child_specs(config: &Config, node_bin: &Path, broker_ids: &[u32]) -> Vec<ChildSpec> {
    let mut zk_args = vec!["zookeeper".to_string()];
    dir_args(config, &mut zk_args);
    zk_args.extend(config.zookeeper_args.iter().cloned());
    let mut specs = vec![ChildSpec {
        name: "zookeeper".into(),
        program: node_bin.to_path_buf(),
        args: zk_args,
    }];
    for id in broker_ids {
        specs.push(broker_spec(config, node_bin, *id));
    }
    let w = &config.workers;
    let cluster = config.run_dir.display().to_string();
    let (rate, message_bytes) = (w.rate.to_string(), w.message_bytes.to_string());
    for i in 1..=config.producers {
        let name = format!("producer-{i}");
        let args = [
            "worker",
            "produce",
            "--cluster",
            &cluster,
            "--name",
            &name,
            "--topic",
            &w.topic,
            "--rate",
            &rate,
            "--message-bytes",
            &message_bytes,
        ];
        specs.push(ChildSpec {
            name: name.clone(),
            program: node_bin.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
        });
    }
    for i in 1..=config.consumers {
        let name = format!("consumer-{i}");
        let args = [
            "worker",
            "consume",
            "--cluster",
            &cluster,
            "--name",
            &name,
            "--topic",
            &w.topic,
            "--group",
            &w.group,
        ];
        specs.push(ChildSpec {
            name: name.clone(),
            program: node_bin.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
        });
    }
    specs
}
