//! The operator's error type: one variant per pipeline step (and the process around it), each carrying that
//! step's own error as its source, in the manner of Stackable's operators. Only what a retry can fix is an
//! error: a spec that cannot work is a status condition (see [`crate::observed::Problem`]), never a failed
//! reconcile.

use std::fmt;

use crate::{apply, controller, desired, leader, observe, publish, validate};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("validating the KafkaMirror")]
    Validate(#[from] validate::Error),

    #[error("observing the mirror's Secrets and Kafka clusters")]
    Observe(#[from] observe::Error),

    #[error("building the desired objects")]
    Desired(#[from] desired::Error),

    #[error("applying the desired objects")]
    Apply(#[from] apply::Error),

    #[error("publishing the status")]
    Publish(#[from] publish::Error),

    #[error("leader election")]
    Leader(#[from] leader::Error),

    #[error("starting the controller")]
    Controller(#[from] controller::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A short, stable label for the `reason` of the failure metric (as kube-rs's controller-rs labels its
    /// errors): what failed, not which step, so that a dashboard groups API server trouble together.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::Validate(validate::Error::MissingObjectKey(_)) => "missing_object_key",
            Error::Observe(observe::Error::KafkaTask { .. }) => "kafka_task",
            Error::Observe(_) | Error::Apply(_) | Error::Publish(_) => "kube_api",
            Error::Desired(_) => "serialize",
            Error::Leader(leader::Error::Lost { .. }) => "lost_leadership",
            Error::Leader(_) => "kube_api",
            Error::Controller(controller::Error::Serve { .. }) => "io",
            Error::Controller(controller::Error::ListMirrors { .. }) => "kube_api",
        }
    }
}

/// An error with every source after it, `outer: inner: innermost`, for logs and the command line. A source
/// whose text its outer error already shows (errors of other crates often print their source too) is not
/// repeated.
pub struct Chain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut shown = self.0.to_string();
        let mut source = self.0.source();
        while let Some(error) = source {
            let text = error.to_string();
            if !shown.contains(&text) {
                shown.push_str(": ");
                shown.push_str(&text);
            }
            source = error.source();
        }
        f.write_str(&shown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chain_shows_each_source_once() {
        let inner = std::io::Error::other("connection refused");
        let error = Error::Controller(controller::Error::Serve {
            source: kafka_mirror_runtime::http::ServeError {
                what: "binding the HTTP endpoint to 0.0.0.0:8080".into(),
                source: inner,
            },
        });
        assert_eq!(
            Chain(&error).to_string(),
            "starting the controller: serving /metrics: binding the HTTP endpoint to 0.0.0.0:8080: connection refused"
        );
    }
}
