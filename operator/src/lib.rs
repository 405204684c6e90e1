//! The kafka-mirror operator. Reconciles each `KafkaMirror` as a pipeline, in the manner of Stackable's
//! operators, each step a module of its own with its own error: [`validate`] (pure) → [`observe`] (Secrets,
//! Kafka) → [`decide`] (pure) → [`desired`] objects (pure) → [`apply`] → [`publish`] (status, Events);
//! [`reconcile`] calls them in that order. The Kafka-facing core (lag, migration progress, conditions, status)
//! is pure or Kafka-only and tested without an API server; [`reconcile`] and [`controller`] are the Kubernetes
//! side.

pub mod apply;
pub mod conditions;
pub mod controller;
pub mod decide;
pub mod desired;
mod error;
pub mod events;
#[cfg(test)]
mod fixtures;
pub mod kafka_view;
pub mod labels;
pub mod lag;
pub mod leader;
pub mod metrics;
pub mod migration;
pub mod observe;
pub mod observed;
pub mod publish;
pub mod reason;
pub mod reconcile;
pub mod secret_values;
pub mod status;
pub mod validate;

pub use error::{Chain, Error, Result};
