//! The Kafka TCP listener: binds `127.0.0.1:PORT` (a port in use is one
//! clear error at start), accepts connections with backoff on failures and
//! serves at most [`KAFKA_CONNECTIONS_MAX`] at once, each on its own threads.
//! Never parses a byte itself.

use super::conn;
use super::native::{BrokerHandler, Zk};
use super::request::Shared;
use super::KafkaConfig;
use crate::limits::KAFKA_CONNECTIONS_MAX;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Why the Kafka listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The port is taken (or not ours to take).
    #[error("cannot listen for Kafka clients on 127.0.0.1:{port}: {source}")]
    Bind {
        /// The port asked for.
        port: u16,
        /// What the kernel said.
        source: std::io::Error,
    },
    /// The accept thread could not be started.
    #[error("cannot start the Kafka accept thread: {0}")]
    Thread(std::io::Error),
}

/// A bound, not yet serving, Kafka listener.
pub struct KafkaListener {
    listener: TcpListener,
    address: SocketAddr,
}

impl KafkaListener {
    /// Binds `127.0.0.1:port` (never `localhost`: it may resolve to `::1`).
    pub fn bind(port: u16) -> Result<KafkaListener, ListenError> {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener =
            TcpListener::bind(addr).map_err(|source| ListenError::Bind { port, source })?;
        let address = listener
            .local_addr()
            .map_err(|source| ListenError::Bind { port, source })?;
        Ok(KafkaListener { listener, address })
    }

    /// The address clients connect to, `127.0.0.1:PORT`.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Serves connections on a thread of its own, forever; their data
    /// calls go to `handler`, the broker's own request handler.
    pub fn serve(
        self,
        config: KafkaConfig,
        handler: Arc<dyn crate::server::Handler>,
    ) -> Result<(), ListenError> {
        let handler: BrokerHandler = handler;
        let shared = Arc::new(Shared {
            zk: Zk::new(config.zk_socket.clone()),
            handler,
            config,
            address: self.address,
        });
        std::thread::Builder::new()
            .name("kafka-accept".into())
            .spawn(move || accept_forever(self.listener, shared))
            .map(|_| ())
            .map_err(ListenError::Thread)
    }
}

fn accept_forever(listener: TcpListener, shared: Arc<Shared>) {
    let open = Arc::new(AtomicUsize::new(0));
    let ids = AtomicU64::new(1);
    let mut backoff_ms = 1;
    tracing::info!(address = %shared.address, "serving Kafka clients");
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(s) => {
                backoff_ms = 1;
                s
            }
            Err(e) => {
                tracing::warn!(error = %e, "kafka accept failed");
                std::thread::sleep(Duration::from_millis(backoff_ms));
                backoff_ms = (backoff_ms * 2).min(1000);
                continue;
            }
        };
        if open.load(Ordering::Relaxed) >= KAFKA_CONNECTIONS_MAX {
            tracing::warn!(%peer, max = KAFKA_CONNECTIONS_MAX, "kafka connection limit reached; closing new connection");
            continue;
        }
        let id = ids.fetch_add(1, Ordering::Relaxed);
        open.fetch_add(1, Ordering::Relaxed);
        let (open2, shared2) = (Arc::clone(&open), Arc::clone(&shared));
        let spawned = std::thread::Builder::new()
            .name(format!("kafka-{id}"))
            .spawn(move || {
                match conn::serve(stream, &shared2) {
                    Ok(()) => tracing::debug!(conn = id, %peer, "kafka client went away"),
                    Err(reason) => {
                        tracing::info!(conn = id, %peer, %reason, "closing kafka connection")
                    }
                }
                open2.fetch_sub(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            open.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(error = %e, "cannot start kafka connection thread");
        }
    }
}
