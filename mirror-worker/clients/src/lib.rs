//! How a `KafkaMirror` reaches its two clusters, for the worker that mirrors and the operator that measures:
//! the document validated into a [`MirrorPlan`] with every client's settings ([`client_config`]), Secret values
//! ([`secrets`]), broker names resolved through `hostAliases` ([`host_aliases`]), the mirror group's positions
//! on the source ([`positions`]), the topics it copies ([`topics`]), the end offsets a migration copies up to
//! ([`migration`]) and a cluster asked whether it answers, with librdkafka's reasons when it does not
//! ([`broker_probe`]). Knows Kafka, not Kubernetes, and holds no replication engine.

pub mod broker_probe;
pub mod client_config;
pub mod compacted;
mod error;
pub mod group_sync;
pub mod host_aliases;
pub mod keyed_map;
pub mod migration;
pub mod offset_map;
pub mod plan;
pub mod positions;
pub mod record_age;
pub mod secrets;
pub mod topics;

pub use error::{Error, Result};
pub use plan::MirrorPlan;
