//! The kafka-mirror replication engine: copies the whitelisted topics of a source Kafka cluster to a target
//! cluster, keeping keys, values, headers, timestamps and per-key order, and committing a source offset only
//! after the target acknowledged every record before it.
//!
//! It knows Kafka, not Kubernetes: its whole input is a `KafkaMirror` document and Secret values from files
//! or environment variables, read through `kafka-mirror-clients` (which the operator shares).
//!
//! The modules follow a record through the mirror: `discover` finds the source topics to copy and where they
//! go, and `topic_sync` keeps each target topic's partitions and configs following its source topic's;
//! `consume` reads them in the mirror's consumer group; `deliver` writes them to the target; `acks` tracks the
//! target's acknowledgements, which decide what may be committed; `engine` runs it all and ends it; `observe`
//! counts and reports. [`demo`] runs the whole on two in-process clusters.
//!
//! A user of the library builds an [`Engine`] from a [`MirrorPlan`](kafka_mirror_clients::MirrorPlan) and
//! serves its [`metrics::Metrics`] and [`health::Health`] (see [`health::WorkerEndpoints`]).

mod acks;
mod consume;
mod deliver;
pub mod demo;
mod discover;
mod engine;
mod error;
mod observe;
mod topic_sync;

/// The source consumer and target producer settings the engine uses, for a benchmark's consume-alone and
/// produce-alone limits.
pub use consume::consumer_config;
pub use deliver::{partitioner, producer_config};
pub use engine::{Engine, EngineOptions, Summary, TopicSummary};
pub use error::{Error, Result};
pub use observe::{health, metrics};
