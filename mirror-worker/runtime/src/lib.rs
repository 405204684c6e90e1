//! What both binaries, the worker and the operator, do the same way as processes: serve `/metrics`,
//! `/healthz` and `/readyz` ([`http`]), log and wait for the shutdown signal ([`process`]), and allocate with
//! jemalloc ([`use_jemalloc!`]). Knows neither Kafka nor Kubernetes.

pub mod allocator;
pub mod http;
pub mod process;
