//! Track acknowledgements: which source offset may be committed, given that the target acknowledges records
//! out of order and may fail some of them. [`tracker`] is the rule as a pure data structure;
//! [`partition_state`] shares it, per assigned partition, between the stream thread that sends records and
//! the producer thread that reports their delivery.

mod partition_state;
mod tracker;

pub(crate) use partition_state::PartitionState;
