//! The one error type of how a mirror reaches Kafka. Mistakes in the document or its Secrets are the user's to
//! fix ([`Error::exit_code`] 2); a cluster that does not answer is not.

use std::path::PathBuf;

use kafka_mirror_crds::{DocumentError, FieldError};
use rdkafka::error::KafkaError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    ReadDocument {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("invalid KafkaMirror document {path}:\n{source}")]
    Document {
        path: PathBuf,
        source: DocumentError,
    },

    /// A field that is well-formed but cannot be used here (e.g. a Secret that cannot be found).
    #[error("{0}")]
    Field(FieldError),

    #[error("{what}: {source}")]
    Kafka { what: String, source: KafkaError },

    /// A cluster did not answer, with librdkafka's reasons and the field to check.
    #[error("{what}: {source}")]
    Broker {
        what: String,
        source: Box<crate::broker_probe::ProbeError>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// 2 for anything the user must fix in the document or its Secrets, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::ReadDocument { .. } | Error::Document { .. } | Error::Field(_) => 2,
            Error::Kafka {
                source: KafkaError::ClientConfig(..),
                ..
            } => 2,
            Error::Kafka { .. } | Error::Broker { .. } => 1,
        }
    }
}
