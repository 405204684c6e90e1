//! Deliver: the target side of the mirror. One producer per process ([`producer`]) writes the records of every
//! stream and settles each delivery in its partition's acknowledgement tracker; [`partitioner`] picks the
//! target partition as the Java producer would; [`failure`] decides what a failed delivery means, and is the
//! one place a record the target cannot take stops the mirror.

mod failure;
pub mod partitioner;
mod producer;

pub(crate) use failure::{
    FailureClass, classify, oversized_record, refused_record, stopped_producer,
};
pub use producer::producer_config;
pub(crate) use producer::{
    DeliveryToken, FatalWatch, MirrorProducer, compresses, create, fit_batches,
};
