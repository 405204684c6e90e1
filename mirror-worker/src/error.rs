//! The worker's one error type. Configuration mistakes exit with code 2, runtime failures with 1.

use kafka_mirror_runtime::http::ServeError;
use rdkafka::error::KafkaError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the document, its Secrets, or asking a cluster through the clients both binaries share.
    #[error(transparent)]
    Clients(#[from] kafka_mirror_clients::Error),

    #[error("{what}: {source}")]
    Kafka { what: String, source: KafkaError },

    /// A field of the document the clusters cannot honour (names the field).
    #[error("{0}")]
    Unsupported(String),

    /// The mirror cannot go on without losing or corrupting records.
    #[error("{0}")]
    Fatal(String),

    #[error(transparent)]
    Serve(#[from] ServeError),

    /// The demo's sample producer or reader.
    #[error(transparent)]
    Samples(#[from] kafka_mirror_samples::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// 2 for anything the user must fix in the document or its Secrets, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Clients(error) => error.exit_code(),
            Error::Kafka {
                source: KafkaError::ClientConfig(..),
                ..
            } => 2,
            Error::Unsupported(_) => 2,
            Error::Kafka { .. } | Error::Fatal(_) | Error::Serve(_) | Error::Samples(_) => 1,
        }
    }
}
