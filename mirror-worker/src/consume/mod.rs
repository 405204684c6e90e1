//! Consume: the source side of the mirror. A stream ([`stream`], MirrorMaker's `--num.streams`) is one
//! consumer in the mirror's group, on its own thread, handing each record to the shared target producer, as
//! its [`settings`] say. Its consumer context ([`consumer_context`]) keeps the partitions it owns right across rebalances; the commit
//! protocol ([`commit`]) moves the group's committed offsets only up to what the target acknowledged;
//! [`truncation`] stops the mirror where the source deleted records it had not copied yet; [`origin`] keeps
//! two mirrors of opposite directions from copying records back and forth (`spec.markOrigin`); and the
//! [`shutdown_gate`] lets every stream of a process commit before any of them leaves the group.

mod commit;
mod consumer_context;
mod origin;
mod settings;
mod shutdown_gate;
mod stream;
mod transaction_groups;
mod truncation;

pub(crate) use origin::Origin;
pub(crate) use settings::StreamSettings;
pub use settings::consumer_config;
pub(crate) use shutdown_gate::ShutdownGate;
pub(crate) use stream::Stream;
