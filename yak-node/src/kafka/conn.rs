//! One Kafka connection. The reader thread reads frames and dispatches
//! each in turn (data calls run on it in the broker's handler, which
//! answers at once or later, without waiting for answers); the writer
//! thread takes outcomes in request order, waits for the broker's answers
//! each needs and writes the response, so responses
//! leave in request order, as Kafka clients require. A malformed request
//! closes this connection only. At most [`KAFKA_REQUESTS_IN_FLIGHT_MAX`]
//! requests wait for their responses; past that the reader waits.

use super::dispatch;
use super::frame::{KafkaFrameError, TimedReader};
use super::native::{self, BrokerReplies};
use super::request::Outcome;
use super::request::Shared;
use crate::limits::{KAFKA_REQUESTS_IN_FLIGHT_MAX, SERVER_WRITE_TIMEOUT_MS};
use crate::protocol::frame::FrameError;
use crossbeam_channel::{Receiver, TryRecvError};
use std::io::{BufWriter, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// Serves one connection until the client closes it or breaks the protocol.
pub fn serve(stream: TcpStream, shared: &Shared) -> Result<(), KafkaFrameError> {
    stream.set_nodelay(true).map_err(FrameError::from)?;
    stream
        .set_write_timeout(Some(Duration::from_millis(SERVER_WRITE_TIMEOUT_MS)))
        .map_err(FrameError::from)?;
    let (mut link, replies) = native::connect(std::sync::Arc::clone(&shared.handler));
    let write_half = stream.try_clone().map_err(FrameError::from)?;
    let (tx, rx) = crossbeam_channel::bounded::<Outcome>(KAFKA_REQUESTS_IN_FLIGHT_MAX);
    let writer = std::thread::Builder::new()
        .name("kafka-writer".into())
        .spawn(move || write_responses(write_half, replies, rx))
        .map_err(FrameError::from)?;
    let mut reader = TimedReader::new(stream.try_clone().map_err(FrameError::from)?);
    let result = loop {
        let frame = match reader.read_frame() {
            Ok(f) => f,
            Err(FrameError::Closed) => break Ok(()),
            Err(e) => break Err(KafkaFrameError::from(e)),
        };
        let outcome = match dispatch::dispatch(shared, &mut link, frame) {
            Ok(o) => o,
            Err(e) => break Err(e),
        };
        if let Err(e) = link.flush() {
            break Err(KafkaFrameError::Broker(e.to_string()));
        }
        if matches!(outcome, Outcome::Nothing) {
            continue;
        }
        if tx.send(outcome).is_err() {
            // The writer stopped: it says why below.
            break Ok(());
        }
    };
    drop(tx);
    if result.is_err() {
        let _ = stream.shutdown(Shutdown::Both);
    }
    let written = writer
        .join()
        .unwrap_or_else(|_| Err(KafkaFrameError::Broker("writer thread panicked".into())));
    let _ = stream.shutdown(Shutdown::Both);
    result.and(written)
}

/// Writes responses in request order, waiting for the broker's answers.
/// On any failure the socket is shut down, so the reader stops too.
fn write_responses(
    stream: TcpStream,
    mut replies: BrokerReplies,
    rx: Receiver<Outcome>,
) -> Result<(), KafkaFrameError> {
    let mut out = BufWriter::with_capacity(256 * 1024, stream);
    let result = (|| loop {
        let outcome = match rx.try_recv() {
            Ok(o) => o,
            Err(TryRecvError::Empty) => {
                out.flush().map_err(FrameError::from)?;
                match rx.recv() {
                    Ok(o) => o,
                    Err(_) => return Ok(()),
                }
            }
            Err(TryRecvError::Disconnected) => {
                out.flush().map_err(FrameError::from)?;
                return Ok(());
            }
        };
        let frame = match outcome {
            Outcome::Ready(frame) => frame,
            Outcome::Broker { ids, finish } => {
                // Whatever is already written goes out before a wait.
                out.flush().map_err(FrameError::from)?;
                let answers = replies
                    .collect(&ids)
                    .map_err(|e| KafkaFrameError::Broker(e.to_string()))?;
                finish(answers)?
            }
            Outcome::Nothing => continue,
        };
        out.write_all(&frame).map_err(FrameError::from)?;
    })();
    if result.is_err() {
        let _ = out.get_ref().shutdown(Shutdown::Both);
    }
    result
}
