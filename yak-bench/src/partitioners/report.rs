//! The JSON report of `bench partitioners`. Field names are a contract
//! (ARCHITECTURE.md, CLI contract): per result `scenario`, `plugin`,
//! `rounds` (per-round objects), `msgs_per_sec` (median),
//! `msgs_per_sec_min`, `msgs_per_sec_max`, `ack_p99_ms`,
//! `mean_batch_records`, `requests`, `skew`, `keys_stable`,
//! `cpu_ms_per_million`; more may be added, none renamed. Never runs or prints.

use super::rounds::Evaluation;
use super::runner::RoundFigures;
use super::scenarios::{Keys, Workload};
use super::stats::{Figure, Summary};
use super::Settings;
use serde_json::{json, Map, Value};

fn round_json(r: &RoundFigures) -> Value {
    json!({
        "round": r.round,
        "topic": r.topic,
        "acked": r.acked,
        "failed": r.failed,
        "consumed": r.consumed,
        "elapsed_s": r.elapsed_s,
        "msgs_per_sec": r.msgs_per_sec,
        "ack_p50_ms": r.ack_p50_ms,
        "ack_p99_ms": r.ack_p99_ms,
        "batches": r.batches,
        "requests": r.requests,
        "mean_batch_records": r.mean_batch_records,
        "partition_messages": r.partition_messages,
        "skew": r.skew,
        "keys_stable": r.keys_stable,
        "cpu_ms_per_million": r.cpu_ms_per_million,
        "slowed_broker_share": r.slowed_broker_share,
        "broker_pauses": r.broker_pauses,
        "partitioner_fallbacks": r.partitioner_fallbacks,
    })
}

/// One (scenario, plugin): each figure's median under its own name, with
/// `_min` and `_max` beside it, and every round.
pub fn summary_json(s: &Summary) -> Value {
    let mut m = Map::new();
    m.insert("scenario".into(), json!(s.scenario.name()));
    m.insert("plugin".into(), json!(s.plugin));
    m.insert("path".into(), json!(s.path.display().to_string()));
    for f in Figure::ALL {
        let spread = s.spread(f);
        let value = |x: Option<f64>| match (f, x) {
            (Figure::Requests, Some(x)) => json!(x.round() as u64),
            (_, x) => json!(x),
        };
        m.insert(f.key().into(), value(spread.map(|sp| sp.median)));
        m.insert(format!("{}_min", f.key()), value(spread.map(|sp| sp.min)));
        m.insert(format!("{}_max", f.key()), value(spread.map(|sp| sp.max)));
    }
    m.insert("keys_stable".into(), json!(s.keys_stable()));
    m.insert("partition_messages".into(), json!(s.partition_messages()));
    m.insert("failed".into(), json!(s.failed()));
    m.insert(
        "partitioner_fallbacks".into(),
        json!(s.partitioner_fallbacks()),
    );
    m.insert(
        "rounds".into(),
        Value::Array(s.rounds.iter().map(round_json).collect()),
    );
    compat_fields(s, &mut m);
    Value::Object(m)
}

/// Fields of the single-workload report before scenarios and rounds came,
/// kept so scripts that read them go on working (`--json` is stable): the
/// last round's topic, totals over the rounds, and medians.
fn compat_fields(s: &Summary, m: &mut Map<String, Value>) {
    let median = |f: &dyn Fn(&RoundFigures) -> f64| {
        let mut v: Vec<f64> = s.rounds.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    m.insert(
        "topic".into(),
        json!(s.rounds.last().map(|r| r.topic.clone())),
    );
    m.insert(
        "acked".into(),
        json!(s.rounds.iter().map(|r| r.acked).sum::<u64>()),
    );
    m.insert(
        "consumed".into(),
        json!(s.rounds.iter().filter_map(|r| r.consumed).sum::<u64>()),
    );
    m.insert("elapsed_s".into(), json!(median(&|r| r.elapsed_s)));
    m.insert(
        "batches".into(),
        json!(median(&|r| r.batches as f64).map(|b| b as u64)),
    );
    m.insert(
        "ack_latency_ms".into(),
        json!({ "p50": median(&|r| r.ack_p50_ms), "p99": median(&|r| r.ack_p99_ms) }),
    );
}

fn keys_json(keys: Keys) -> Value {
    match keys {
        Keys::None => json!({"kind": "none"}),
        Keys::Cyclic(n) => json!({"kind": "uniform", "keys": n}),
        Keys::Zipf(n) => {
            json!({"kind": "zipf", "keys": n, "exponent": super::scenarios::ZIPF_EXPONENT})
        }
    }
}

fn scenario_json(w: &Workload, e: &Evaluation) -> Value {
    let verdicts: Vec<Value> = e
        .verdicts(w.scenario)
        .iter()
        .map(|v| {
            json!({
                "figure": v.figure.key(),
                "best": v.best,
                "runner_up": v.runner_up,
                "within_noise": v.within_noise,
            })
        })
        .collect();
    json!({
        "name": w.scenario.name(),
        "description": w.scenario.description(),
        "messages": w.messages,
        "partitions": w.partitions,
        "replication_factor": w.replication_factor,
        "keys": keys_json(w.keys),
        "rate_per_sec": w.rate_per_sec,
        "slow_broker": w.slow_broker,
        "verdicts": verdicts,
    })
}

/// The whole report.
pub fn report_json(e: &Evaluation, settings: &Settings) -> Value {
    let p = &settings.producer;
    let acks = if p.acks == -1 {
        "all".to_string()
    } else {
        p.acks.to_string()
    };
    // `workload` is the first scenario's, as the single-workload report had it.
    let workload = e.workloads.first().map(|w| {
        json!({
            "messages": w.messages,
            "message_bytes": settings.message_bytes,
            "keys": match w.keys {
                Keys::None => 0,
                Keys::Cyclic(n) | Keys::Zipf(n) => n,
            },
            "partitions": w.partitions,
            "acks": acks,
            "linger_ms": p.linger.as_millis() as u64,
            "batch_bytes": p.batch_bytes,
        })
    });
    json!({
        "workload": workload,
        "settings": {
            "rounds": e.rounds,
            "message_bytes": settings.message_bytes,
            "acks": acks,
            "linger_ms": p.linger.as_millis() as u64,
            "batch_bytes": p.batch_bytes,
        },
        "scenarios": e.workloads.iter().map(|w| scenario_json(w, e)).collect::<Vec<_>>(),
        "results": e.summaries.iter().map(summary_json).collect::<Vec<_>>(),
    })
}
