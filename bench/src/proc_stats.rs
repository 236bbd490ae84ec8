//! CPU time and peak memory of a process, from /proc.

use anyhow::{Context, Result};

/// User + system CPU seconds process `pid` has used so far.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|x| x.1)
        .context("bad /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// Peak resident set size of process `pid` in bytes (VmHWM).
pub fn peak_rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .context("no VmHWM")?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .context("bad VmHWM")?
        .parse()?;
    Ok(kb * 1024)
}

/// Resident memory of process `pid` now, in bytes: (anonymous, file-backed).
#[allow(dead_code)] // the query benchmark's; the other benches share this file
pub fn rss_now(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name}"))?;
        let kb: u64 = line
            .split_whitespace()
            .nth(1)
            .with_context(|| format!("bad {name}"))?
            .parse()?;
        Ok(kb * 1024)
    };
    Ok((field("RssAnon:")?, field("RssFile:")?))
}
