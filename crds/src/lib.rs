//! The `KafkaMirror` API (`kafkamirror.io/v1alpha1`): spec and status types, their defaults, the checks that
//! do not fit in the OpenAPI schema, and the generated CustomResourceDefinition.
//!
//! Both the operator and `mirror-worker` read a `KafkaMirror` through this crate, so a document means the
//! same thing to `kubectl apply` and to `mirror-worker --config`.

pub mod cluster;
pub mod consumer_groups;
mod crd;
mod document;
mod error;
pub mod spec;
pub mod status;
pub mod template;
mod topic_filter;
pub mod topics;
mod validation;
pub mod worker_pod;

pub use crd::crd_yaml;
pub use document::parse_document;
pub use error::{DocumentError, FieldError};
pub use spec::{Delivery, KafkaMirror, KafkaMirrorSpec, Mode, ORIGIN_HEADER, Partitioning};
pub use topic_filter::{OWN_TOPIC_PREFIX, TopicFilter};
pub use validation::{refused_config_key, validate};

/// `apiVersion` of the resource.
pub const API_VERSION: &str = "kafkamirror.io/v1alpha1";
/// `kind` of the resource.
pub const KIND: &str = "KafkaMirror";
