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
