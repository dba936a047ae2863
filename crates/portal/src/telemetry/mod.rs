//! What the portal tells its operators: Prometheus metrics and their own listener, and log
//! lines that values cannot forge.

pub mod log_lines;
pub mod metrics;
pub mod metrics_listener;
