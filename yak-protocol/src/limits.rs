//! Every limit and default in one place. Units last in names.

/// Largest frame a peer may send; checked before any allocation.
pub const FRAME_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest single record batch a producer may send.
pub const BATCH_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Largest the records of one compressed batch may grow to once
/// decompressed; checked while decompressing, so a small batch that inflates
/// without end (a "zip bomb") is refused after this many bytes.
pub const BATCH_DECOMPRESSED_BYTES_MAX: usize = 4 * BATCH_BYTES_MAX;
/// Default largest message (key + value) a producer may send.
pub const MESSAGE_BYTES_MAX_DEFAULT: usize = 1024 * 1024;
/// Longest topic name, as in Kafka.
pub const TOPIC_NAME_CHARS_MAX: usize = 249;
/// Most partitions one topic may have.
pub const PARTITIONS_MAX: u32 = 10_000;
/// Most replicas (partitions × replication factor) one topic may have, so
/// one topic's metadata always fits in a metadata page.
pub const TOPIC_REPLICAS_MAX: u64 = 100_000;
/// A metadata answer carries whole topics up to about this many bytes; the
/// client asks for the next page (one topic is at most ~2 MiB).
pub const METADATA_PAGE_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Times a client starts reading paged metadata over because its version
/// moved between pages, before it gives up.
pub const METADATA_PAGE_RESTARTS_MAX: u32 = 5;
/// Bytes kept free in a fetch answer's frame for its envelope.
pub const FETCH_FRAME_SLACK_BYTES: usize = 4096;
/// Upper bound of one fetched partition's encoded size besides its records
/// and twice its topic name (its fields and an error message).
pub const FETCH_PARTITION_OVERHEAD_BYTES: usize = 256;
/// Default segment size before a roll.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// A sparse index entry is written every this many log bytes.
pub const INDEX_INTERVAL_BYTES: u64 = 4096;
/// Most connections one server keeps open at once (`--connections-max`;
/// lowered at start when the open-files limit cannot hold them).
pub const CONNECTIONS_MAX: usize = 4096;
/// Of those, the connections only the cluster's own processes (the
/// supervisor, ZooKeeper, brokers, workers) may use: clients are refused
/// past `connections max - CONNECTIONS_RESERVED`, so they cannot lock the
/// cluster out.
pub const CONNECTIONS_RESERVED: usize = 64;
/// A connection with no request for this long is closed (Kafka's
/// `connections.max.idle.ms`).
pub const CONNECTION_IDLE_MS_MAX: u64 = 600_000;
/// Once a frame's first byte arrived, the whole frame must arrive within
/// this long, or the connection is closed (a slow-loris peer).
pub const FRAME_READ_TIMEOUT_MS: u64 = 5_000;
/// Requests one connection may have waiting for a deferred answer (a
/// produce waiting for the ISR); past it, the server reads no more from
/// that connection until one is answered.
pub const CONNECTION_REQUESTS_PENDING_MAX: usize = 64;
/// Replies one connection may hold queued for its writer (waiting for the
/// socket, or for an earlier request's answer: replies leave in request
/// order); one more closes the connection (a client that does not read).
pub const CONNECTION_REPLIES_QUEUED_MAX: usize = 256;
/// Bytes of replies one connection may hold queued for its writer; one
/// reply more closes the connection, unless it is the only one queued (any
/// one answer fits).
pub const CONNECTION_REPLY_QUEUE_BYTES_MAX: usize = 2 * FRAME_BYTES_MAX;
/// Buffer size of a connection's reader and of its writer.
pub const CONNECTION_BUFFER_BYTES: usize = 64 * 1024;
/// File descriptors kept free for sockets, pipes and the metadata log
/// when the connection cap is fitted to the open-files limit.
pub const FDS_SPARE: usize = 256;
/// Segment and index files a broker keeps open at once; the rest are
/// closed and reopened when read or written.
pub const FILES_OPEN_MAX: usize = 1024;
/// Default fetch size per partition.
pub const FETCH_PARTITION_BYTES_DEFAULT: u32 = 1024 * 1024;
/// Most bytes one fetch response carries over all partitions.
pub const FETCH_RESPONSE_BYTES_MAX: u32 = 8 * 1024 * 1024;
/// Longest a fetch may wait for data.
pub const FETCH_WAIT_MS_MAX: u64 = 30_000;
/// Record bytes a fetch waits for when it does not say (any data answers).
pub const FETCH_MIN_BYTES_DEFAULT: u32 = 1;
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
/// How long a connection's writer waits for the socket to take a reply
/// (a client that does not read) before closing the connection.
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
/// How far back from the log end (in offsets) the producer table is rebuilt at open.
pub const PRODUCER_STATE_SCAN_OFFSETS_MAX: u64 = 100_000;
/// Batches per producer remembered for duplicate detection, as in Kafka.
pub const PRODUCER_BATCHES_REMEMBERED: usize = 5;
/// A producer id without a batch for this long is forgotten by a partition
/// (Kafka's `producer.id.expiration.ms`, 1 day there; 7 days here).
pub const PRODUCER_ID_EXPIRATION_MS: u64 = 7 * 24 * 3600 * 1000;
/// Producer ids whose epoch bump ZooKeeper remembers (to answer a retried
/// bump alike and refuse a stale one); the oldest ids are forgotten first.
pub const PRODUCER_EPOCHS_TRACKED_MAX: usize = 100_000;
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
/// Longest a KIP-848 member may take to revoke partitions (its
/// `rebalance_timeout_ms`, librdkafka's `max.poll.interval.ms`, is capped
/// here; never below its session timeout); past it, it is removed.
pub const KIP848_REBALANCE_TIMEOUT_MS_MAX: u64 = 300_000;
/// Most topics one group member may subscribe to.
pub const GROUP_MEMBER_TOPICS_MAX: usize = 256;
/// Group consumer: how often processed offsets are committed.
pub const GROUP_COMMIT_INTERVAL_MS: u64 = 1000;
/// Group consumer: how long the coordinator may be unreachable before the consumer gives up.
pub const GROUP_COORDINATOR_WAIT_MS_MAX: u64 = 60_000;
/// `cluster watch`: default time between two polls of the cluster.
pub const WATCH_POLL_INTERVAL_MS_DEFAULT: u64 = 250;
/// `cluster watch`: shortest `--interval-ms` accepted.
pub const WATCH_POLL_INTERVAL_MS_MIN: u64 = 50;
/// `cluster watch`: longest `--interval-ms` accepted.
pub const WATCH_POLL_INTERVAL_MS_MAX: u64 = 60_000;
/// `cluster watch`: the screen is redrawn (and keys read) at least this often.
pub const WATCH_REDRAW_INTERVAL_MS: u64 = 100;
/// `cluster watch`: how long a changed leader or ISR stays highlighted.
pub const WATCH_HIGHLIGHT_MS: u64 = 5_000;
/// `cluster watch`: throughput samples kept per topic (one per poll).
pub const WATCH_RATE_SAMPLES_MAX: usize = 200;
/// `cluster watch`: newest cluster events kept for the events pane.
pub const WATCH_EVENTS_SHOWN_MAX: usize = 100;
/// `cluster watch`: most consumer groups described per poll.
pub const WATCH_GROUPS_MAX: usize = 50;
/// `cluster watch` without a terminal: width of the one plain-text frame.
pub const WATCH_PLAIN_WIDTH_COLUMNS: u16 = 120;
/// Upper bounds of the buckets of the brokers' latency histograms (produce,
/// fsync), in microseconds; a last bucket (+Inf) follows.
pub const LATENCY_BUCKETS_US: [u64; 16] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
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
/// Longest client name a group member may give (`JoinGroup`).
pub const CLIENT_ID_CHARS_MAX: usize = 255;
/// Most consumer groups ZooKeeper keeps membership for.
pub const GROUPS_MAX: usize = 10_000;
/// Largest broker id.
pub const BROKER_ID_MAX: u32 = 1_000_000;
/// Most brokers ZooKeeper keeps sessions for.
pub const BROKERS_MAX: usize = 1_000;
/// Longest socket path a broker may register (`sun_path` holds 108 bytes).
pub const SOCKET_PATH_BYTES_MAX: usize = 108;
/// Longest child or signal name a restart report may carry.
pub const PROCESS_NAME_CHARS_MAX: usize = 64;
/// `bench partitioners`: longest wait for a new topic's leaders, for high
/// watermarks to cover every acknowledged message, or for a consumer to progress.
pub const BENCH_SETTLE_TIMEOUT_MS: u64 = 15_000;
/// `bench partitioners`: the producer is polled every this many messages at full speed.
pub const BENCH_POLL_EVERY_MESSAGES: u64 = 32;
/// `bench partitioners`: rounds per (scenario, plugin) by default.
pub const BENCH_ROUNDS_DEFAULT: u32 = 5;
/// `bench partitioners`: most rounds (each round runs every scenario and plugin once).
pub const BENCH_ROUNDS_MAX: u32 = 100;
/// `bench partitioners`: messages of each plugin's untimed warm-up run.
pub const BENCH_WARMUP_MESSAGES_DEFAULT: u64 = 5_000;
/// `bench partitioners` low-rate scenario: the fixed produce rate.
pub const BENCH_LOW_RATE_MSGS_PER_SEC: u64 = 2_000;
/// `bench partitioners` slow-broker scenario: the fixed produce rate, well
/// below what a cluster takes, so the brokers that are not paused keep up.
pub const BENCH_SLOW_BROKER_MSGS_PER_SEC: u64 = 20_000;
/// `bench partitioners` many-partitions scenario: partitions of its topic.
pub const BENCH_MANY_PARTITIONS: u32 = 120;
/// `bench partitioners` slow-broker scenario: how long the broker is paused
/// (SIGSTOP) in each duty cycle; well under the session timeout, so the
/// paused broker keeps its session and its leaderships.
pub const BENCH_SLOW_BROKER_PAUSE_MS: u64 = 200;
/// `bench partitioners` slow-broker scenario: how long the broker runs
/// (SIGCONT) between pauses.
pub const BENCH_SLOW_BROKER_RUN_MS: u64 = 200;
/// `bench consume --group`: most members (threads) of the benchmark's group.
pub const BENCH_GROUP_MEMBERS_MAX: usize = 64;
/// `bench consume --group`: longest a member's poll waits for records.
pub const BENCH_GROUP_POLL_WAIT_MS: u64 = 200;
/// `bench consume --group`: the run ends (short of its target) after the
/// members read nothing for this long; covers a rebalance of every member.
pub const BENCH_GROUP_IDLE_MS_MAX: u64 = 10_000;
/// How often a benchmark with worker threads reports its progress.
pub const BENCH_PROGRESS_EVERY_MS: u64 = 100;
/// Furthest a produced batch's max timestamp may be ahead of the broker's
/// clock (Kafka's `message.timestamp.after.max.ms`); a batch further ahead is
/// refused with `InvalidTimestamp`, so one bad clock cannot pin a partition's
/// segments against time retention.
pub const TIMESTAMP_AHEAD_MS_MAX: i64 = 60 * 60 * 1000;
/// Default of how often ZooKeeper moves leadership back to preferred
/// replicas that are alive and in the ISR (Kafka's
/// `leader.imbalance.check.interval.seconds`; `[zookeeper]
/// leader_rebalance_interval_ms`, 0 turns it off).
pub const LEADER_REBALANCE_INTERVAL_MS_DEFAULT: u64 = 2_000;
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
/// Client: buffer size of a client connection's reader and of its writer
/// (larger than a server's: a producer pipelines whole batches).
pub const CLIENT_CONNECTION_BUFFER_BYTES: usize = 256 * 1024;
/// Client: longest single `poll(2)` wait for answers on broker connections.
pub const CLIENT_POLL_WAIT_MS_MAX: u64 = 60_000;
/// Consumer: how long `ListOffsets` is retried (with backoff) while a
/// partition has no reachable leader.
pub const CONSUMER_LIST_OFFSETS_RETRY_MS_MAX: u64 = 5_000;
/// Consumer: a fetch's socket read timeout is its long-poll wait plus this.
pub const CONSUMER_FETCH_READ_SLACK_MS: u64 = 10_000;
/// Consumer: how long past a fetch's long-poll wait answers are waited for
/// in one poll before the next round.
pub const CONSUMER_FETCH_ANSWER_SLACK_MS: u64 = 1_000;
/// Group consumer: while waiting for an assignment, how often to ask again.
pub const GROUP_REJOIN_POLL_MS: u64 = 100;
/// Group consumer: heartbeat interval until the coordinator names one.
pub const GROUP_HEARTBEAT_INTERVAL_MS_DEFAULT: u64 = 500;
/// Group consumer: shortest heartbeat interval taken from a coordinator.
pub const GROUP_HEARTBEAT_INTERVAL_MS_MIN: u64 = 20;
/// Group consumer: shortest wait of one poll when a heartbeat is due.
pub const GROUP_POLL_WAIT_MS_MIN: u64 = 10;
/// Broker follower fetcher: first wait after a failed fetch round (or one
/// that found a leader change on its way); doubles with jitter up to the
/// max, kept well under `REPLICA_LAG_TIME_MAX_MS` so a retrying follower
/// does not fall out of the ISR by waiting alone.
pub const REPLICA_FETCH_BACKOFF_MS_MIN: u64 = 20;
/// Broker follower fetcher: longest wait between two failed rounds.
pub const REPLICA_FETCH_BACKOFF_MS_MAX: u64 = 200;
/// Broker follower fetcher: how often a fetcher with nothing to fetch
/// from its leader looks again.
pub const REPLICA_FETCHER_IDLE_POLL_MS: u64 = 20;
/// Broker: how often it asks ZooKeeper again while waiting for the
/// cluster id at start.
pub const BROKER_CLUSTER_ID_RETRY_MS: u64 = 100;
/// Broker: while waiting for the cluster id, how often it says it still waits.
pub const BROKER_CLUSTER_ID_WAIT_LOG_MS: u64 = 5_000;
/// Data dir lock: how long a process that finds the lock held waits for
/// the holder's pid to appear in the file (written right after locking).
pub const DIR_LOCK_HOLDER_READ_WAIT_MS: u64 = 200;
/// Data dir lock: how often the lock file is read again during that wait.
pub const DIR_LOCK_HOLDER_READ_POLL_MS: u64 = 10;
/// Worker (`yak-node worker`, `[workers]` in the supervisor's config): most
/// messages per second one producer worker may be asked for.
pub const WORKER_RATE_MSGS_PER_SEC_MAX: f64 = 100_000.0;
/// Worker: largest generated message.
pub const WORKER_MESSAGE_BYTES_MAX: u64 = 1024 * 1024;
/// Worker: how long it waits for the cluster at start-up before it gives
/// up (the supervisor then restarts it with backoff).
pub const WORKER_STARTUP_WAIT_MS: u64 = 30_000;
/// Worker: how often a producer worker prints its counts.
pub const WORKER_REPORT_INTERVAL_MS: u64 = 5_000;
/// Worker: after a stall, a producer worker catches up at most this much
/// of its schedule (never a burst of more than a second's worth).
pub const WORKER_CATCH_UP_MS_MAX: u64 = 1_000;
/// Worker: longest sleep between two checks of its producer.
pub const WORKER_IDLE_SLEEP_MS_MAX: u64 = 100;
/// Supervisor: how often it reaps children and reads signals.
pub const SUPERVISOR_TICK_MS: u64 = 25;
/// Supervisor: how long it waits for ZooKeeper's socket to answer at start.
pub const SUPERVISOR_ZOOKEEPER_READY_TIMEOUT_MS: u64 = 10_000;
/// Supervisor: how often it tries ZooKeeper's socket while waiting for it.
pub const SUPERVISOR_ZOOKEEPER_READY_POLL_MS: u64 = 20;
/// Supervisor: how long children get between SIGTERM and SIGKILL.
pub const SUPERVISOR_SHUTDOWN_GRACE_MS: u64 = 5_000;
/// Supervisor: how long output readers get to drain after the children are gone.
pub const SUPERVISOR_READERS_DRAIN_TIMEOUT_MS: u64 = 1_000;
/// Supervisor: how often it checks whether the readers are done draining.
pub const SUPERVISOR_READERS_DRAIN_POLL_MS: u64 = 10;
/// Supervisor restart policy: first restart delay; doubles after each restart.
pub const SUPERVISOR_RESTART_BACKOFF_MS_MIN: u64 = 100;
/// Supervisor restart policy: the delay never grows past this.
pub const SUPERVISOR_RESTART_BACKOFF_MS_MAX: u64 = 5_000;
/// Supervisor restart policy: ZooKeeper's delay never grows past this
/// (nothing works without it; only the restart budget stops a crash loop).
pub const SUPERVISOR_ZOOKEEPER_RESTART_BACKOFF_MS_MAX: u64 = 200;
/// Supervisor restart policy: a child up this long counts as healthy and
/// its delay goes back to the start.
pub const SUPERVISOR_HEALTHY_AFTER_MS: u64 = 30_000;
/// Supervisor restart policy: more than this many restarts within
/// `SUPERVISOR_RESTART_WINDOW_MS` gives the child up.
pub const SUPERVISOR_RESTARTS_MAX: usize = 10;
/// Supervisor restart policy: see `SUPERVISOR_RESTARTS_MAX`.
pub const SUPERVISOR_RESTART_WINDOW_MS: u64 = 60_000;
/// Supervisor: how long it tries to tell ZooKeeper about a restarted child.
pub const SUPERVISOR_REPORT_TIMEOUT_MS: u64 = 10_000;
/// Supervisor: first wait between two tries of that report; doubles with
/// jitter up to `CLIENT_RETRY_BACKOFF_MS_MAX`.
pub const SUPERVISOR_REPORT_RETRY_MS: u64 = 50;
/// Supervisor: a longer child output line is cut into pieces of this size.
pub const SUPERVISOR_LINE_BYTES_MAX: usize = 64 * 1024;
/// Supervisor: most bytes of children's lines waiting for one of its
/// streams (stdout or stderr); past it new lines are dropped and counted.
pub const SUPERVISOR_QUEUED_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Metrics endpoint: longest wait between two failed `accept`s (the wait
/// starts at 1 ms and doubles).
pub const METRICS_ACCEPT_BACKOFF_MS_MAX: u64 = 1_000;
/// `yak-node produce`: longest wait for a stdin line before the producer
/// is looked after (linger, acks, retries).
pub const PRODUCE_STDIN_WAIT_MS_MAX: u64 = 10;
/// `yak-node produce`: the producer is polled at most this often while
/// lines keep coming.
pub const PRODUCE_POLL_INTERVAL_MS: u64 = 1;
/// Buffer allocated for a frame before its first body bytes arrive; it
/// grows as they do, so a peer that declares a large frame and sends
/// nothing costs no more.
pub const FRAME_FIRST_READ_BYTES: usize = 8 * 1024;
/// Largest leader-epoch checkpoint file read at start-up; the rest is ignored.
pub const LEADER_EPOCH_FILE_BYTES_MAX: u64 = 1024 * 1024;

// Operating a live cluster (topic alter, reassignment, brokers added and removed).

/// Smallest `segment.bytes` a topic may set (`topic alter --segment-bytes`).
pub const SEGMENT_BYTES_MIN: u64 = 1024;
/// Most partitions one `ReassignPartitions` call (one `cluster rebalance`
/// or `remove-broker`) moves.
pub const REASSIGN_MOVES_MAX: usize = 100_000;
/// Producer: metadata is reloaded at least this often, so a topic's new
/// partitions are used (Kafka's `metadata.max.age.ms`, shortened).
pub const PRODUCER_METADATA_MAX_AGE_MS: u64 = 2_000;
/// Follower: how often the catch-up throttle's budget is refilled.
pub const THROTTLE_WINDOW_MS: u64 = 100;
/// `cluster rebalance` / `remove-broker`: how often progress is polled.
pub const REASSIGN_POLL_MS: u64 = 200;
/// `cluster rebalance` / `remove-broker`: longest wait for the moves.
pub const REASSIGN_WAIT_MS_DEFAULT: u64 = 600_000;
/// Supervisor control socket: longest wait for a request's frame, or for
/// the main loop to answer it (twice this for a broker's removal).
pub const SUPERVISOR_CONTROL_TIMEOUT_MS: u64 = 10_000;

// The Kafka front door.

/// Kafka listener: largest request frame accepted (checked before anything
/// is allocated; the body buffer grows with the bytes received).
pub const KAFKA_FRAME_BYTES_MAX: usize = FRAME_BYTES_MAX;
/// Kafka listener: most Kafka client connections served at once per broker.
pub const KAFKA_CONNECTIONS_MAX: usize = 1024;
/// Kafka listener: most requests of one connection read ahead of their
/// responses (librdkafka keeps at most 5 in flight); past it the reader waits.
pub const KAFKA_REQUESTS_IN_FLIGHT_MAX: usize = 64;
/// Kafka listener: longest fetch wait honoured (Kafka clients ask 500 ms).
pub const KAFKA_FETCH_WAIT_MS_MAX: u64 = FETCH_WAIT_MS_MAX;
/// Kafka listener: partitions a fetch or produce may name in one request.
pub const KAFKA_REQUEST_PARTITIONS_MAX: usize = FETCH_PARTITIONS_MAX;
/// Kafka classic groups: most members one group may have (Kafka's `group.max.size`;
/// a join past it gets `GROUP_MAX_SIZE_REACHED`).
pub const CLASSIC_GROUP_MEMBERS_MAX: usize = 1000;
/// Kafka classic groups: most protocols (assignors) one member may offer.
pub const CLASSIC_GROUP_PROTOCOLS_MAX: usize = 16;
/// Kafka classic groups: largest protocol metadata blob (a member's
/// subscription) and largest assignment blob one member may be given.
pub const CLASSIC_GROUP_BLOB_BYTES_MAX: usize = 64 * 1024;
/// Kafka classic groups: longest protocol type, protocol name or instance id.
pub const CLASSIC_GROUP_NAME_BYTES_MAX: usize = 255;
/// Kafka classic groups: a rebalance of a group that was empty waits this
/// long for more members before completing (Kafka's
/// `group.initial.rebalance.delay.ms`, shortened).
pub const CLASSIC_GROUP_INITIAL_REBALANCE_DELAY_MS: u64 = 300;
/// Kafka front door: how often a JoinGroup or SyncGroup waiting for its
/// rebalance asks ZooKeeper again.
pub const KAFKA_GROUP_POLL_MS: u64 = 5;
/// Kafka front door: longest a JoinGroup or SyncGroup waits for its
/// rebalance before it is answered `REBALANCE_IN_PROGRESS` (the client
/// rejoins); a last resort: a join waits at most the member's session
/// timeout, a sync at most the group's rebalance timeout (ZooKeeper's).
pub const KAFKA_GROUP_WAIT_MS_MAX: u64 = 300_000;
/// Longest offset commit metadata string (Kafka's `offset.metadata.max.bytes`).
pub const OFFSET_METADATA_BYTES_MAX: usize = 4096;
