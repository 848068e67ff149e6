//! Kafka's classic consumer-group protocol as ZooKeeper's coordinator
//! serves it to the Kafka front door: the calls (join, sync, heartbeat,
//! leave, commit, fetch, list, describe, delete) and their answers. The
//! member that leads a group computes the assignment; the coordinator only
//! carries the members' subscriptions and the leader's assignment as
//! opaque blobs. Offsets are the same committed offsets native groups use.

use super::errors::ErrorCode;
use serde::{Deserialize, Serialize};

/// One protocol (assignor) a member offers, with its subscription blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolOffer {
    /// Protocol name (`range`, `roundrobin`, `cooperative-sticky`, ...).
    pub name: String,
    /// The member's metadata for it (for consumers: its subscription).
    #[serde(with = "serde_bytes")]
    pub metadata: Vec<u8>,
}

/// A JoinGroup as the front door passes it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// Group name.
    pub group: String,
    /// Empty on a first join.
    #[serde(default)]
    pub member_id: String,
    /// Static membership (`group.instance.id`), if the member has one.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The client's `client.id`.
    #[serde(default)]
    pub client_id: String,
    /// Where the client connected from.
    #[serde(default)]
    pub client_host: String,
    /// `consumer` for consumers; one group, one type.
    pub protocol_type: String,
    /// Protocols offered, preferred first.
    pub protocols: Vec<ProtocolOffer>,
    /// Session timeout asked for.
    pub session_timeout_ms: u64,
    /// Longest the member may take to rejoin a rebalance.
    pub rebalance_timeout_ms: u64,
    /// JoinGroup v4+: a first join gets `MemberIdRequired` and joins again with it.
    #[serde(default)]
    pub require_member_id: bool,
    /// The front door asking again about a join it sent: never starts a rebalance.
    #[serde(default)]
    pub poll: bool,
    /// JoinGroup v9+: a static leader returning to a stable group may be
    /// told to skip the assignment instead of rebalancing the group (KIP-814).
    #[serde(default)]
    pub can_skip_assignment: bool,
}

/// A member as the leader sees it in the join answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinedMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// Its metadata for the chosen protocol.
    #[serde(with = "serde_bytes")]
    pub metadata: Vec<u8>,
}

/// What a join came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JoinAnswer {
    /// The rebalance is not complete: ask again (`poll`) with this member id.
    Pending {
        /// The member's id.
        member_id: String,
    },
    /// JoinGroup v4+ first join: join again with this id.
    MemberIdRequired {
        /// The id to join with.
        member_id: String,
    },
    /// The rebalance completed.
    Done {
        /// New generation.
        generation: i32,
        /// The protocol chosen.
        protocol_type: String,
        /// The protocol chosen.
        protocol_name: String,
        /// The leader's member id.
        leader: String,
        /// This member's id.
        member_id: String,
        /// Every member with its metadata (for the leader only; empty otherwise).
        members: Vec<JoinedMember>,
        /// The leader must not assign: the group keeps the assignment it
        /// has (a static leader returned; JoinGroup v9+ only).
        #[serde(default)]
        skip_assignment: bool,
    },
}

/// A member's assignment, as the leader sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberAssignment {
    /// Member id.
    pub member_id: String,
    /// The assignment blob.
    #[serde(with = "serde_bytes")]
    pub assignment: Vec<u8>,
}

/// A SyncGroup as the front door passes it on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    /// Group name.
    pub group: String,
    /// Generation the member joined.
    pub generation: i32,
    /// Member id.
    pub member_id: String,
    /// Protocol type, when the client says (v5+).
    #[serde(default)]
    pub protocol_type: Option<String>,
    /// Protocol name, when the client says (v5+).
    #[serde(default)]
    pub protocol_name: Option<String>,
    /// The leader's assignment (empty from the others).
    #[serde(default)]
    pub assignments: Vec<MemberAssignment>,
}

/// What a sync came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncAnswer {
    /// The leader has not sent the assignment yet: ask again.
    Pending,
    /// This member's assignment.
    Done {
        /// Protocol type.
        protocol_type: String,
        /// Protocol name.
        protocol_name: String,
        /// The assignment blob.
        #[serde(with = "serde_bytes")]
        assignment: Vec<u8>,
    },
}

/// One partition to commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitPartition {
    /// Partition index.
    pub partition: u32,
    /// Next offset to read.
    pub offset: u64,
    /// The client's metadata string (round-trips through OffsetFetch).
    #[serde(default)]
    pub metadata: Option<String>,
}

/// One topic's partitions to commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitTopic {
    /// Topic name.
    pub topic: String,
    /// Its partitions.
    pub partitions: Vec<CommitPartition>,
}

/// A partition's committed offset, as OffsetFetch answers it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedOffset {
    /// Partition index.
    pub partition: u32,
    /// Committed offset; `None` when the group has none.
    pub offset: Option<u64>,
    /// Its metadata string.
    #[serde(default)]
    pub metadata: Option<String>,
}

/// A topic's committed offsets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedTopic {
    /// Topic name.
    pub topic: String,
    /// Per partition, ascending.
    pub partitions: Vec<FetchedOffset>,
}

/// A per-item result: the name or index, and an error if it failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemResult {
    /// Group, member, or `topic` + partition.
    pub name: String,
    /// Partition, where it applies.
    #[serde(default)]
    pub partition: u32,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<ErrorCode>,
}

/// A group as ListGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedGroup {
    /// Group name.
    pub group: String,
    /// `consumer` for Kafka consumers; empty for native groups and groups
    /// with only committed offsets.
    pub protocol_type: String,
    /// Kafka's state name: `Stable`, `PreparingRebalance`, `CompletingRebalance`, `Empty`.
    pub state: String,
}

/// A member as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedMember {
    /// Member id.
    pub member_id: String,
    /// Static instance id.
    #[serde(default)]
    pub instance_id: Option<String>,
    /// The client's id.
    pub client_id: String,
    /// The client's host.
    pub client_host: String,
    /// Metadata for the group's protocol.
    #[serde(with = "serde_bytes")]
    pub metadata: Vec<u8>,
    /// Its assignment blob (empty while rebalancing).
    #[serde(with = "serde_bytes")]
    pub assignment: Vec<u8>,
}

/// A group as DescribeGroups shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DescribedGroup {
    /// Group name.
    pub group: String,
    /// Kafka's state name (`Dead` for a group ZooKeeper does not know).
    pub state: String,
    /// Protocol type (empty when none).
    pub protocol_type: String,
    /// Chosen protocol (empty when none).
    pub protocol: String,
    /// Generation.
    #[serde(default)]
    pub generation: i32,
    /// Members.
    pub members: Vec<DescribedMember>,
}

/// A classic group call (`Call::ClassicGroup`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", content = "args")]
pub enum ClassicCall {
    /// JoinGroup (or a poll of one).
    Join(JoinRequest),
    /// SyncGroup (asked again while `Pending`).
    Sync(SyncRequest),
    /// Heartbeat.
    Heartbeat {
        /// Group name.
        group: String,
        /// Member id.
        member_id: String,
        /// Generation the member works in.
        generation: i32,
    },
    /// LeaveGroup for one or several members.
    Leave {
        /// Group name.
        group: String,
        /// Members leaving.
        member_ids: Vec<String>,
    },
    /// OffsetCommit, fenced by member id and generation (`-1` and an empty
    /// member id: a consumer assigning partitions by hand, accepted while
    /// the group has no members).
    Commit {
        /// Group name.
        group: String,
        /// Member id.
        member_id: String,
        /// Generation.
        generation: i32,
        /// What to commit.
        topics: Vec<CommitTopic>,
    },
    /// OffsetFetch: `None` means every topic with offsets.
    FetchOffsets {
        /// Group name.
        group: String,
        /// Topics and partitions (`None` partitions: every one committed).
        topics: Option<Vec<(String, Vec<u32>)>>,
    },
    /// ListGroups.
    List,
    /// DescribeGroups.
    Describe {
        /// Groups.
        groups: Vec<String>,
    },
    /// DeleteGroups: only groups without members; their offsets go.
    Delete {
        /// Groups.
        groups: Vec<String>,
    },
}

/// The answer to a [`ClassicCall`] (`Reply::ClassicGroup`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", content = "args")]
pub enum ClassicReply {
    /// To `Join`.
    Join(JoinAnswer),
    /// To `Sync`.
    Sync(SyncAnswer),
    /// To `Heartbeat`.
    Ok,
    /// To `Leave` (per member), `Commit` (per topic and partition), `Delete` (per group).
    Results(Vec<ItemResult>),
    /// To `FetchOffsets`.
    Offsets(Vec<FetchedTopic>),
    /// To `List`.
    Groups(Vec<ListedGroup>),
    /// To `Describe`.
    Described(Vec<DescribedGroup>),
}

/// The topics and partitions in a Kafka consumer's assignment blob
/// (`ConsumerProtocolAssignment`: version, then topics with their
/// partitions), for `group describe`; `None` when it does not parse.
/// Lengths are checked against the bytes present before anything is kept.
pub fn consumer_assignment(blob: &[u8]) -> Option<Vec<(String, Vec<u32>)>> {
    let mut r = Reader { buf: blob, at: 0 };
    r.take(2)?;
    let topics = r.count()?;
    let mut out = Vec::new();
    for _ in 0..topics {
        let len = usize::try_from(i16::from_be_bytes(r.take(2)?.try_into().ok()?)).ok()?;
        let topic = String::from_utf8(r.take(len)?.to_vec()).ok()?;
        let n = r.count()?;
        let mut partitions = Vec::new();
        for _ in 0..n {
            partitions.push(u32::try_from(i32::from_be_bytes(r.take(4)?.try_into().ok()?)).ok()?);
        }
        out.push((topic, partitions));
    }
    Some(out)
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let s = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }

    /// An array count, at most the bytes left (each element takes some).
    fn count(&mut self) -> Option<usize> {
        let n = i32::from_be_bytes(self.take(4)?.try_into().ok()?);
        usize::try_from(n.max(0))
            .ok()
            .filter(|n| *n <= self.buf.len() - self.at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_consumer_assignment_blob_when_decoding_should_give_topics_and_partitions_and_refuse_forged_lengths(
    ) {
        let mut b = vec![0, 1, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 2];
        b.extend([0, 0, 0, 4, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            consumer_assignment(&b),
            Some(vec![("t".to_string(), vec![4, 5])])
        );
        let forged = [0, 1, 0x7f, 0xff, 0xff, 0xff];
        assert_eq!(consumer_assignment(&forged), None);
        assert_eq!(consumer_assignment(&b[..10]), None);
    }
}
