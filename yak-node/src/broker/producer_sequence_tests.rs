//! A leader's idempotent-producer checks end to end: sequence numbers that
//! wrap past `i32::MAX`, duplicates and gaps, through [`Partition::produce`].

use super::partition::{Leadership, Partition};
use crate::protocol::{ErrorCode, Reply};
use crate::server::Handled;
use crate::storage::{Log, LogConfig};
use std::time::Instant;

/// What a leader answered to one produce: (base offset, duplicate) or the error code.
fn produce_at(p: &Partition, base_sequence: i32, records: u32) -> Result<(u64, bool), ErrorCode> {
    let values = vec![&b"v"[..]; records as usize];
    match p.produce_values(1, 42, base_sequence, &values).0 {
        Handled::Reply(Reply::Produced {
            base_offset,
            duplicate,
            ..
        }) => Ok((base_offset, duplicate)),
        Handled::Reply(Reply::Error(e)) => Err(e.code),
        _ => panic!("acks=1 produce is answered at once with Produced or an error"),
    }
}

#[test]
fn given_producer_near_i32_max_when_batches_cross_the_wrap_should_accept_in_order_dedup_and_refuse_gaps(
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(&dir.path().join("t-0"), LogConfig::default()).expect("open log");
    let p = Partition::new("t".into(), 0, 1, 1, log, false);
    let leadership = Leadership {
        leader: Some(1),
        epoch: 0,
        replicas: vec![1],
        isr: vec![1],
        partition_epoch: 0,
    };
    assert!(p.set_leadership(leadership, Instant::now()).is_empty());

    assert_eq!(
        produce_at(&p, i32::MAX - 1, 1),
        Ok((0, false)),
        "sequence MAX-1"
    );
    let crossing = i32::MAX;
    assert_eq!(
        produce_at(&p, crossing, 3),
        Ok((1, false)),
        "sequences MAX, 0, 1: the batch crosses the wrap"
    );
    let after = 2;
    assert_eq!(
        produce_at(&p, after, 2),
        Ok((4, false)),
        "sequences 2, 3 after the wrap"
    );
    assert_eq!(
        produce_at(&p, crossing, 3),
        Ok((1, true)),
        "the crossing batch resent is a duplicate"
    );
    assert_eq!(
        produce_at(&p, after, 2),
        Ok((4, true)),
        "the batch after the wrap resent is a duplicate"
    );
    assert_eq!(
        produce_at(&p, 5, 1),
        Err(ErrorCode::OutOfOrderSequence),
        "4 is missing: a real gap"
    );
    assert_eq!(produce_at(&p, 4, 1), Ok((6, false)));
}

/// What a leader answered to a batch of one record from producer 42 at `epoch`.
fn produce_epoch(p: &Partition, epoch: i16, base_sequence: i32) -> Result<(u64, bool), ErrorCode> {
    use crate::protocol::batch;
    use crate::protocol::Acks;
    let mut b = batch::BatchBuilder::new(42, epoch, base_sequence, 64);
    b.push(batch::NewRecord {
        key: None,
        value: b"v",
        timestamp_ms: 0,
    });
    let checked = batch::CheckedBatch::check(b.finish()).expect("a built batch checks");
    let (responder, _peer) = crate::server::Responder::for_test(7);
    let handled = p
        .produce(
            Acks::Leader,
            checked,
            std::time::Duration::from_secs(10),
            responder,
            Instant::now(),
        )
        .0;
    match handled {
        Handled::Reply(Reply::Produced {
            base_offset,
            duplicate,
            ..
        }) => Ok((base_offset, duplicate)),
        Handled::Reply(Reply::Error(e)) => Err(e.code),
        _ => panic!("acks=1 produce is answered at once with Produced or an error"),
    }
}

#[test]
fn given_bumped_producer_epoch_when_producing_should_restart_sequences_and_fence_the_old_epoch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t-0");
    let log = Log::open(&path, LogConfig::default()).expect("open log");
    let p = Partition::new("t".into(), 0, 1, 1, log, false);
    let leadership = Leadership {
        leader: Some(1),
        epoch: 0,
        replicas: vec![1],
        isr: vec![1],
        partition_epoch: 0,
    };
    assert!(p
        .set_leadership(leadership.clone(), Instant::now())
        .is_empty());
    assert_eq!(produce_epoch(&p, 0, 0), Ok((0, false)));
    assert_eq!(produce_epoch(&p, 0, 1), Ok((1, false)));
    assert_eq!(
        produce_epoch(&p, 1, 5),
        Err(ErrorCode::OutOfOrderSequence),
        "a new epoch starts at sequence 0"
    );
    assert_eq!(produce_epoch(&p, 1, 0), Ok((2, false)), "epoch 1 from 0");
    assert_eq!(produce_epoch(&p, 1, 0), Ok((2, true)), "resent: duplicate");
    assert_eq!(
        produce_epoch(&p, 0, 2),
        Err(ErrorCode::InvalidProducerEpoch),
        "the old epoch is fenced"
    );
    drop(p);

    // Recovery: the producer table is rebuilt from the batch headers.
    let log = Log::open(&path, LogConfig::default()).expect("reopen log");
    let p = Partition::new("t".into(), 0, 1, 1, log, false);
    assert!(p.set_leadership(leadership, Instant::now()).is_empty());
    assert_eq!(
        produce_epoch(&p, 0, 2),
        Err(ErrorCode::InvalidProducerEpoch),
        "still fenced after a restart"
    );
    assert_eq!(produce_epoch(&p, 1, 0), Ok((2, true)), "still a duplicate");
    assert_eq!(produce_epoch(&p, 1, 1), Ok((3, false)));
}
