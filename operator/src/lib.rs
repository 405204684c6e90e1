//! The kafka-mirror operator. Reconciles each `KafkaMirror` as a pipeline, in the manner of Stackable's
//! operators, each step a module of its own with its own error: [`validate`] (pure) → [`observe`] (Secrets,
//! Kafka) → `decide` (pure) → [`desired`] objects (pure) → `apply` → [`publish`] (status, Events);
//! [`reconcile`] calls them in that order. The Kafka-facing core (lag, migration progress, conditions, status)
//! is pure or Kafka-only and tested without an API server; [`reconcile`] and [`controller`] are the Kubernetes
//! side.

mod apply;
mod conditions;
pub mod controller;
mod decide;
pub mod desired;
mod error;
mod events;
#[cfg(test)]
mod fixtures;
mod kafka_view;
mod labels;
pub mod lag;
mod leader;
mod metrics;
mod migration;
pub mod observe;
mod observed;
pub mod publish;
mod reason;
pub mod reconcile;
pub mod secret_values;
mod status;
pub mod validate;

pub use error::{Chain, Error, Result};
