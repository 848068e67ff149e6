//! A walk over a request body before the `kafka-protocol` decoder sees it:
//! that decoder reserves room for an array from its declared length
//! (`Vec::with_capacity`), so one forged length of 2^31 could make the
//! broker abort on a failed allocation. The walk follows each served API's
//! schema (the versions this listener serves) and refuses a body whose
//! array or string lengths exceed the bytes left, before anything is
//! allocated. Never builds a value.

use super::frame::KafkaFrameError;
use kafka_protocol::messages::ApiKey;

/// One field of a request schema.
#[derive(Clone, Copy)]
enum F {
    I8,
    I16,
    I32,
    I64,
    /// A string or nullable string (i16 length, -1 = null).
    Str,
    /// Nullable bytes (i32 length, -1 = null).
    Bytes,
    /// An array (i32 count, -1 = null) of elements with these fields.
    Arr(&'static [F]),
    /// A compact string (unsigned varint length + 1, 0 = null).
    CStr,
    /// A compact array (unsigned varint count + 1, 0 = null).
    CArr(&'static [F]),
    /// Compact bytes (unsigned varint length + 1, 0 = null).
    CBytes,
    /// Tagged fields (flexible versions): count, then (tag, size, bytes).
    Tags,
}

use F::*;

/// The body schema of `api` at `version`, for every API and version this
/// listener decodes (see `versions::SERVED`); `None` for anything else.
fn schema(api: ApiKey, v: i16) -> Option<Vec<F>> {
    Some(match api {
        // v10+: each topic is a topic id (a UUID, 16 bytes) and a name;
        // v11 drops include_cluster_authorized_operations.
        ApiKey::Metadata if v >= 11 => vec![CArr(&[I64, I64, CStr, Tags]), I8, I8, Tags],
        ApiKey::Metadata if v == 10 => vec![CArr(&[I64, I64, CStr, Tags]), I8, I8, I8, Tags],
        ApiKey::Metadata if v >= 9 => vec![CArr(&[CStr, Tags]), I8, I8, I8, Tags],
        ApiKey::Metadata => {
            const TOPIC: &[F] = &[Str];
            let mut s = vec![Arr(TOPIC)];
            if v >= 4 {
                s.push(I8);
            }
            if v >= 8 {
                s.extend([I8, I8]);
            }
            s
        }
        ApiKey::CreateTopics => {
            const ASSIGNMENT: &[F] = &[I32, Arr(&[I32])];
            const CONFIG: &[F] = &[Str, Str];
            const TOPIC: &[F] = &[Str, I32, I16, Arr(ASSIGNMENT), Arr(CONFIG)];
            let mut s = vec![Arr(TOPIC), I32];
            if v >= 1 {
                s.push(I8);
            }
            s
        }
        ApiKey::DeleteTopics if v >= 4 => vec![CArr(&[CStr]), I32, Tags],
        ApiKey::DeleteTopics => vec![Arr(&[Str]), I32],
        ApiKey::InitProducerId => {
            let mut s = if v >= 2 {
                vec![CStr, I32]
            } else {
                vec![Str, I32]
            };
            if v >= 3 {
                s.extend([I64, I16]);
            }
            if v >= 2 {
                s.push(Tags);
            }
            s
        }
        ApiKey::Produce => {
            const PARTITION: &[F] = &[I32, Bytes];
            const TOPIC: &[F] = &[Str, Arr(PARTITION)];
            vec![Str, I16, I32, Arr(TOPIC)]
        }
        ApiKey::Fetch => {
            // Partition: index, [leader epoch v9+], fetch offset, [log start v5+], max bytes.
            const P4: &[F] = &[I32, I64, I32];
            const P5: &[F] = &[I32, I64, I64, I32];
            const P9: &[F] = &[I32, I32, I64, I64, I32];
            let topic: &'static [F] = match v {
                ..=4 => &[Str, Arr(P4)],
                5..=8 => &[Str, Arr(P5)],
                _ => &[Str, Arr(P9)],
            };
            let mut s = vec![I32, I32, I32, I32, I8];
            if v >= 7 {
                s.extend([I32, I32]);
            }
            s.push(Arr(topic));
            if v >= 7 {
                s.push(Arr(&[Str, Arr(&[I32])]));
            }
            if v >= 11 {
                s.push(Str);
            }
            s
        }
        ApiKey::ListOffsets if v >= 6 => {
            const PARTITION: &[F] = &[I32, I32, I64, Tags];
            vec![I32, I8, CArr(&[CStr, CArr(PARTITION), Tags]), Tags]
        }
        ApiKey::ListOffsets => {
            // Partition: index, [leader epoch v4+], timestamp.
            let topic: &'static [F] = if v >= 4 {
                &[Str, Arr(&[I32, I32, I64])]
            } else {
                &[Str, Arr(&[I32, I64])]
            };
            let mut s = vec![I32];
            if v >= 2 {
                s.push(I8);
            }
            s.push(Arr(topic));
            s
        }
        ApiKey::OffsetForLeaderEpoch => {
            // Partition: index, [current leader epoch v2+], leader epoch.
            const P0: &[F] = &[I32, I32];
            const P2: &[F] = &[I32, I32, I32];
            const P4: &[F] = &[I32, I32, I32, Tags];
            let mut s = if v >= 3 { vec![I32] } else { Vec::new() };
            s.push(match v {
                ..=1 => Arr(&[Str, Arr(P0)]),
                2 | 3 => Arr(&[Str, Arr(P2)]),
                _ => CArr(&[CStr, CArr(P4), Tags]),
            });
            if v >= 4 {
                s.push(Tags);
            }
            s
        }
        ApiKey::ConsumerGroupHeartbeat => {
            const OWNED: &[F] = &[I64, I64, CArr(&[I32]), Tags];
            let mut s = vec![CStr, CStr, I32, CStr, CStr, I32, CArr(&[CStr])];
            if v >= 1 {
                // subscribed_topic_regex
                s.push(CStr);
            }
            s.extend([CStr, CArr(OWNED), Tags]);
            s
        }
        ApiKey::CreatePartitions if v >= 2 => {
            const TOPIC: &[F] = &[CStr, I32, CArr(&[CArr(&[I32]), Tags]), Tags];
            vec![CArr(TOPIC), I32, I8, Tags]
        }
        ApiKey::CreatePartitions => vec![Arr(&[Str, I32, Arr(&[Arr(&[I32])])]), I32, I8],
        ApiKey::DescribeConfigs if v >= 4 => {
            vec![CArr(&[I8, CStr, CArr(&[CStr]), Tags]), I8, I8, Tags]
        }
        ApiKey::DescribeConfigs => {
            let mut s = vec![Arr(&[I8, Str, Arr(&[Str])])];
            if v >= 1 {
                s.push(I8);
            }
            if v >= 3 {
                s.push(I8);
            }
            s
        }
        ApiKey::IncrementalAlterConfigs if v >= 1 => {
            const CONFIG: &[F] = &[CStr, I8, CStr, Tags];
            vec![CArr(&[I8, CStr, CArr(CONFIG), Tags]), I8, Tags]
        }
        ApiKey::IncrementalAlterConfigs => vec![Arr(&[I8, Str, Arr(&[Str, I8, Str])]), I8],
        ApiKey::AlterConfigs if v >= 2 => {
            vec![CArr(&[I8, CStr, CArr(&[CStr, CStr, Tags]), Tags]), I8, Tags]
        }
        ApiKey::AlterConfigs => vec![Arr(&[I8, Str, Arr(&[Str, Str])]), I8],
        ApiKey::AlterPartitionReassignments => {
            const PARTITION: &[F] = &[I32, CArr(&[I32]), Tags];
            vec![I32, CArr(&[CStr, CArr(PARTITION), Tags]), Tags]
        }
        ApiKey::ListPartitionReassignments => {
            vec![I32, CArr(&[CStr, CArr(&[I32]), Tags]), Tags]
        }
        ApiKey::FindCoordinator if v >= 4 => vec![I8, CArr(&[CStr]), Tags],
        ApiKey::FindCoordinator if v == 3 => vec![CStr, I8, Tags],
        ApiKey::FindCoordinator if v == 0 => vec![Str],
        ApiKey::FindCoordinator => vec![Str, I8],
        ApiKey::JoinGroup if v >= 6 => {
            // As below, compact; [reason v8+].
            const PROTOCOL: &[F] = &[CStr, CBytes, Tags];
            let mut s = vec![CStr, I32, I32, CStr, CStr, CStr, CArr(PROTOCOL)];
            if v >= 8 {
                s.push(CStr);
            }
            s.push(Tags);
            s
        }
        ApiKey::SyncGroup if v >= 4 => {
            // group, generation, member, instance, [type, name v5+], assignments.
            const ASSIGNMENT: &[F] = &[CStr, CBytes, Tags];
            let mut s = vec![CStr, I32, CStr, CStr];
            if v >= 5 {
                s.extend([CStr, CStr]);
            }
            s.extend([CArr(ASSIGNMENT), Tags]);
            s
        }
        ApiKey::Heartbeat if v >= 4 => vec![CStr, I32, CStr, CStr, Tags],
        ApiKey::LeaveGroup if v >= 4 => {
            // Member: id, instance, [reason v5+].
            const M4: &[F] = &[CStr, CStr, Tags];
            const M5: &[F] = &[CStr, CStr, CStr, Tags];
            vec![CStr, CArr(if v >= 5 { M5 } else { M4 }), Tags]
        }
        ApiKey::JoinGroup => {
            // group, session timeout, rebalance timeout, member, [instance v5+], type, protocols.
            const PROTOCOL: &[F] = &[Str, Bytes];
            let mut s = vec![Str, I32, I32, Str];
            if v >= 5 {
                s.push(Str);
            }
            s.extend([Str, Arr(PROTOCOL)]);
            s
        }
        ApiKey::SyncGroup | ApiKey::Heartbeat => {
            // group, generation, member, [instance v3+], [assignments].
            let mut s = vec![Str, I32, Str];
            if v >= 3 {
                s.push(Str);
            }
            if api == ApiKey::SyncGroup {
                s.push(Arr(&[Str, Bytes]));
            }
            s
        }
        ApiKey::LeaveGroup if v >= 3 => vec![Str, Arr(&[Str, Str])],
        ApiKey::LeaveGroup => vec![Str, Str],
        ApiKey::OffsetCommit if v >= 8 => {
            const PARTITION: &[F] = &[I32, I64, I32, CStr, Tags];
            const TOPIC: &[F] = &[CStr, CArr(PARTITION), Tags];
            vec![CStr, I32, CStr, CStr, CArr(TOPIC), Tags]
        }
        ApiKey::OffsetCommit => {
            // Partition: index, offset, [leader epoch v6+], metadata.
            let topic: &'static [F] = if v >= 6 {
                &[Str, Arr(&[I32, I64, I32, Str])]
            } else {
                &[Str, Arr(&[I32, I64, Str])]
            };
            let mut s = vec![Str, I32, Str];
            match v {
                2..=4 => s.push(I64),
                7.. => s.push(Str),
                _ => {}
            }
            s.push(Arr(topic));
            s
        }
        ApiKey::OffsetFetch if v >= 8 => {
            const TOPIC: &[F] = &[CStr, CArr(&[I32]), Tags];
            const GROUP_V8: &[F] = &[CStr, CArr(TOPIC), Tags];
            // v9: member id and member epoch after the group id.
            const GROUP_V9: &[F] = &[CStr, CStr, I32, CArr(TOPIC), Tags];
            vec![CArr(if v >= 9 { GROUP_V9 } else { GROUP_V8 }), I8, Tags]
        }
        ApiKey::OffsetFetch if v >= 6 => {
            const TOPIC: &[F] = &[CStr, CArr(&[I32]), Tags];
            let mut s = vec![CStr, CArr(TOPIC)];
            if v >= 7 {
                s.push(I8);
            }
            s.push(Tags);
            s
        }
        ApiKey::OffsetFetch => vec![Str, Arr(&[Str, Arr(&[I32])])],
        ApiKey::ListGroups if v >= 3 => {
            // [states filter v4+], [types filter v5+].
            let mut s = Vec::new();
            if v >= 4 {
                s.push(CArr(&[CStr]));
            }
            if v >= 5 {
                s.push(CArr(&[CStr]));
            }
            s.push(Tags);
            s
        }
        ApiKey::ListGroups => vec![],
        ApiKey::DescribeGroups if v >= 5 => vec![CArr(&[CStr]), I8, Tags],
        ApiKey::DescribeGroups if v >= 3 => vec![Arr(&[Str]), I8],
        ApiKey::DescribeGroups | ApiKey::DeleteGroups => vec![Arr(&[Str])],
        _ => return None,
    })
}

/// Refuses a body of `api` v`version` whose lengths do not fit the bytes
/// it has; a body it has no schema for is refused too.
pub fn check(api: ApiKey, version: i16, body: &[u8]) -> Result<(), KafkaFrameError> {
    let malformed = |reason: String| KafkaFrameError::Malformed {
        what: format!("{api:?} v{version}"),
        reason,
    };
    // Every length fits; bytes after the body are ignored, as Kafka's
    // brokers do (the decoder never reads them).
    walk(api, version, body).map(drop).map_err(malformed)
}

/// How many bytes of `body` the schema of `api` v`version` covers.
fn walk(api: ApiKey, version: i16, body: &[u8]) -> Result<usize, String> {
    let fields = schema(api, version).ok_or("no schema")?;
    let mut cursor = Cursor { buf: body, at: 0 };
    cursor.walk(&fields)?;
    Ok(cursor.at)
}

/// The bytes a schema walk covers: a test checks it is the whole of a
/// valid body, so a schema that drifted from the codec's shows.
#[cfg(test)]
pub fn covered(api: ApiKey, version: i16, body: &[u8]) -> Result<usize, String> {
    walk(api, version, body)
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn left(&self) -> usize {
        self.buf.len() - self.at
    }

    fn take(&mut self, n: usize) -> Result<&[u8], String> {
        if n > self.left() {
            return Err(format!(
                "{n} bytes wanted at byte {}, {} left",
                self.at,
                self.left()
            ));
        }
        let s = &self.buf[self.at..self.at + n];
        self.at += n;
        Ok(s)
    }

    fn int(&mut self, n: usize) -> Result<i64, String> {
        let b = self.take(n)?;
        Ok(
            b.iter().fold(0i64, |acc, x| (acc << 8) | i64::from(*x)) << (64 - 8 * n)
                >> (64 - 8 * n),
        )
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in (0..35).step_by(7) {
            let b = self.take(1)?[0];
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!("varint longer than 5 bytes at byte {}", self.at))
    }

    /// An element count `n` must not exceed the bytes left: every element
    /// takes at least one.
    fn count(&mut self, n: u64) -> Result<usize, String> {
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.left())
            .ok_or_else(|| format!("{n} elements declared, {} bytes left", self.left()))
    }

    fn walk(&mut self, fields: &[F]) -> Result<(), String> {
        for f in fields {
            match *f {
                I8 => drop(self.take(1)?),
                I16 => drop(self.take(2)?),
                I32 => drop(self.take(4)?),
                I64 => drop(self.take(8)?),
                Str => {
                    let n = self.int(2)?;
                    if n >= 0 {
                        self.take(n as usize)?;
                    }
                }
                Bytes => {
                    let n = self.int(4)?;
                    if n >= 0 {
                        self.take(n as usize)?;
                    }
                }
                Arr(element) => {
                    let n = self.int(4)?;
                    if n >= 0 {
                        for _ in 0..self.count(n as u64)? {
                            self.walk(element)?;
                        }
                    }
                }
                CStr | CBytes => {
                    let n = self.varint()?;
                    if n > 0 {
                        let len = self.count(n - 1)?;
                        self.take(len)?;
                    }
                }
                CArr(element) => {
                    let n = self.varint()?;
                    if n > 0 {
                        for _ in 0..self.count(n - 1)? {
                            self.walk(element)?;
                        }
                    }
                }
                Tags => {
                    let n = self.varint()?;
                    for _ in 0..self.count(n)? {
                        self.varint()?;
                        let size = self.varint()?;
                        let len = self.count(size)?;
                        self.take(len)?;
                    }
                }
            }
        }
        Ok(())
    }
}
