//! What every Kafka request handler is given and gives back: the state a
//! listener's connections share, a request's outcome (a response now, one
//! built from the broker's answers, or none), and names as Kafka encodes them.

use super::frame::KafkaFrameError;
use super::native::{BrokerHandler, Zk};
use super::KafkaConfig;
use crate::protocol::Reply;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use std::net::SocketAddr;

/// What every connection of one listener shares.
pub(super) struct Shared {
    pub config: KafkaConfig,
    pub zk: Zk,
    /// This broker's request handler: data calls run in it directly.
    pub handler: BrokerHandler,
    /// This listener's own address, as advertised.
    pub address: SocketAddr,
}

/// Builds a response frame from the broker's answers to the calls sent.
pub type Finish = Box<dyn FnOnce(Vec<Reply>) -> Result<Vec<u8>, KafkaFrameError> + Send>;

/// What a request turned into.
pub enum Outcome {
    /// The response frame, ready now.
    Ready(Vec<u8>),
    /// Calls sent to the broker (by id); `finish` builds the response from
    /// their answers, in this order.
    Broker { ids: Vec<u64>, finish: Finish },
    /// No response at all (`acks=0` produce).
    Nothing,
}

/// A Kafka topic name from ours.
pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}
