//! Pressure stall information (`node_pressure_*`) from /proc/pressure,
//! where the kernel has it (Linux 4.20+ with PSI enabled).

use super::{read, Exposition, HostPaths, Kind};

pub fn collect(paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let families = [
        (
            "cpu",
            "some",
            "node_pressure_cpu_waiting_seconds_total",
            "Total time in seconds that processes have waited for CPU time",
        ),
        (
            "io",
            "some",
            "node_pressure_io_waiting_seconds_total",
            "Total time in seconds that processes have waited due to IO congestion",
        ),
        (
            "io",
            "full",
            "node_pressure_io_stalled_seconds_total",
            "Total time in seconds no process could make progress due to IO congestion",
        ),
        (
            "memory",
            "some",
            "node_pressure_memory_waiting_seconds_total",
            "Total time in seconds that processes have waited for memory",
        ),
        (
            "memory",
            "full",
            "node_pressure_memory_stalled_seconds_total",
            "Total time in seconds no process could make progress due to memory congestion",
        ),
    ];
    let mut parts = Vec::new();
    for (resource, kind, name, help) in families {
        let path = paths.proc(&format!("pressure/{resource}"));
        let text = read(&path)?;
        let total_us = text
            .lines()
            .find(|l| l.starts_with(kind))
            .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("total=")))
            .and_then(|t| t.parse::<f64>().ok())
            .ok_or_else(|| format!("{}: no {kind} total in {text:?}", path.display()))?;
        parts.push((name, help, total_us / 1e6));
    }
    for (name, help, v) in parts {
        out.single(name, help, Kind::Counter, v);
    }
    Ok(())
}
