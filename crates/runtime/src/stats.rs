//! Resource use of a running desktop, as far as the backend reports it.

/// One reading of a desktop's CPU and memory use. Fields the backend does not report are `None`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct ResourceStats {
    /// Share of one CPU over the sampling interval, in percent (200 = two CPUs busy).
    pub cpu_percent: Option<f64>,
    /// Memory in use, without the page cache (what `docker stats` shows).
    pub memory_bytes: Option<u64>,
    /// The container's memory limit (the host's memory when unlimited).
    pub memory_limit_bytes: Option<u64>,
}

/// CPU use between two readings of cumulative counters, as `docker stats` computes it:
/// the container's share of the host's CPU time, times the number of CPUs.
pub(crate) fn cpu_percent(total: u64, pre_total: u64, system: u64, pre_system: u64, online_cpus: u32) -> Option<f64> {
    let container = total.checked_sub(pre_total)?;
    let system = system.checked_sub(pre_system)?;
    if system == 0 || pre_system == 0 {
        return None;
    }
    Some(container as f64 / system as f64 * f64::from(online_cpus.max(1)) * 100.0)
}

/// Memory in use without the page cache: cgroup v2 reports `inactive_file`, v1 `total_inactive_file`.
pub(crate) fn memory_without_cache(usage: u64, stats: Option<&std::collections::HashMap<String, u64>>) -> u64 {
    let cache = stats
        .and_then(|s| s.get("inactive_file").or_else(|| s.get("total_inactive_file")))
        .copied()
        .unwrap_or(0);
    usage.saturating_sub(cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_share_scales_with_cpus() {
        assert_eq!(cpu_percent(150, 100, 1_100, 100, 2), Some(10.0));
        assert_eq!(cpu_percent(150, 100, 100, 0, 2), None, "no earlier reading");
        assert_eq!(cpu_percent(50, 100, 1_100, 100, 2), None, "counter reset");
    }

    #[test]
    fn page_cache_is_not_counted() {
        let stats = [("inactive_file".to_owned(), 30)].into_iter().collect();
        assert_eq!(memory_without_cache(100, Some(&stats)), 70);
        assert_eq!(memory_without_cache(100, None), 100);
    }
}
