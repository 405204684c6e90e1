//! Deliver: the target side of the mirror. One producer per process ([`producer`]) writes the records of every
//! stream and settles each delivery in its partition's acknowledgement tracker; [`partitioner`] picks the
//! target partition as the Java producer would; [`failure`] decides what a failed delivery means, and is the
//! one place a record the target cannot take stops the mirror. With `delivery: exactlyOnce` the records go
//! through [`transactions`] instead: a transactional producer per transaction group of source partitions, whose
//! transactions also hold the partitions' source positions on the target. [`offset_syncs`] publishes where the copies of each
//! partition sit on the target (`spec.consumerGroups`).

mod failure;
pub mod offset_syncs;
mod own_topic;
pub mod partitioner;
mod producer;
pub mod transactions;

pub(crate) use failure::{FailedDelivery, oversized_record, settle_failure, stop_at_record};
pub use producer::producer_config;
pub(crate) use producer::{
    DeliveryToken, FatalWatch, MirrorProducer, compresses, create, fit_batches, own_record,
    wait_delivered,
};
