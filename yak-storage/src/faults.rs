//! Storage under injected faults and power cuts, through `fs::SimFs`:
//! failed appends are all-or-nothing, a failed fsync is fatal, the tail
//! found at open is made durable, and a power cut at any step of creating a
//! log, rolling, checkpointing epochs, truncating or retention (and at a
//! random moment of a random workload) loses no acknowledged record and
//! doubles none.
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use super::fs::{Fs, SimFs, WriteFault};
use super::test_util::{append, assert_time_lookups, make_batch_at, replicate, SMALL};
use super::{Log, RetentionPolicy, StorageError};
use yak_protocol::batch;

const DIR: &str = "/data/topic-0";

fn open(sim: &SimFs) -> Log {
    Log::open_with(sim.shared(), Path::new(DIR), SMALL).unwrap()
}

fn log_path(base: u64) -> PathBuf {
    Path::new(DIR).join(format!("{base:020}.log"))
}

/// What the workload did, to check a log after a power cut.
#[derive(Debug, Default)]
struct Model {
    /// Stored batches acknowledged (flushed, not truncated since), in order.
    acked: Vec<Vec<u8>>,
    /// Batches appended since the last flush.
    pending: Vec<Vec<u8>>,
    /// Every batch ever stored, by base offset.
    stored: HashMap<u64, Vec<Vec<u8>>>,
    /// Next tag for a batch's record values (unique across the workload).
    tag: u64,
}

impl Model {
    /// Appends a batch of `records` at `epoch`; on success it is pending.
    fn append(&mut self, log: &mut Log, records: u32, epoch: u32) -> Result<(), StorageError> {
        self.tag += 1;
        // Timestamps that go back and forth, for the time index.
        let ts = 1_000 + (self.tag * 7_919 % 89) as i64 * 10;
        let mut bytes = make_batch_at(records, self.tag, ts);
        let info = append(log, &mut bytes, epoch)?;
        self.stored
            .entry(info.base_offset)
            .or_default()
            .push(bytes.clone());
        self.pending.push(bytes);
        Ok(())
    }

    /// Flushes; on success everything pending is acknowledged.
    fn flush(&mut self, log: &mut Log) -> Result<(), StorageError> {
        log.flush()?;
        self.acked.append(&mut self.pending);
        Ok(())
    }

    /// Truncates; what goes is no longer promised, whatever happens next.
    fn truncate(&mut self, log: &mut Log, offset: u64) -> Result<(), StorageError> {
        let below = |b: &Vec<u8>| batch::validate(b).unwrap().last_offset() < offset;
        self.acked.retain(below);
        self.pending.retain(below);
        log.truncate_to(offset)
    }

    /// After a power cut and reopen: the log reads back as contiguous
    /// batches, each one the workload stored at that offset, no record
    /// twice, every acknowledged batch from the log start on present, the
    /// epoch cache agreeing with the batches; then it keeps working.
    fn check(&mut self, sim: &SimFs, what: &str) {
        let mut log = Log::open_with(sim.shared(), Path::new(DIR), SMALL)
            .unwrap_or_else(|e| panic!("{what}: open after power cut: {e}"));
        let start = log.log_start_offset();
        let mut offset = start;
        let mut found: HashMap<u64, Vec<u8>> = HashMap::new();
        let mut in_order = Vec::new();
        let mut tags = HashSet::new();
        while offset < log.log_end_offset() {
            let bytes = log
                .read(offset, 1)
                .unwrap_or_else(|e| panic!("{what}: read {offset}: {e}"));
            let h = batch::validate(&bytes).unwrap();
            assert_eq!(h.base_offset, offset, "{what}: offsets contiguous");
            assert!(
                self.stored.get(&offset).is_some_and(|v| v.contains(&bytes)),
                "{what}: batch at {offset} was stored there"
            );
            let tag = String::from_utf8_lossy(&bytes)
                .split("value-")
                .nth(1)
                .map(|t| t.split('-').next().unwrap_or("").to_string());
            assert!(tags.insert(tag), "{what}: a batch twice (at {offset})");
            let (epoch, end) = log.end_offset_for_epoch(h.leader_epoch).unwrap();
            assert!(
                epoch == h.leader_epoch && end >= h.next_offset(),
                "{what}: epoch cache at {offset}"
            );
            found.insert(offset, bytes.clone());
            in_order.push(bytes);
            offset = h.next_offset();
        }
        assert_time_lookups(&log, &in_order, what);
        assert_time_indexes_match_the_logs(sim, what);
        for b in &self.acked {
            let base = batch::validate(b).unwrap().base_offset;
            if base >= start {
                assert_eq!(
                    found.get(&base),
                    Some(b),
                    "{what}: acknowledged batch at {base} lost"
                );
            }
        }
        // It keeps working: an append lands at the log end and survives.
        let leo = log.log_end_offset();
        self.acked
            .retain(|b| batch::validate(b).unwrap().base_offset < leo);
        self.pending.clear();
        let epoch = log.latest_epoch().unwrap_or(0);
        self.append(&mut log, 2, epoch).unwrap();
        self.flush(&mut log).unwrap();
        drop(log);
        sim.power_cut();
        let log = open(sim);
        assert_eq!(
            log.log_end_offset(),
            leo + 2,
            "{what}: append after recovery"
        );
    }
}

/// The time index recovery left in each segment is the one its offset
/// index and log imply (an entry at each offset entry's batch, holding the
/// largest timestamp up to it): no entry was taken on trust that the log
/// does not back.
fn assert_time_indexes_match_the_logs(sim: &SimFs, what: &str) {
    let dir = Path::new(DIR);
    for name in sim.read_dir(dir).unwrap() {
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".log")) else {
            continue;
        };
        let base: u64 = stem.parse().unwrap();
        let log = sim.read(&dir.join(&name)).unwrap();
        let index = sim.read(&dir.join(format!("{stem}.index"))).unwrap();
        let indexed: HashSet<(u64, u64)> = index
            .chunks_exact(8)
            .map(|c| {
                let rel = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                let pos = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
                (u64::from(rel), u64::from(pos))
            })
            .collect();
        let (mut expected, mut max, mut position) = (Vec::new(), i64::MIN, 0u64);
        for b in batch::split(&log) {
            let Ok((h, bytes)) = b else { break };
            max = max.max(h.max_timestamp_ms);
            if indexed.contains(&(h.base_offset - base, position)) {
                expected.extend_from_slice(&max.to_be_bytes());
                expected.extend_from_slice(&((h.base_offset - base) as u32).to_be_bytes());
            }
            position += bytes.len() as u64;
        }
        let got = sim.read(&dir.join(format!("{stem}.timeindex"))).unwrap();
        assert_eq!(got, expected, "{what}: time index of segment {base}");
    }
}

/// Runs `setup` without faults, then `step` with a power cut at each of its
/// mutating operations in turn (and once after it), checking the log after
/// every cut. Each point is cut twice: losing everything not fsynced, and
/// keeping a random part of it (file by file, entry by entry).
fn at_every_crash_point(
    name: &str,
    setup: impl Fn(&SimFs, &mut Model),
    step: impl Fn(&mut Log, &mut Model),
) {
    for k in 0.. {
        let mut last = false;
        for random in [false, true] {
            last |= at_crash_point(name, &setup, &step, k, random);
        }
        if last {
            assert!(k > 3, "{name}: the step did some I/O");
            return;
        }
    }
}

/// One run of [`at_every_crash_point`]; true when the step ended before
/// the `k`-th operation.
fn at_crash_point(
    name: &str,
    setup: &impl Fn(&SimFs, &mut Model),
    step: &impl Fn(&mut Log, &mut Model),
    k: u64,
    random: bool,
) -> bool {
    {
        let sim = SimFs::new();
        let mut model = Model::default();
        setup(&sim, &mut model);
        sim.crash_at(sim.ops() + k);
        match Log::open_with(sim.shared(), Path::new(DIR), SMALL) {
            Ok(mut log) => step(&mut log, &mut model),
            Err(e) => assert!(sim.has_crashed(), "{name}: open failed: {e}"),
        }
        let crashed = sim.has_crashed();
        if random {
            sim.power_cut_random(k);
        } else {
            sim.power_cut();
        }
        model.check(
            &sim,
            &format!("{name}, power cut at step {k} (random: {random})"),
        );
        !crashed
    }
}

/// A log with `batches` flushed batches at epoch 1 (three records each).
fn flushed_log(sim: &SimFs, model: &mut Model, batches: usize) {
    let mut log = open(sim);
    for _ in 0..batches {
        model.append(&mut log, 3, 1).unwrap();
    }
    model.flush(&mut log).unwrap();
}

#[test]
fn given_short_write_then_full_disk_when_appending_should_leave_log_unchanged() {
    let sim = SimFs::new();
    let mut model = Model::default();
    flushed_log(&sim, &mut model, 2);
    let mut log = open(&sim);
    let (leo, len) = (log.log_end_offset(), sim.len(&log_path(0)).unwrap());
    sim.fail_write(0, WriteFault::Short(10));
    sim.fail_write(1, WriteFault::NoSpace);
    let err = model.append(&mut log, 2, 1).unwrap_err();
    assert!(
        matches!(err, StorageError::Io { .. }) && !err.is_fatal(),
        "{err}"
    );
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(
        sim.len(&log_path(0)).unwrap(),
        len,
        "the torn bytes are cut"
    );
    model.append(&mut log, 2, 1).unwrap();
    assert_eq!(
        batch::validate(model.pending.last().unwrap())
            .unwrap()
            .base_offset,
        leo
    );
    model.flush(&mut log).unwrap();
    drop(log);
    sim.power_cut();
    model.check(&sim, "after a full disk");
}

#[test]
fn given_disk_full_limit_when_appending_should_refuse_then_resume_once_space_is_freed() {
    let sim = SimFs::new();
    let mut model = Model::default();
    flushed_log(&sim, &mut model, 1);
    let mut log = open(&sim);
    let leo = log.log_end_offset();
    sim.set_capacity(Some(sim.len(&log_path(0)).unwrap() + 30));
    assert!(model.append(&mut log, 3, 1).is_err());
    assert!(model.append(&mut log, 3, 1).is_err());
    assert_eq!(log.log_end_offset(), leo);
    assert_eq!(
        log.read(0, u32::MAX).unwrap(),
        model.acked.concat(),
        "reads still served"
    );
    sim.set_capacity(None);
    model.append(&mut log, 3, 1).unwrap();
    model.flush(&mut log).unwrap();
    drop(log);
    sim.power_cut();
    model.check(&sim, "after space was freed");
}

#[test]
fn given_index_write_failure_when_appending_should_undo_the_batch() {
    for suffix in [".index", ".timeindex"] {
        let sim = SimFs::new();
        let mut model = Model::default();
        let mut log = open(&sim);
        for _ in 0..20 {
            // The fault waits for the next append that adds an index entry.
            sim.fail_write_to(suffix, WriteFault::NoSpace);
            loop {
                let (leo, size) = (log.log_end_offset(), log.read(0, u32::MAX).unwrap().len());
                if model.append(&mut log, 2, 1).is_err() {
                    assert_eq!(log.log_end_offset(), leo, "{suffix}: the log end stays");
                    assert_eq!(
                        log.read(0, u32::MAX).unwrap().len(),
                        size,
                        "{suffix}: the batch is cut"
                    );
                    break;
                }
            }
            model.append(&mut log, 2, 1).unwrap();
            model.flush(&mut log).unwrap();
        }
        drop(log);
        sim.power_cut();
        model.check(&sim, &format!("after {suffix} write failures"));
    }
}

#[test]
fn given_epoch_checkpoint_failure_when_appending_new_epoch_should_not_keep_the_batch() {
    let sim = SimFs::new();
    let mut model = Model::default();
    flushed_log(&sim, &mut model, 3);
    let mut log = open(&sim);
    let leo = log.log_end_offset();
    sim.fail_write_to("leader-epoch-checkpoint.tmp", WriteFault::NoSpace);
    assert!(model.append(&mut log, 2, 2).is_err());
    assert_eq!(
        (log.log_end_offset(), log.latest_epoch()),
        (leo, Some(1)),
        "the failed batch is not in the log"
    );
    model.pending.clear();
    model.append(&mut log, 2, 2).unwrap();
    assert_eq!(
        batch::validate(&model.pending[0]).unwrap().base_offset,
        leo,
        "the retry gets the same offset"
    );
    model.flush(&mut log).unwrap();
    assert_eq!(log.end_offset_for_epoch(1), Some((1, leo)));
    drop(log);
    sim.power_cut();
    model.check(&sim, "after a checkpoint failure");
}

#[test]
fn given_failed_replicated_append_when_retrying_should_start_at_the_same_offset() {
    let sim = SimFs::new();
    let mut leader = Log::open_with(sim.shared(), Path::new("/leader"), SMALL).unwrap();
    let mut model = Model::default();
    for _ in 0..12 {
        model.append(&mut leader, 3, 1).unwrap();
    }
    let all = leader.read(0, u32::MAX).unwrap();
    let mut follower = open(&sim);
    // The third write of the call fails: two batches were already written.
    sim.fail_write(2, WriteFault::NoSpace);
    assert!(replicate(&mut follower, &all).is_err());
    assert_eq!(
        follower.log_end_offset(),
        0,
        "no batch of the failed call stays"
    );
    assert_eq!(follower.latest_epoch(), None);
    let info = replicate(&mut follower, &all).unwrap().unwrap();
    assert_eq!(
        (info.base_offset, info.last_offset + 1),
        (0, leader.log_end_offset())
    );
    assert_eq!(follower.read(0, u32::MAX).unwrap(), all);
}

#[test]
fn given_failed_roll_when_appending_should_leave_the_log_as_it_was() {
    let sim = SimFs::new();
    let mut model = Model::default();
    let mut log = open(&sim);
    while sim.len(&log_path(0)).unwrap() < SMALL.segment_bytes - 200 {
        model.append(&mut log, 3, 1).unwrap();
    }
    model.flush(&mut log).unwrap();
    let leo = log.log_end_offset();
    // The batch needs a roll; the new segment's first write fails.
    sim.fail_write_to(&format!("{leo:020}.log"), WriteFault::NoSpace);
    assert!(model.append(&mut log, 8, 1).is_err());
    assert_eq!(log.log_end_offset(), leo);
    assert!(!sim.exists(&log_path(leo)), "the rolled segment is removed");
    model.append(&mut log, 8, 1).unwrap();
    model.flush(&mut log).unwrap();
    assert!(sim.exists(&log_path(leo)));
    drop(log);
    sim.power_cut();
    model.check(&sim, "after a failed roll");
}

#[test]
fn given_failed_fsync_when_flushing_again_should_stay_fatal_and_data_not_durable() {
    let sim = SimFs::new();
    let mut model = Model::default();
    flushed_log(&sim, &mut model, 2);
    let mut log = open(&sim);
    let durable_leo = log.log_end_offset();
    model.append(&mut log, 3, 1).unwrap();
    sim.fail_syncs(1);
    let err = log.flush().unwrap_err();
    assert!(
        matches!(err, StorageError::Fsync { .. }) && err.is_fatal(),
        "{err}"
    );
    // Linux would now report the next fsync as a success: never retried.
    let again = log.flush().unwrap_err();
    assert!(again.is_fatal(), "{again}");
    assert!(log.data_sync_handle().is_err());
    assert!(
        model.append(&mut log, 1, 1).unwrap_err().is_fatal(),
        "no write after a failed fsync"
    );
    drop(log);
    sim.power_cut();
    let log = open(&sim);
    assert_eq!(
        log.log_end_offset(),
        durable_leo,
        "the batch never reached the disk"
    );
}

#[test]
fn given_tail_left_by_kill_when_opening_should_make_it_durable() {
    let sim = SimFs::new();
    let mut model = Model::default();
    flushed_log(&sim, &mut model, 2);
    let mut log = open(&sim);
    for _ in 0..30 {
        model.append(&mut log, 3, 1).unwrap(); // rolls; never flushed
    }
    drop(log); // kill -9: the page cache keeps it all
    let log = open(&sim);
    let leo = log.log_end_offset();
    assert_eq!(leo, 32 * 3, "recovery finds the tail");
    drop(log);
    sim.power_cut();
    let log = open(&sim);
    assert_eq!(
        log.log_end_offset(),
        leo,
        "what the open counted is on disk"
    );
}

#[test]
fn given_power_cut_at_every_step_of_creating_a_log_should_keep_flushed_batches() {
    at_every_crash_point(
        "create",
        |_, _| {},
        |log, model| {
            let _ = model.append(log, 2, 0).and_then(|()| model.flush(log));
        },
    );
}

#[test]
fn given_power_cut_at_every_step_of_a_roll_should_keep_flushed_batches() {
    at_every_crash_point(
        "roll",
        |sim, model| flushed_log(sim, model, 8),
        |log, model| {
            for _ in 0..6 {
                if model
                    .append(log, 3, 1)
                    .and_then(|()| model.flush(log))
                    .is_err()
                {
                    return;
                }
            }
        },
    );
}

#[test]
fn given_power_cut_at_every_step_of_an_epoch_checkpoint_should_keep_flushed_batches() {
    at_every_crash_point(
        "epoch",
        |sim, model| flushed_log(sim, model, 3),
        |log, model| {
            let _ = model.append(log, 2, 5).and_then(|()| model.flush(log));
        },
    );
}

#[test]
fn given_power_cut_at_every_step_of_a_truncation_should_keep_batches_below_it() {
    at_every_crash_point(
        "truncate",
        |sim, model| {
            flushed_log(sim, model, 20);
            let mut log = open(sim);
            for _ in 0..5 {
                model.append(&mut log, 3, 2).unwrap();
            }
            model.flush(&mut log).unwrap();
        },
        |log, model| {
            let _ = model
                .truncate(log, 10)
                .and_then(|()| model.append(log, 1, 3))
                .and_then(|()| model.flush(log));
        },
    );
}

#[test]
fn given_power_cut_at_every_step_of_retention_should_keep_the_rest() {
    at_every_crash_point(
        "retention",
        |sim, model| flushed_log(sim, model, 40),
        |log, _| {
            let policy = RetentionPolicy {
                bytes: Some(2 * SMALL.segment_bytes),
                ms: None,
            };
            let leo = log.log_end_offset();
            let _ = log.apply_retention(policy, leo, 0);
        },
    );
}

/// sled-style crash-point test: random workloads of appends (some rolling
/// segments), flushes (acknowledgements), truncations and new epochs, a
/// power cut at a random operation (half of them keeping a random part of
/// what was not fsynced), reopen, check, repeat on the recovered log.
#[test]
fn given_random_workloads_when_power_cut_at_random_moments_should_never_lose_or_double_acked_records(
) {
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let sim = SimFs::new();
    let mut model = Model::default();
    let mut epoch = 0;
    for iteration in 0..100u64 {
        let crash_after = next(300);
        sim.crash_at(sim.ops() + crash_after);
        let Ok(mut log) = Log::open_with(sim.shared(), Path::new(DIR), SMALL) else {
            sim.power_cut();
            model.check(&sim, &format!("iteration {iteration}: cut during open"));
            continue;
        };
        for _ in 0..60 {
            let done = match next(20) {
                0..=10 => model.append(&mut log, 1 + next(4) as u32, epoch),
                11 | 12 => model.append(&mut log, 20 + next(20) as u32, epoch), // rolls
                13..=16 => model.flush(&mut log),
                17 => {
                    // Mostly the unreplicated tail, as a follower does.
                    let (start, leo) = (log.log_start_offset(), log.log_end_offset());
                    let to = leo.saturating_sub(next(40)).max(start);
                    model.truncate(&mut log, to)
                }
                _ => {
                    epoch += 1;
                    Ok(())
                }
            };
            if done.is_err() {
                assert!(
                    sim.has_crashed(),
                    "iteration {iteration}: only the power cut fails: {done:?}"
                );
                break;
            }
        }
        drop(log);
        if iteration % 2 == 0 {
            sim.power_cut();
        } else {
            sim.power_cut_random(iteration);
        }
        model.check(&sim, &format!("iteration {iteration}"));
        epoch = epoch.max(open(&sim).latest_epoch().unwrap_or(0));
    }
}

#[test]
fn given_empty_segment_left_by_a_failed_roll_when_opening_should_drop_it() {
    let sim = SimFs::new();
    let mut model = Model::default();
    flushed_log(&sim, &mut model, 12);
    let log = open(&sim);
    let (last_base, leo) = (files_base(&sim), log.log_end_offset());
    drop(log);
    // A roll at `stray` failed and could not remove its file; the active
    // segment went on past it.
    let stray = last_base + 1;
    assert!(stray < leo);
    sim.open(&log_path(stray), super::fs::OpenOptions::create_truncate())
        .unwrap();
    sim.sync_dir(Path::new(DIR)).unwrap();
    let log = open(&sim);
    assert_eq!(log.log_end_offset(), leo);
    assert!(!sim.exists(&log_path(stray)));
    drop(log);
    model.check(&sim, "after a stray empty segment");
}

/// Base offset of the last segment file.
fn files_base(sim: &SimFs) -> u64 {
    let mut names: Vec<String> = sim
        .read_dir(Path::new(DIR))
        .unwrap()
        .into_iter()
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    names.retain(|n| n.ends_with(".log"));
    names.sort();
    names
        .last()
        .unwrap()
        .trim_end_matches(".log")
        .parse()
        .unwrap()
}
