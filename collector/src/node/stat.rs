//! /proc/stat: per-CPU time (`node_cpu_seconds_total`,
//! `node_cpu_guest_seconds_total`; the `cpu` collector) and the kernel's
//! counters (`node_boot_time_seconds`, `node_context_switches_total`,
//! `node_forks_total`, `node_intr_total`, `node_procs_*`; the `stat`
//! collector).

use super::{read, Exposition, HostPaths, Kind};

/// /proc/stat counts in USER_HZ, which Linux fixes at 100 for user space.
const USER_HZ: f64 = 100.0;

const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

pub fn collect_cpu(paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let path = paths.proc("stat");
    let text = read(&path)?;
    let mut cpus: Vec<(String, Vec<f64>)> = Vec::new();
    for line in text.lines() {
        let mut f = line.split_whitespace();
        let Some(id) = f.next().and_then(|k| k.strip_prefix("cpu")) else {
            continue;
        };
        if id.is_empty() {
            continue; // the all-CPU line
        }
        let ticks: Vec<f64> = f
            .map(|x| x.parse::<f64>().unwrap_or(0.0) / USER_HZ)
            .collect();
        if ticks.len() < 8 {
            return Err(format!("{}: short cpu line {line:?}", path.display()));
        }
        cpus.push((id.to_string(), ticks));
    }
    if cpus.is_empty() {
        return Err(format!("{}: no cpu lines", path.display()));
    }
    out.family(
        "node_cpu_seconds_total",
        "Seconds the CPUs spent in each mode.",
        Kind::Counter,
    );
    for (id, ticks) in &cpus {
        for (mode, v) in MODES.iter().zip(ticks) {
            out.sample("node_cpu_seconds_total", &[("cpu", id), ("mode", mode)], *v);
        }
    }
    out.family(
        "node_cpu_guest_seconds_total",
        "Seconds the CPUs spent in guests (VMs) for each mode.",
        Kind::Counter,
    );
    for (id, ticks) in &cpus {
        let guest = ticks.get(8).copied().unwrap_or(0.0);
        let guest_nice = ticks.get(9).copied().unwrap_or(0.0);
        out.sample(
            "node_cpu_guest_seconds_total",
            &[("cpu", id), ("mode", "nice")],
            guest_nice,
        );
        out.sample(
            "node_cpu_guest_seconds_total",
            &[("cpu", id), ("mode", "user")],
            guest,
        );
    }
    Ok(())
}

pub fn collect_stat(paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let path = paths.proc("stat");
    let text = read(&path)?;
    let first = |key: &str| -> Result<f64, String> {
        text.lines()
            .find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some(key)).then(|| f.next().and_then(|v| v.parse().ok()))?
            })
            .ok_or_else(|| format!("{}: no {key} line", path.display()))
    };
    let families = [
        (
            "btime",
            "node_boot_time_seconds",
            "Node boot time, in unixtime.",
            Kind::Gauge,
        ),
        (
            "ctxt",
            "node_context_switches_total",
            "Total number of context switches.",
            Kind::Counter,
        ),
        (
            "processes",
            "node_forks_total",
            "Total number of forks.",
            Kind::Counter,
        ),
        (
            "intr",
            "node_intr_total",
            "Total number of interrupts serviced.",
            Kind::Counter,
        ),
        (
            "procs_blocked",
            "node_procs_blocked",
            "Number of processes blocked waiting for I/O to complete.",
            Kind::Gauge,
        ),
        (
            "procs_running",
            "node_procs_running",
            "Number of processes in runnable state.",
            Kind::Gauge,
        ),
    ];
    let mut values = Vec::new();
    for (key, name, help, kind) in families {
        values.push((name, help, kind, first(key)?));
    }
    for (name, help, kind, v) in values {
        out.single(name, help, kind, v);
    }
    Ok(())
}
