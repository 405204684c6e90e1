//! The commit protocol: a source offset is committed only once the target acknowledged every record before
//! it. The stream stores acknowledged offsets for librdkafka to commit on its own; a rebalance commits the
//! partitions a member keeps, and a stopping stream commits and confirms before it leaves the group.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, info};

use super::consumer_context::StreamContext;
use crate::acks::PartitionState;

/// Stores the committable offset of every listed partition that moved since it was last stored. librdkafka
/// commits stored offsets on its own: every commit interval, when partitions are unassigned, and when the
/// consumer closes. (A synchronous commit from the polling thread could wait forever on a rebalance that only
/// this same thread can serve.)
pub fn store(consumer: &BaseConsumer<StreamContext>, states: &[Arc<PartitionState>]) {
    let (tpl, storing) = offsets_list(states, PartitionState::store_candidate);
    if storing.is_empty() {
        return;
    }
    match consumer.store_offsets(&tpl) {
        Ok(()) => {
            consumer.context().stored_uncommitted();
            for (state, offset) in storing {
                state.stored(offset);
            }
        }
        // A partition revoked in the meantime refuses the store; its new owner resumes from the last commit.
        Err(error) => debug!(%error, "storing acknowledged offsets failed"),
    }
}

/// Stores the acknowledged offsets of `kept` (the partitions that stay with this member through a rebalance)
/// and commits every stored offset of the assignment, asynchronously. Called from the rebalance callbacks.
///
/// A cooperative rebalance keeps those partitions flowing, but nothing of them is committed while it lasts:
/// librdkafka's interval commit skips every tick outside its steady join state, and no commit could pass
/// anyway while this member's JoinGroup is pending — the coordinator serves one request per connection at a
/// time, and the JoinGroup waits until every member has rejoined (each hears of the rebalance at its next
/// heartbeat; a dead member is only dropped at its session timeout).
/// Committing when the revoke ends (just before the rejoin; librdkafka completes the revoke only once this
/// commit is answered) and again when the new assignment arrives keeps a worker killed during a rebalance from
/// re-reading more than the join phase itself carried. Apache Kafka accepts both: the group is stable or
/// preparing a rebalance with this member's generation then (it refuses commits, REBALANCE_IN_PROGRESS, only
/// between the JoinGroup and SyncGroup answers, or ILLEGAL_GENERATION with an older generation).
pub(super) fn commit_kept_partitions(
    consumer: &BaseConsumer<StreamContext>,
    kept: &[Arc<PartitionState>],
) {
    store(consumer, kept);
    match consumer.commit_consumer_state(CommitMode::Async) {
        Ok(()) => {}
        // Nothing stored since the last commit.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(error) => {
            debug!(stream = consumer.context().stream, %error, "committing the kept partitions was not sent")
        }
    }
}

/// Sends a commit of the committable offsets of `states` without waiting for it: with `delivery: exactlyOnce`
/// partitions leaving a stream, whose source group commit serves the lag only (the positions on the target are
/// what the next owner starts from).
pub(super) fn commit_unconfirmed(
    consumer: &BaseConsumer<StreamContext>,
    states: &[Arc<PartitionState>],
) {
    let (tpl, wanted) = offsets_list(states, PartitionState::committable);
    if !wanted.is_empty()
        && let Err(error) = consumer.commit(&tpl, CommitMode::Async)
    {
        debug!(stream = consumer.context().stream, %error, "committing the leaving partitions on the source was not sent");
    }
}

/// Commits the committable offsets of `states` and confirms them by reading the group's committed offsets
/// back, retrying until `deadline`. Does not rely on commit callbacks (librdkafka sends none for an empty
/// commit) and never blocks on a synchronous commit, which could wait on a rebalance only this thread
/// serves. Records polled meanwhile are dropped unstored: their next owner reads them again.
pub fn commit_and_confirm(
    consumer: &BaseConsumer<StreamContext>,
    states: &[Arc<PartitionState>],
    deadline: Instant,
) -> bool {
    let (tpl, wanted) = offsets_list(states, PartitionState::committable);
    if wanted.is_empty() {
        return true;
    }
    loop {
        if let Err(error) = consumer.commit(&tpl, CommitMode::Async) {
            debug!(%error, "final commit not sent");
        }
        let round = Instant::now() + Duration::from_millis(300);
        while Instant::now() < round.min(deadline) {
            let _ = consumer.poll(Duration::from_millis(50));
        }
        let confirmed = consumer.committed_offsets(tpl.clone(), Duration::from_secs(2)).is_ok_and(|committed| {
            wanted.iter().all(|(state, offset)| {
                matches!(committed.find_partition(&state.topic, state.partition).map(|e| e.offset()), Some(Offset::Offset(c)) if c >= *offset)
            })
        });
        if confirmed {
            let context = consumer.context();
            for (topic, offsets) in super::consumer_context::by_topic(&tpl) {
                info!(mirror = %context.mirror, stream = context.stream, topic, offsets = ?offsets, "committed before leaving the group");
            }
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
    }
}

/// The offsets `offset_of` picks for `states`, as a list for librdkafka and as pairs for the caller.
fn offsets_list(
    states: &[Arc<PartitionState>],
    offset_of: impl Fn(&PartitionState) -> Option<i64>,
) -> (TopicPartitionList, Vec<(&Arc<PartitionState>, i64)>) {
    let mut tpl = TopicPartitionList::new();
    let mut picked = Vec::new();
    for state in states {
        if let Some(offset) = offset_of(state)
            && tpl
                .add_partition_offset(&state.topic, state.partition, Offset::Offset(offset))
                .is_ok()
        {
            picked.push((state, offset));
        }
    }
    (tpl, picked)
}
