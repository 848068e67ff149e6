//! Every limit and default in one place. Units last in names.

/// Largest frame a peer may send; checked before any allocation.
pub const FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest single record batch a producer may send.
pub const BATCH_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Default largest message (key + value) a producer may send.
pub const MESSAGE_BYTES_MAX_DEFAULT: usize = 1024 * 1024;
/// Longest topic name, as in Kafka.
pub const TOPIC_NAME_CHARS_MAX: usize = 249;
/// Most partitions one topic may have.
pub const PARTITIONS_MAX: u32 = 10_000;
/// Default segment size before a roll.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// A sparse index entry is written every this many log bytes.
pub const INDEX_INTERVAL_BYTES: u64 = 4096;
/// Most connections one server keeps open at once.
pub const CONNECTIONS_MAX: usize = 1024;
/// Default fetch size per partition.
pub const FETCH_PARTITION_BYTES_DEFAULT: u32 = 1024 * 1024;
/// Most bytes one fetch response carries over all partitions.
pub const FETCH_RESPONSE_BYTES_MAX: u32 = 8 * 1024 * 1024;
/// Longest a fetch may wait for data.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;
/// Producer: default linger before a partial batch is sent.
pub const LINGER_MS_DEFAULT: u64 = 5;
/// Producer: default batch size.
pub const BATCH_BYTES_DEFAULT: usize = 64 * 1024;
/// Producer: most unacknowledged requests per broker connection.
pub const IN_FLIGHT_REQUESTS_MAX: usize = 5;
/// Producer: how long a message may wait for an acknowledgement, retries included.
pub const DELIVERY_TIMEOUT_MS_DEFAULT: u64 = 30_000;
/// Broker heartbeat interval to ZooKeeper.
pub const HEARTBEAT_INTERVAL_MS: u64 = 100;
/// How often ZooKeeper checks sessions for expiry.
pub const SESSION_TICK_MS: u64 = 20;
/// Default broker session timeout.
pub const SESSION_TIMEOUT_MS_DEFAULT: u64 = 600;
/// Metadata log records between ZooKeeper snapshots.
pub const METADATA_LOG_RECORDS_PER_SNAPSHOT: u64 = 1000;
/// After a failed snapshot (a full disk), metadata log records before the next try.
pub const METADATA_SNAPSHOT_RETRY_RECORDS: u64 = 100;
/// Largest metadata log record (a record comes from one request, so a frame bounds it).
pub const METADATA_RECORD_BYTES_MAX: usize = FRAME_BYTES_MAX;
/// Deleted topic ids ZooKeeper remembers (and sends brokers with full
/// metadata); a replica of an older deleted topic is quarantined, not deleted.
pub const DELETED_TOPIC_IDS_MAX: usize = 1000;
/// Largest metadata snapshot.
pub const METADATA_SNAPSHOT_BYTES_MAX: usize = 1024 * 1024 * 1024;
/// Most partitions one fetch request may name.
pub const FETCH_PARTITIONS_MAX: usize = 10_000;
/// How long a server waits to hand a response to a client that does not read.
pub const SERVER_WRITE_TIMEOUT_MS: u64 = 5_000;
/// Client: how long to wait for a connection or a response.
pub const CLIENT_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Default `min.insync.replicas`: acks=all needs this many in-sync replicas.
pub const MIN_INSYNC_REPLICAS_DEFAULT: usize = 2;
/// A follower that has not caught up for this long leaves the ISR.
pub const REPLICA_LAG_TIME_MAX_MS: u64 = 1000;
/// Longest a follower's fetch waits at the leader for new data.
pub const REPLICA_FETCH_WAIT_MS: u64 = 200;
/// Longest an acks=all produce waits for the ISR before `Timeout`.
pub const PRODUCE_ACK_TIMEOUT_MS: u64 = 10_000;
/// How often a broker applies retention to its logs (deleting old segments).
pub const RETENTION_CHECK_INTERVAL_MS: u64 = 1_000;
/// Producer state (sequence numbers) rebuilt from this many bytes at the tail of a log.
pub const PRODUCER_STATE_SCAN_BYTES: u32 = 8 * 1024 * 1024;
/// Batches per producer remembered for duplicate detection, as in Kafka.
pub const PRODUCER_BATCHES_REMEMBERED: usize = 5;
/// Default session timeout of a consumer-group member.
pub const GROUP_SESSION_TIMEOUT_MS_DEFAULT: u64 = 3000;
/// Smallest session timeout a group member may ask for.
pub const GROUP_SESSION_TIMEOUT_MS_MIN: u64 = 100;
/// Largest session timeout a group member may ask for.
pub const GROUP_SESSION_TIMEOUT_MS_MAX: u64 = 300_000;
/// Longest group name.
pub const GROUP_NAME_CHARS_MAX: usize = 249;
/// Most members one group may have.
pub const GROUP_MEMBERS_MAX: usize = 1000;
/// Group consumer: how often processed offsets are committed.
pub const GROUP_COMMIT_INTERVAL_MS: u64 = 1000;
/// Group consumer: how long the coordinator may be unreachable before the consumer gives up.
pub const GROUP_COORDINATOR_WAIT_MS_MAX: u64 = 60_000;
/// Upper bounds of the buckets of the brokers' latency histograms (produce,
/// fsync), in microseconds; a last bucket (+Inf) follows.
pub const LATENCY_BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000,
];
/// Metrics endpoint: largest HTTP request head (request line and headers) read.
pub const METRICS_REQUEST_BYTES_MAX: usize = 8 * 1024;
/// Metrics endpoint: how long a client may take to send its request and read the answer.
pub const METRICS_CLIENT_TIMEOUT_MS: u64 = 2_000;
/// Metrics endpoint: most HTTP connections served at once; more are closed at once.
pub const METRICS_CONNECTIONS_MAX: usize = 16;
/// Metrics scrape: how long one child (ZooKeeper or a broker) may take to answer before it is skipped.
pub const METRICS_CHILD_TIMEOUT_MS: u64 = 500;
/// Default number of cluster events ZooKeeper keeps (`[zookeeper] events_max`).
pub const EVENTS_MAX_DEFAULT: usize = 1000;
/// Largest `events_max` accepted (the events go into every snapshot).
pub const EVENTS_MAX_LIMIT: usize = 100_000;
/// Most events one `Events` answer carries; a client asks again for more.
pub const EVENTS_PER_ANSWER_MAX: usize = 1000;
/// `cluster events --follow`: how often ZooKeeper is asked for new events.
pub const EVENTS_FOLLOW_POLL_MS: u64 = 200;
/// Longest child or signal name a restart report may carry.
pub const PROCESS_NAME_CHARS_MAX: usize = 64;
/// Client: first retry backoff; each later retry doubles it (with jitter) up to the max.
pub const CLIENT_RETRY_BACKOFF_MS_MIN: u64 = 20;
/// Client: longest retry backoff.
pub const CLIENT_RETRY_BACKOFF_MS_MAX: u64 = 1_000;
/// Client (admin commands, consumers): how long to keep retrying a ZooKeeper
/// that refuses connections while the supervisor restarts it. The producer
/// waits its delivery timeout instead.
pub const CLIENT_ZOOKEEPER_WAIT_MS_DEFAULT: u64 = 10_000;
/// Producer: a request unanswered this long makes the producer check
/// whether its partition's leader moved on (a paused or partitioned leader).
pub const PRODUCER_STALE_REQUEST_MS: u64 = 300;
/// Producer: while a request is stale, metadata is refreshed at most this often.
pub const PRODUCER_METADATA_REFRESH_MS: u64 = 200;
/// Producer: how long one wait for answers lasts before the stale check runs again.
pub const PRODUCER_ANSWER_WAIT_MS: u64 = 50;
/// Group consumer: default longest time between two polls before the member
/// leaves the group (Kafka's `max.poll.interval.ms`).
pub const GROUP_MAX_POLL_INTERVAL_MS_DEFAULT: u64 = 300_000;
