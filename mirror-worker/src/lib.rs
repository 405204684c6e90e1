//! The kafka-mirror replication engine: copies the whitelisted topics of a source Kafka cluster to a target
//! cluster, keeping keys, values, headers, timestamps and per-key order, and committing a source offset only
//! after the target acknowledged every record before it.
//!
//! It knows Kafka, not Kubernetes: its whole input is a `KafkaMirror` document and Secret values from files
//! or environment variables.

mod ack_tracker;
pub mod allocator;
mod assignment;
pub mod broker_probe;
mod client_config;
pub mod demo;
pub mod discovery;
pub mod engine;
mod error;
pub mod health;
pub mod host_aliases;
pub mod http;
pub mod metrics;
mod partition_state;
pub mod partitioner;
pub mod plan;
pub mod positions;
pub mod process;
mod producer;
pub mod secrets;
mod shutdown_gate;
mod stream;
pub mod testkit;
mod truncation;

pub use engine::{Engine, EngineOptions, Summary, TopicSummary};
pub use error::{Error, Result};
pub use plan::MirrorPlan;
pub use producer::producer_config;
pub use stream::consumer_config;
