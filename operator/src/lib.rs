//! The kafka-mirror operator. Reconciles each `KafkaMirror` as a pipeline, in the manner of Stackable's
//! operators: validate (pure) → build every desired object (pure, [`desired`]) → apply → delete orphans → status.
//! The Kafka-facing core (lag, migration progress, conditions, status) is pure or Kafka-only and tested
//! without an API server; [`reconcile`] and [`controller`] are the Kubernetes side.

pub mod apply;
pub mod conditions;
pub mod controller;
pub mod desired;
mod error;
pub mod kafka_view;
pub mod labels;
pub mod lag;
pub mod leader;
pub mod metrics;
pub mod migration;
pub mod reason;
pub mod reconcile;
pub mod secret_values;
pub mod status;

pub use error::{Error, Result};
