//! The request loop shared by ZooKeeper and brokers: accept connections,
//! one thread each, read frames, hand each request to a [`Handler`], write
//! the reply. A bad frame closes that connection only, with a logged reason.

use crate::limits::{CONNECTIONS_MAX, FRAME_BYTES_MAX};
use crate::protocol::frame::{self, FrameError};
use crate::protocol::{Call, Reply, Request, Response};
use crate::transport::Listener;
use std::io::{BufReader, BufWriter, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Answers requests. `None` means no response is sent (acks=0 produce).
pub trait Handler: Send + Sync + 'static {
    /// Handles one request.
    fn handle(&self, call: Call) -> Option<Reply>;
}

/// Accepts connections forever, serving each on its own thread.
pub fn serve<H: Handler>(listener: Listener, handler: Arc<H>) {
    let open = Arc::new(AtomicUsize::new(0));
    let ids = AtomicU64::new(1);
    let mut backoff_ms = 1;
    loop {
        let stream = match listener.accept() {
            Ok(s) => {
                backoff_ms = 1;
                s
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(backoff_ms));
                backoff_ms = (backoff_ms * 2).min(1000);
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= CONNECTIONS_MAX {
            tracing::warn!(max = CONNECTIONS_MAX, "connection limit reached; closing new connection");
            continue;
        }
        let conn_id = ids.fetch_add(1, Ordering::Relaxed);
        let handler = Arc::clone(&handler);
        let open = Arc::clone(&open);
        open.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new().name(format!("conn-{conn_id}")).spawn({
            let open = Arc::clone(&open);
            move || {
                if let Err(reason) = serve_connection(stream, &*handler) {
                    tracing::warn!(conn = conn_id, %reason, "closing connection");
                }
                open.fetch_sub(1, Ordering::Relaxed);
            }
        });
        if let Err(e) = spawned {
            open.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "cannot start connection thread");
        }
    }
}

fn serve_connection<H: Handler>(stream: UnixStream, handler: &H) -> Result<(), FrameError> {
    let mut reader = BufReader::with_capacity(64 * 1024, stream.try_clone()?);
    let mut writer = BufWriter::with_capacity(64 * 1024, stream);
    loop {
        let body = match frame::read_body(&mut reader, FRAME_BYTES_MAX) {
            Ok(b) => b,
            Err(FrameError::Closed) => return Ok(()),
            Err(e) => return Err(e),
        };
        let request: Request = frame::decode(&body)?;
        drop(body);
        if let Some(reply) = handler.handle(request.call) {
            let response = Response { correlation_id: request.correlation_id, reply };
            frame::write(&mut writer, &response)?;
        }
        // Pipelined requests already buffered are answered before one flush.
        if reader.buffer().is_empty() {
            writer.flush()?;
        }
    }
}
