//! The kafka-mirror operator. Reconciles each `KafkaMirror` as a pipeline, in the manner of Stackable's
//! operators: validate (pure) → build every desired object (pure, [`build`]) → apply → delete orphans → status.

pub mod build;
pub mod conditions;
mod error;
pub mod labels;
pub mod lag;

pub use error::{Error, Result};
