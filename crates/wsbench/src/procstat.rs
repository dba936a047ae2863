//! CPU time and memory of other processes (the proxy under test), from `/proc`.

use std::collections::BTreeMap;

use anyhow::{Context as _, ensure};
use serde::{Deserialize, Serialize};

/// Clock ticks per second of `utime`/`stime` in `/proc/PID/stat`. Linux reports them in
/// `USER_HZ`, which is 100 on every architecture the kernel ABI keeps stable for userspace.
const USER_HZ: f64 = 100.0;

/// A process to watch, as given on the command line (`LABEL=PID`).
#[derive(Clone, Debug)]
pub(crate) struct Watched {
    pub(crate) label: String,
    pub(crate) pid: u32,
}

/// Parses repeated `LABEL=PID` options.
pub(crate) fn parse_watched(raw: &[String]) -> anyhow::Result<Vec<Watched>> {
    raw.iter()
        .map(|entry| {
            let (label, pid) = entry
                .split_once('=')
                .with_context(|| format!("{entry:?}: expected LABEL=PID"))?;
            let pid = pid.parse().with_context(|| format!("{entry:?}: not a PID"))?;
            Ok(Watched {
                label: label.to_owned(),
                pid,
            })
        })
        .collect()
}

/// What a process used during one measured run.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Usage {
    /// User plus system CPU seconds spent during the run.
    pub(crate) cpu_secs: f64,
    /// VmRSS at the end of the run.
    pub(crate) rss_kib: u64,
}

/// CPU seconds (user + system) a process has used so far.
pub(crate) fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_cpu_secs(&stat).with_context(|| format!("parsing {path}"))
}

fn parse_cpu_secs(stat: &str) -> anyhow::Result<f64> {
    // The command name (field 2) may contain spaces and parentheses; fields after the last
    // ')' are fixed: state is field 3, utime field 14, stime field 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("no ')' in stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    ensure!(fields.len() > 12, "too few fields");
    let utime: f64 = fields[11].parse().context("utime")?;
    let stime: f64 = fields[12].parse().context("stime")?;
    Ok((utime + stime) / USER_HZ)
}

/// A `Name:   1234 kB` line of `/proc/PID/status`.
pub(crate) fn status_kib(status: &str, field: &str) -> anyhow::Result<u64> {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field} line in /proc/PID/status"))?;
    let value = line[field.len()..].trim().trim_end_matches("kB").trim();
    value.parse().with_context(|| format!("{field} value {value:?}"))
}

/// VmRSS of a process in KiB.
pub(crate) fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status_kib(&status, "VmRSS:")
}

/// CPU counters taken before a run, to be closed with [`Meter::finish`].
pub(crate) struct Meter {
    start: Vec<(Watched, f64)>,
}

impl Meter {
    pub(crate) fn start(watched: &[Watched]) -> anyhow::Result<Meter> {
        let start = watched
            .iter()
            .map(|w| Ok((w.clone(), cpu_secs(w.pid)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Meter { start })
    }

    pub(crate) fn finish(self) -> anyhow::Result<BTreeMap<String, Usage>> {
        self.start
            .into_iter()
            .map(|(w, before)| {
                let usage = Usage {
                    cpu_secs: cpu_secs(w.pid)? - before,
                    rss_kib: rss_kib(w.pid)?,
                };
                Ok((w.label, usage))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_the_command_name() -> anyhow::Result<()> {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1 0 5 0 0";
        assert!((parse_cpu_secs(stat)? - 3.0).abs() < 1e-9);
        assert!(cpu_secs(std::process::id())? >= 0.0);
        assert!(rss_kib(std::process::id())? > 0);
        Ok(())
    }

    #[test]
    fn reads_status_fields() -> anyhow::Result<()> {
        let status = "Name:\tx\nVmRSS:\t   12345 kB\nRssAnon:\t  800 kB\n";
        assert_eq!(status_kib(status, "VmRSS:")?, 12345);
        assert_eq!(status_kib(status, "RssAnon:")?, 800);
        assert!(status_kib(status, "VmHWM:").is_err());
        Ok(())
    }

    #[test]
    fn parses_label_pid_pairs() {
        assert!(parse_watched(&["portal=12".into()]).is_ok_and(|p| p[0].label == "portal" && p[0].pid == 12));
        assert!(parse_watched(&["portal".into()]).is_err());
    }
}
