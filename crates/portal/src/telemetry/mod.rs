//! What the portal tells its operators: Prometheus metrics and their own listener.

pub mod metrics;
pub mod metrics_listener;
