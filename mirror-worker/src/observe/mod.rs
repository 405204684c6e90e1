//! Observe: what a worker process tells the outside while it runs. [`metrics`] are the Prometheus counters
//! and gauges the engine updates; [`health`] is what `/healthz` and `/readyz` answer, and the endpoints that
//! serve both.

pub mod health;
pub mod metrics;
