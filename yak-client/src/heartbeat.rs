//! A group member's background heartbeat (Kafka's KIP-62): a thread with
//! its own ZooKeeper connection keeps the member alive while the caller is
//! busy between polls (a slow stdout, a long job), so the session timeout
//! only measures whether the process lives. How long the caller may go
//! without polling is bounded separately: past the max poll interval the
//! thread leaves the group for it (Kafka's `max.poll.interval.ms`).
//!
//! The thread never acts on the group itself: it heartbeats for the
//! generation the member holds and hands anything that needs the member
//! (a rebalance, a lost membership, an unreachable coordinator) over as
//! [`News`], which [`super::GroupConsumer`] picks up at its next poll. News
//! about a generation the member no longer holds is dropped.

use super::metadata::MetadataCache;
use super::ClientError;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use yak_protocol::{Call, ErrorCode, MemberStatus, Reply};

/// What the heartbeat thread learned that the member must act on.
#[derive(Debug)]
pub enum News {
    /// The coordinator answered with a rebalance or a new generation.
    Status(MemberStatus),
    /// The coordinator no longer knows the member (expired, or restarted).
    Gone,
    /// The caller did not poll within the max poll interval: the thread left the group.
    PollIntervalExceeded(Duration),
    /// The coordinator refused the heartbeat for another reason.
    Failed(ClientError),
}

struct Beat {
    member_id: String,
    /// The generation held; no heartbeats while `None` (the member joins itself).
    generation: Option<u32>,
    every: Duration,
    last_poll: Instant,
    news: Option<(String, u32, News)>,
    /// Since when heartbeats fail for a reason that may pass (ZooKeeper restarting).
    unreachable_since: Option<(Instant, String)>,
    /// The thread left the group for a caller past its max poll interval.
    left: bool,
    stop: bool,
}

type Shared = Arc<(Mutex<Beat>, Condvar)>;

/// The heartbeat thread of one group member; stopped on drop.
pub struct Heartbeat {
    shared: Shared,
    thread: Option<JoinHandle<()>>,
}

fn lock(shared: &Shared) -> MutexGuard<'_, Beat> {
    shared
        .0
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Heartbeat {
    /// Starts the thread for `group` of the cluster at `dir`.
    pub fn start(
        dir: &Path,
        group: &str,
        every: Duration,
        max_poll_interval: Duration,
    ) -> Result<Heartbeat, ClientError> {
        let beat = Beat {
            member_id: String::new(),
            generation: None,
            every,
            last_poll: Instant::now(),
            news: None,
            unreachable_since: None,
            left: false,
            stop: false,
        };
        let shared: Shared = Arc::new((Mutex::new(beat), Condvar::new()));
        let worker = Worker {
            dir: dir.to_path_buf(),
            group: group.to_string(),
            max_poll_interval,
            cache: None,
        };
        let for_thread = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("group-heartbeat".into())
            .spawn(move || worker.run(&for_thread))
            .map_err(|e| ClientError::Invalid(format!("cannot start the heartbeat thread: {e}")))?;
        Ok(Heartbeat {
            shared,
            thread: Some(thread),
        })
    }

    /// The member now holds `generation` (or nothing) as `member_id`,
    /// heartbeating every `every`; earlier news is dropped.
    pub fn hold(&self, member_id: &str, generation: Option<u32>, every: Duration) {
        let mut b = lock(&self.shared);
        b.member_id = member_id.to_string();
        b.generation = generation;
        b.every = every;
        b.news = None;
        b.unreachable_since = None;
        b.left = false;
        self.shared.1.notify_all();
    }

    /// The caller polled: the max poll interval starts again. Returns news
    /// about the generation the member holds, if any.
    pub fn polled(&self) -> Option<News> {
        let mut b = lock(&self.shared);
        b.last_poll = Instant::now();
        let (member, generation, news) = b.news.take()?;
        (member == b.member_id && Some(generation) == b.generation).then_some(news)
    }

    /// Since when heartbeats fail because the coordinator cannot be reached, and the last error.
    pub fn unreachable_since(&self) -> Option<(Instant, String)> {
        lock(&self.shared).unreachable_since.clone()
    }

    /// Stops the thread and waits for it (before the member leaves the group).
    pub fn stop(&mut self) {
        lock(&self.shared).stop = true;
        self.shared.1.notify_all();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::warn!("the heartbeat thread panicked");
            }
        }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Worker {
    dir: PathBuf,
    group: String,
    max_poll_interval: Duration,
    cache: Option<MetadataCache>,
}

impl Worker {
    fn run(mut self, shared: &Shared) {
        let mut guard = lock(shared);
        loop {
            let every = guard.every;
            guard = shared
                .1
                .wait_timeout(guard, every)
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
            if guard.stop {
                return;
            }
            if guard.left {
                continue;
            }
            let Some(generation) = guard.generation else {
                continue;
            };
            let member_id = guard.member_id.clone();
            if member_id.is_empty() {
                continue;
            }
            let idle = guard.last_poll.elapsed();
            drop(guard);
            let news = if idle > self.max_poll_interval {
                self.leave(&member_id);
                Some(News::PollIntervalExceeded(idle))
            } else {
                self.beat(shared, &member_id, generation)
            };
            guard = lock(shared);
            let current = guard.member_id == member_id && guard.generation == Some(generation);
            if let (Some(news), true) = (news, current) {
                // Left the group: no heartbeats until the member rejoins.
                guard.left = matches!(news, News::PollIntervalExceeded(_));
                guard.news = Some((member_id, generation, news));
            }
        }
    }

    /// One heartbeat; `None` when all is well.
    fn beat(&mut self, shared: &Shared, member_id: &str, generation: u32) -> Option<News> {
        let call = Call::GroupHeartbeat {
            group: self.group.clone(),
            member_id: member_id.to_string(),
            generation,
        };
        let reply = self.call(&call);
        let mut b = lock(shared);
        match reply {
            Ok(Reply::GroupMember(status)) => {
                b.unreachable_since = None;
                (status.rebalancing || status.generation != generation)
                    .then_some(News::Status(status))
            }
            Ok(other) => Some(News::Failed(ClientError::Unexpected(format!("{other:?}")))),
            Err(e) if e.code() == Some(&ErrorCode::UnknownMember) => Some(News::Gone),
            Err(e) if e.is_retriable() || matches!(e, ClientError::NoCluster { .. }) => {
                tracing::warn!(error = %e, "heartbeat failed; retrying");
                let since = b
                    .unreachable_since
                    .as_ref()
                    .map_or_else(Instant::now, |u| u.0);
                b.unreachable_since = Some((since, e.to_string()));
                None
            }
            Err(e) => Some(News::Failed(e)),
        }
    }

    fn leave(&mut self, member_id: &str) {
        let call = Call::LeaveGroup {
            group: self.group.clone(),
            member_id: member_id.to_string(),
        };
        if let Err(e) = self.call(&call) {
            tracing::warn!(error = %e, "could not leave the group; it will expire");
        }
    }

    /// One call on the thread's own ZooKeeper connection, opened on first use
    /// and again after a failure; never waits for a restarting ZooKeeper.
    fn call(&mut self, call: &Call) -> Result<Reply, ClientError> {
        let cache = match self.cache.as_mut() {
            Some(c) => c,
            None => self
                .cache
                .insert(MetadataCache::connect_waiting(&self.dir, Duration::ZERO)?),
        };
        let reply = cache.zookeeper_call_once(call);
        if matches!(
            reply,
            Err(ClientError::Connect { .. }
                | ClientError::Connection { .. }
                | ClientError::NoCluster { .. })
        ) {
            self.cache = None;
        }
        reply
    }
}
