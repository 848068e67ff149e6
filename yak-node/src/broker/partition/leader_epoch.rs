//! A leader's answer to OffsetForLeaderEpoch (KIP-320): where a leader
//! epoch ends in this replica's log, after checking the asker's view of
//! the current epoch. Reads the leader-epoch cache only; never writes.

use super::answers;
use super::Partition;
use crate::protocol::{ErrorBody, ErrorCode};

impl Partition {
    /// The largest epoch at most `leader_epoch` and where it ends (the
    /// start of the next higher epoch, or the log end offset for the
    /// latest); `None` when the log has no epoch or `leader_epoch` is newer
    /// than this leader's. Refused when this replica does not lead, or when
    /// `current_leader_epoch` is not the leader's epoch (older: fenced;
    /// newer: unknown here yet).
    pub fn epoch_end_offset(
        &self,
        leader_epoch: u32,
        current_leader_epoch: Option<u32>,
    ) -> Result<Option<(u32, u64)>, ErrorBody> {
        let g = self.lock();
        let l = g.core.leadership();
        if !g.core.is_leader() {
            return Err(answers::not_leader(
                &g.name,
                self.broker_id,
                l.leader,
                l.epoch,
            ));
        }
        match current_leader_epoch {
            Some(asked) if asked < l.epoch => {
                return Err(ErrorBody::new(
                    ErrorCode::FencedLeaderEpoch,
                    format!(
                        "{}: epoch {asked} is older than the leader's {}",
                        g.name, l.epoch
                    ),
                ))
            }
            Some(asked) if asked > l.epoch => {
                return Err(ErrorBody::new(
                    ErrorCode::UnknownLeaderEpoch,
                    format!(
                        "{}: epoch {asked} is newer than the leader's {}",
                        g.name, l.epoch
                    ),
                ))
            }
            _ => {}
        }
        if leader_epoch > l.epoch {
            return Ok(None);
        }
        Ok(g.log.end_offset_for_epoch(leader_epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Leadership;
    use super::*;
    use crate::storage::{Log, LogConfig};
    use std::time::Instant;

    fn leader(p: &Partition, epoch: u32) {
        let leadership = Leadership {
            leader: Some(1),
            epoch,
            replicas: vec![1],
            isr: vec![1],
            partition_epoch: u64::from(epoch),
        };
        assert!(p.set_leadership(leadership, Instant::now()).is_empty());
    }

    #[test]
    fn given_epochs_in_the_log_when_asking_where_one_ends_should_answer_from_the_epoch_cache() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(&dir.path().join("t-0"), LogConfig::default()).expect("open log");
        let p = Partition::new("t".into(), 0, 1, 1, log, false);
        leader(&p, 0);
        assert_eq!(p.epoch_end_offset(0, Some(0)), Ok(None), "an empty log");
        p.produce_values(1, -1, -1, &[b"a", b"b"]);
        leader(&p, 2);
        p.produce_values(1, -1, -1, &[b"c"]);
        leader(&p, 3);
        assert_eq!(
            p.epoch_end_offset(0, Some(3)),
            Ok(Some((0, 2))),
            "epoch 0 ends where epoch 2 starts"
        );
        assert_eq!(
            p.epoch_end_offset(1, None),
            Ok(Some((0, 2))),
            "an epoch without records: the one before it"
        );
        assert_eq!(
            p.epoch_end_offset(2, Some(3)),
            Ok(Some((2, 3))),
            "the latest epoch in the log ends at the log end"
        );
        assert_eq!(
            p.epoch_end_offset(3, Some(3)),
            Ok(Some((2, 3))),
            "the leader's epoch before its first append"
        );
        assert_eq!(
            p.epoch_end_offset(4, None),
            Ok(None),
            "newer than the leader's"
        );
        let code = |r: Result<Option<(u32, u64)>, ErrorBody>| r.map_err(|e| e.code);
        assert_eq!(
            code(p.epoch_end_offset(0, Some(2))),
            Err(ErrorCode::FencedLeaderEpoch)
        );
        assert_eq!(
            code(p.epoch_end_offset(0, Some(4))),
            Err(ErrorCode::UnknownLeaderEpoch)
        );
    }

    #[test]
    fn given_a_follower_when_asked_where_an_epoch_ends_should_answer_not_leader() {
        let dir = tempfile::tempdir().expect("tempdir");
        let log = Log::open(&dir.path().join("t-0"), LogConfig::default()).expect("open log");
        let p = Partition::new("t".into(), 0, 1, 2, log, false);
        leader(&p, 1);
        assert!(matches!(
            p.epoch_end_offset(0, Some(1)).map_err(|e| e.code),
            Err(ErrorCode::NotLeader { .. })
        ));
    }
}
