//! The kafka-mirror replication engine: copies the whitelisted topics of a source Kafka cluster to a target
//! cluster, keeping keys, values, headers, timestamps and per-key order, and committing a source offset only
//! after the target acknowledged every record before it.
//!
//! It knows Kafka, not Kubernetes: its whole input is a `KafkaMirror` document and Secret values from files
//! or environment variables, read through `kafka-mirror-clients` (which the operator shares).

mod ack_tracker;
mod assignment;
pub mod demo;
pub mod discovery;
pub mod engine;
mod error;
pub mod health;
pub mod metrics;
mod partition_state;
pub mod partitioner;
mod producer;
mod shutdown_gate;
mod stream;
mod truncation;

pub use engine::{Engine, EngineOptions, Summary, TopicSummary};
pub use error::{Error, Result};
pub use producer::producer_config;
pub use stream::consumer_config;
