//! The operator's one error type. Only what a retry can fix is an error: a spec that cannot work is a status
//! condition (see [`crate::conditions::Problem`]), never a failed reconcile.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The object lacks what every stored object has (name, namespace, uid): it was not read from the API.
    #[error("KafkaMirror has no {0}: only objects read from the API server can be built")]
    MissingObjectKey(&'static str),

    #[error("serializing {what}: {message}")]
    Serialize { what: &'static str, message: String },

    /// A request to the Kubernetes API server failed.
    #[error("{what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },

    /// The blocking task that talks to Kafka panicked or was cancelled.
    #[error("measuring lag: {0}")]
    KafkaTask(#[from] tokio::task::JoinError),

    /// The Lease holding the leadership was lost or could not be renewed in time.
    #[error("lost the leader Lease {0}: another operator replica may be reconciling now")]
    LostLeadership(String),

    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short, stable label for the `reason` of the failure metric.
    pub fn metric_reason(&self) -> &'static str {
        match self {
            Error::MissingObjectKey(_) => "missing_object_key",
            Error::Serialize { .. } => "serialize",
            Error::Kube { .. } => "kube_api",
            Error::KafkaTask(_) => "kafka_task",
            Error::LostLeadership(_) => "lost_leadership",
            Error::Io { .. } => "io",
        }
    }

    /// Wraps a kube error with what was being done.
    pub fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
        let what = what.into();
        move |source| Error::Kube { what, source }
    }
}
