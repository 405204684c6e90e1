//! `spec.markOrigin`: active-active without loops. A mirrored record carries the id of the cluster it was first
//! written to in the header [`ORIGIN_HEADER`]; a record whose origin is the target cluster is not mirrored back
//! to it. The cluster ids are Kafka's own (the metadata's cluster id), so nothing has to be named by hand and
//! two mirrors of opposite directions agree on them.

use kafka_mirror_crds::ORIGIN_HEADER;
use rdkafka::message::{BorrowedMessage, Headers, Message};

/// The ids of the mirror's two clusters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    source: String,
    target: String,
}

/// What `markOrigin` does with one source record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict<'a> {
    /// It came from the target cluster: not mirrored, its offset committed all the same.
    FromTarget,
    /// It carries an origin already (another cluster's): mirrored with its headers as they are.
    Keep,
    /// It was written to the source: mirrored with this origin header added.
    Mark(&'a str),
}

impl Origin {
    pub fn new(source: String, target: String) -> Self {
        Self { source, target }
    }

    /// The verdict on a record with this origin header value (`None`: no origin header).
    pub fn judge_origin(&self, origin: Option<&[u8]>) -> Verdict<'_> {
        match origin {
            Some(origin) if origin == self.target.as_bytes() => Verdict::FromTarget,
            Some(_) => Verdict::Keep,
            None => Verdict::Mark(&self.source),
        }
    }

    pub fn judge(&self, message: &BorrowedMessage<'_>) -> Verdict<'_> {
        self.judge_origin(origin_of(message))
    }
}

/// The value of a record's first origin header; a header without a value counts as an origin of its own.
fn origin_of<'a>(message: &'a BorrowedMessage<'_>) -> Option<&'a [u8]> {
    message
        .headers()?
        .iter()
        .find(|h| h.key == ORIGIN_HEADER)
        .map(|h| h.value.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_goes_back_to_no_cluster_it_came_from() {
        let origin = Origin::new("cluster-a".into(), "cluster-b".into());
        assert_eq!(origin.judge_origin(None), Verdict::Mark("cluster-a"));
        assert_eq!(origin.judge_origin(Some(b"cluster-b")), Verdict::FromTarget);
        assert_eq!(origin.judge_origin(Some(b"cluster-c")), Verdict::Keep);
        // Its own origin again (a ring through other clusters back to the source): kept, not re-marked.
        assert_eq!(origin.judge_origin(Some(b"cluster-a")), Verdict::Keep);
        assert_eq!(origin.judge_origin(Some(b"")), Verdict::Keep);
    }
}
