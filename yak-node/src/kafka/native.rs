//! The Kafka front door's links into YaK: [`Zk`], one shared connection to
//! ZooKeeper (metadata and admin calls), and [`BrokerLink`], which hands
//! data calls (produce, fetch, list offsets) to this broker's own request
//! handler in-process: the very code the native front door runs (checks,
//! limits, long-poll parking), without a socket hop, a MessagePack round
//! trip or a copy of the records. Never interprets what they answer.

use crate::protocol::connection::Connection;
use crate::protocol::{Call, ClientError, ClusterMetadata, Reply};
use crate::server::{Handled, Handler, Responder};
use crossbeam_channel::{Receiver, Sender};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One connection to ZooKeeper shared by every Kafka connection of a
/// broker, reconnected on the next call after a failure.
pub(super) struct Zk {
    socket: PathBuf,
    conn: Mutex<Option<Connection>>,
}

impl Zk {
    pub fn new(socket: PathBuf) -> Zk {
        Zk {
            socket,
            conn: Mutex::new(None),
        }
    }

    /// Sends one call; after a broken connection, connects again once.
    /// ZooKeeper's refusals come back as `Ok(Reply::Error)`.
    pub fn call(&self, call: &Call) -> Result<Reply, ClientError> {
        let mut guard = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut last = None;
        for _ in 0..2 {
            let conn = match guard.as_mut() {
                Some(c) => c,
                None => match Connection::connect(&self.socket) {
                    Ok(c) => guard.insert(c),
                    Err(e) => return Err(e),
                },
            };
            match conn.call(call) {
                Ok(reply) => return Ok(reply),
                // A refusal is an answer: handlers match `Reply::Error`, the
                // connection is fine and nothing is sent twice.
                Err(ClientError::Server(e)) => return Ok(Reply::Error(e)),
                Err(e) => {
                    *guard = None;
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or_else(|| ClientError::Unexpected("no attempt made".into())))
    }

    /// Metadata of `topics` (every topic when `None`), all pages joined.
    pub fn metadata(&self, topics: Option<Vec<String>>) -> Result<ClusterMetadata, ClientError> {
        crate::protocol::metadata_pages::read_metadata(topics, |call| match self.call(call) {
            Ok(Reply::Error(e)) => Err(ClientError::Server(e)),
            other => other,
        })
    }
}

/// This broker's request handler, as the Kafka front door calls it.
pub(super) type BrokerHandler = Arc<dyn Handler>;

/// What the answering side hears about one call.
enum Note {
    /// The handler returned: with the answer if it gave one at once;
    /// `more` if it kept the responder to answer later.
    Handled {
        id: u64,
        reply: Option<Reply>,
        more: bool,
    },
    /// The call's responder went away, with the answer it was given.
    Responded { id: u64, reply: Option<Reply> },
}

/// The sending half of a Kafka connection's link to its broker: runs each
/// call on the calling thread (the connection's reader), as the native
/// server's reader does.
pub(super) struct BrokerLink {
    handler: BrokerHandler,
    notes: Sender<Note>,
    next_id: u64,
}

/// The receiving half: answers matched to their calls by id.
pub(super) struct BrokerReplies {
    notes: Receiver<Note>,
    /// What is known of calls not yet collected: half-heard ones (one of
    /// their two notes) and finished ones (`None`: never answered).
    heard: HashMap<u64, Heard>,
}

/// One call's notes so far.
enum Heard {
    /// The handler returned, keeping the responder; `reply` if it answered.
    Handled { reply: Option<Reply> },
    /// The responder went away first (a reply sent from another thread
    /// before the handler returned).
    Responded { reply: Option<Reply> },
    /// Both heard: the answer, if any.
    Done(Option<Reply>),
}

/// A link to `handler` and the half that collects its answers.
pub(super) fn connect(handler: BrokerHandler) -> (BrokerLink, BrokerReplies) {
    // Unbounded: a responder's delivery must never block the thread that
    // completes the call (the flusher, the fetch waker). The connection's
    // outcome queue bounds how many calls are in flight.
    let (tx, rx) = crossbeam_channel::unbounded();
    (
        BrokerLink {
            handler,
            notes: tx,
            next_id: 1,
        },
        BrokerReplies {
            notes: rx,
            heard: HashMap::new(),
        },
    )
}

impl BrokerLink {
    /// Runs one call now; returns its id. Its answer, now or later, is
    /// collected with [`BrokerReplies::collect`], except an acks=0
    /// produce's, which has none.
    pub fn send(&mut self, call: Call) -> Result<u64, LinkError> {
        let id = self.next_id;
        self.next_id += 1;
        let notes = self.notes.clone();
        let responder = Responder::local(id, move |reply| {
            let _ = notes.send(Note::Responded { id, reply });
        });
        let note = match self.handler.handle(call, responder) {
            Handled::Reply(reply) => Note::Handled {
                id,
                reply: Some(reply),
                more: false,
            },
            Handled::Deferred => Note::Handled {
                id,
                reply: None,
                more: true,
            },
            Handled::NoReply => Note::Handled {
                id,
                reply: None,
                more: false,
            },
        };
        self.notes.send(note).map_err(|_| LinkError::Closed)?;
        Ok(id)
    }

    /// Nothing is buffered in-process: kept so callers mark where a batch
    /// of calls ends.
    pub fn flush(&mut self) -> Result<(), LinkError> {
        Ok(())
    }
}

/// Why a call's answer cannot be had.
#[derive(Debug, thiserror::Error)]
pub(super) enum LinkError {
    /// The other half is gone (the connection is closing).
    #[error("the link to the broker is closed")]
    Closed,
    /// The broker dropped the call without an answer.
    #[error("the broker gave no answer to call {0}")]
    Unanswered(u64),
}

impl BrokerReplies {
    /// The answers to `ids`, in that order, waiting as long as it takes.
    pub fn collect(&mut self, ids: &[u64]) -> Result<Vec<Reply>, LinkError> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            loop {
                if matches!(self.heard.get(&id), Some(Heard::Done(_))) {
                    match self.heard.remove(&id) {
                        Some(Heard::Done(Some(reply))) => out.push(reply),
                        _ => return Err(LinkError::Unanswered(id)),
                    }
                    break;
                }
                let note = self.notes.recv().map_err(|_| LinkError::Closed)?;
                self.hear(note);
            }
        }
        Ok(out)
    }

    /// Files one note: a call is done once both of its notes are heard
    /// (or at once, when the handler answered and keeps nothing). A call
    /// with no answer coming that nobody will collect (acks=0) is forgotten.
    fn hear(&mut self, note: Note) {
        let (id, now) = match note {
            Note::Handled { id, reply, more } => {
                let now = match (self.heard.remove(&id), more) {
                    // No answer now or later (acks=0): nobody collects it.
                    (_, false) if reply.is_none() => return,
                    (Some(Heard::Responded { reply: r }), _) => Heard::Done(reply.or(r)),
                    (_, true) => Heard::Handled { reply },
                    // Answered at once: its responder was dropped inside the
                    // handler, and its note came first.
                    (_, false) => Heard::Done(reply),
                };
                (id, now)
            }
            Note::Responded { id, reply } => {
                let now = match self.heard.remove(&id) {
                    Some(Heard::Handled { reply: r }) => Heard::Done(reply.or(r)),
                    _ => Heard::Responded { reply },
                };
                (id, now)
            }
        };
        self.heard.insert(id, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{ErrorBody, ErrorCode};

    /// Answers by the call's partition number: 0 at once, 1 later from
    /// another thread, 2 never (dropped), 3 not at all (acks=0).
    struct Scripted;

    fn reply(n: u32) -> Reply {
        Reply::Error(ErrorBody::new(ErrorCode::InvalidRequest, format!("{n}")))
    }

    impl Handler for Scripted {
        fn handle(&self, call: Call, responder: Responder) -> Handled {
            let Call::ListOffsets { partition, .. } = call else {
                return Handled::NoReply;
            };
            match partition {
                0 => Handled::Reply(reply(0)),
                1 => {
                    std::thread::spawn(move || {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                        responder.send(reply(1));
                    });
                    Handled::Deferred
                }
                // Answered on another thread before the handler returns.
                4 => {
                    std::thread::spawn(move || responder.send(reply(4)))
                        .join()
                        .expect("test: thread");
                    Handled::Deferred
                }
                2 => Handled::Deferred,
                _ => Handled::NoReply,
            }
        }
    }

    fn call(partition: u32) -> Call {
        Call::ListOffsets {
            topic: "t".into(),
            partition,
            spec: crate::protocol::OffsetSpec::Latest,
        }
    }

    fn text(r: &Reply) -> String {
        match r {
            Reply::Error(e) => e.message.clone(),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn given_calls_answered_now_later_and_never_when_collecting_should_give_each_answer_by_id_and_forget_acks0(
    ) {
        let (mut link, mut replies) = connect(Arc::new(Scripted));
        let ids: Vec<u64> = [1, 3, 0, 4, 3]
            .into_iter()
            .map(|p| link.send(call(p)).expect("test: send"))
            .collect();
        let wanted = [ids[0], ids[2], ids[3]];
        let got = replies.collect(&wanted).expect("test: collect");
        assert_eq!(
            got.iter().map(text).collect::<Vec<_>>(),
            ["1", "0", "4"],
            "in the order asked, whichever came first"
        );
        assert!(
            replies.heard.is_empty(),
            "nothing kept for calls with no answer coming: {}",
            replies.heard.len()
        );
        let dropped = link.send(call(2)).expect("test: send");
        assert!(
            matches!(replies.collect(&[dropped]), Err(LinkError::Unanswered(id)) if id == dropped),
            "a dropped responder is an error, not a wait forever"
        );
    }
}
