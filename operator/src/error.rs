//! The operator's one error type.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object lacks what every stored object has (name, namespace, uid): it was not read from the API.
    #[error("KafkaMirror has no {0}: only objects read from the API server can be built")]
    MissingObjectKey(&'static str),

    #[error("serializing {what}: {message}")]
    Serialize { what: &'static str, message: String },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
