//! Reading one cgroup's usage and limits, from cgroup v2 (the unified
//! hierarchy) or v1 (a hierarchy per controller), into the quantities
//! cAdvisor reports, computed as cAdvisor computes them (the working set
//! is usage less inactive file pages; an unlimited memory limit is 0).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// The node's cgroup filesystem as mounted in the agent's container.
#[derive(Debug, Clone)]
pub struct CgroupFs {
    root: PathBuf,
    pub version: Version,
}

/// One block device's I/O by a cgroup.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceIo {
    pub read_bytes: f64,
    pub write_bytes: f64,
    pub reads: f64,
    pub writes: f64,
}

/// What cAdvisor reports of one cgroup; `None` where the kernel does not
/// provide it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Stats {
    pub cpu_usage_seconds: Option<f64>,
    pub cpu_user_seconds: Option<f64>,
    pub cpu_system_seconds: Option<f64>,
    pub cfs_periods: Option<f64>,
    pub cfs_throttled_periods: Option<f64>,
    pub cfs_throttled_seconds: Option<f64>,
    pub memory_usage: Option<f64>,
    pub memory_max_usage: Option<f64>,
    pub memory_working_set: Option<f64>,
    pub memory_rss: Option<f64>,
    pub memory_cache: Option<f64>,
    pub memory_mapped_file: Option<f64>,
    pub memory_swap: Option<f64>,
    pub memory_failcnt: Option<f64>,
    pub oom_events: Option<f64>,
    pub spec_memory_limit: Option<f64>,
    pub spec_memory_reservation: Option<f64>,
    pub spec_memory_swap_limit: Option<f64>,
    pub spec_cpu_shares: Option<f64>,
    pub spec_cpu_quota: Option<f64>,
    pub spec_cpu_period: Option<f64>,
    pub processes: Option<f64>,
    /// By `major:minor`.
    pub io: BTreeMap<String, DeviceIo>,
}

/// Larger limits than this mean "none" (the kernel rounds "unlimited" to
/// a page multiple below 2^63); cAdvisor reports them as 0.
const UNLIMITED: f64 = (1u64 << 62) as f64;

/// v1 `cpuacct.stat` counts USER_HZ ticks, 100 a second on Linux.
const USER_HZ: f64 = 100.0;

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn number(path: &Path) -> Option<f64> {
    read(path)?.trim().parse().ok()
}

/// `key value` lines (`cpu.stat`, `memory.stat`, `memory.events`).
fn keyed(path: &Path) -> BTreeMap<String, f64> {
    read(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

fn limit(v: f64) -> f64 {
    if v > UNLIMITED {
        0.0
    } else {
        v
    }
}

impl CgroupFs {
    /// The hierarchy at `root` (e.g. `/sys/fs/cgroup`): v2 when it has
    /// `cgroup.controllers`, v1 otherwise.
    pub fn at(root: &Path) -> CgroupFs {
        let version = if root.join("cgroup.controllers").exists() {
            Version::V2
        } else {
            Version::V1
        };
        CgroupFs {
            root: root.to_path_buf(),
            version,
        }
    }

    /// Where `controller`'s files for cgroup `rel` are.
    fn dir(&self, controller: &str, rel: &str) -> PathBuf {
        let rel = rel.trim_start_matches('/');
        match self.version {
            Version::V2 => self.root.join(rel),
            Version::V1 => self.root.join(controller).join(rel),
        }
    }

    /// Every cgroup under the kubelet's `kubepods` hierarchy, as paths from
    /// the cgroup root (`/kubepods.slice/...`), parents before children.
    pub fn kubelet_cgroups(&self) -> Vec<String> {
        // In v1 every controller has the same tree; memory's is walked.
        let base = match self.version {
            Version::V2 => self.root.clone(),
            Version::V1 => self.root.join("memory"),
        };
        let mut out = Vec::new();
        for top in ["kubepods.slice", "kubepods"] {
            if base.join(top).is_dir() {
                walk(&base.join(top), &format!("/{top}"), 0, &mut out);
            }
        }
        out
    }

    /// The processes in cgroup `rel`.
    pub fn procs(&self, rel: &str) -> Vec<u32> {
        read(&self.dir("memory", rel).join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Cgroup `rel`'s usage and limits; empty if it is gone.
    pub fn stats(&self, rel: &str) -> Stats {
        match self.version {
            Version::V2 => self.stats_v2(rel),
            Version::V1 => self.stats_v1(rel),
        }
    }

    fn stats_v2(&self, rel: &str) -> Stats {
        let d = self.dir("", rel);
        let cpu = keyed(&d.join("cpu.stat"));
        let mem = keyed(&d.join("memory.stat"));
        let events = keyed(&d.join("memory.events"));
        let usec = |k: &str| cpu.get(k).map(|v| v / 1e6);
        let usage = number(&d.join("memory.current"));
        let mut st = Stats {
            cpu_usage_seconds: usec("usage_usec"),
            cpu_user_seconds: usec("user_usec"),
            cpu_system_seconds: usec("system_usec"),
            cfs_periods: cpu.get("nr_periods").copied(),
            cfs_throttled_periods: cpu.get("nr_throttled").copied(),
            cfs_throttled_seconds: usec("throttled_usec"),
            memory_usage: usage,
            memory_max_usage: number(&d.join("memory.peak")),
            memory_working_set: usage.map(|u| working_set(u, mem.get("inactive_file"))),
            memory_rss: mem.get("anon").copied(),
            memory_cache: mem.get("file").copied(),
            memory_mapped_file: mem.get("file_mapped").copied(),
            memory_swap: number(&d.join("memory.swap.current")),
            memory_failcnt: events.get("max").copied(),
            oom_events: events.get("oom_kill").copied(),
            spec_memory_limit: max_file(&d.join("memory.max")),
            spec_memory_reservation: max_file(&d.join("memory.low")),
            spec_memory_swap_limit: max_file(&d.join("memory.swap.max")),
            processes: number(&d.join("pids.current")),
            ..Stats::default()
        };
        // cpu.weight (1..10000) back to the cpu.shares it was set from.
        st.spec_cpu_shares = number(&d.join("cpu.weight"))
            .map(|w| 2.0 + (((w as u64).saturating_sub(1)) * 262_142 / 9_999) as f64);
        if let Some(max) = read(&d.join("cpu.max")) {
            let mut f = max.split_whitespace();
            let quota = f.next();
            st.spec_cpu_period = f.next().and_then(|p| p.parse().ok());
            st.spec_cpu_quota = quota.and_then(|q| q.parse().ok());
        }
        for line in read(&d.join("io.stat")).unwrap_or_default().lines() {
            let mut f = line.split_whitespace();
            let Some(dev) = f.next() else { continue };
            let mut io = DeviceIo::default();
            for kv in f {
                let Some((k, v)) = kv.split_once('=') else {
                    continue;
                };
                let v: f64 = v.parse().unwrap_or(0.0);
                match k {
                    "rbytes" => io.read_bytes = v,
                    "wbytes" => io.write_bytes = v,
                    "rios" => io.reads = v,
                    "wios" => io.writes = v,
                    _ => {}
                }
            }
            st.io.insert(dev.to_string(), io);
        }
        st
    }

    fn stats_v1(&self, rel: &str) -> Stats {
        let acct = self.dir("cpuacct", rel);
        let cpu = self.dir("cpu", rel);
        let memd = self.dir("memory", rel);
        let ticks = keyed(&acct.join("cpuacct.stat"));
        let throttling = keyed(&cpu.join("cpu.stat"));
        let mem = keyed(&memd.join("memory.stat"));
        let usage = number(&memd.join("memory.usage_in_bytes"));
        let memsw = number(&memd.join("memory.memsw.usage_in_bytes"));
        let mut st = Stats {
            cpu_usage_seconds: number(&acct.join("cpuacct.usage")).map(|ns| ns / 1e9),
            cpu_user_seconds: ticks.get("user").map(|t| t / USER_HZ),
            cpu_system_seconds: ticks.get("system").map(|t| t / USER_HZ),
            cfs_periods: throttling.get("nr_periods").copied(),
            cfs_throttled_periods: throttling.get("nr_throttled").copied(),
            cfs_throttled_seconds: throttling.get("throttled_time").map(|ns| ns / 1e9),
            memory_usage: usage,
            memory_max_usage: number(&memd.join("memory.max_usage_in_bytes")),
            memory_working_set: usage.map(|u| working_set(u, mem.get("total_inactive_file"))),
            memory_rss: mem.get("total_rss").copied(),
            memory_cache: mem.get("total_cache").copied(),
            memory_mapped_file: mem.get("total_mapped_file").copied(),
            memory_swap: match (memsw, usage) {
                (Some(sw), Some(u)) => Some((sw - u).max(0.0)),
                _ => None,
            },
            memory_failcnt: number(&memd.join("memory.failcnt")),
            spec_memory_limit: number(&memd.join("memory.limit_in_bytes")).map(limit),
            spec_memory_reservation: number(&memd.join("memory.soft_limit_in_bytes")).map(limit),
            spec_memory_swap_limit: number(&memd.join("memory.memsw.limit_in_bytes")).map(limit),
            spec_cpu_shares: number(&cpu.join("cpu.shares")),
            spec_cpu_period: number(&cpu.join("cpu.cfs_period_us")),
            spec_cpu_quota: number(&cpu.join("cpu.cfs_quota_us")).filter(|q| *q > 0.0),
            processes: number(&self.dir("pids", rel).join("pids.current")),
            ..Stats::default()
        };
        let blkio = self.dir("blkio", rel);
        for (file, bytes) in [
            ("blkio.throttle.io_service_bytes", true),
            ("blkio.throttle.io_serviced", false),
        ] {
            for line in read(&blkio.join(file)).unwrap_or_default().lines() {
                let f: Vec<&str> = line.split_whitespace().collect();
                let [dev, op, v] = f[..] else { continue };
                let Ok(v) = v.parse::<f64>() else { continue };
                let io = st.io.entry(dev.to_string()).or_default();
                match (op, bytes) {
                    ("Read", true) => io.read_bytes = v,
                    ("Write", true) => io.write_bytes = v,
                    ("Read", false) => io.reads = v,
                    ("Write", false) => io.writes = v,
                    _ => {}
                }
            }
        }
        st
    }
}

/// A v2 limit file: a number, or `max` for none (reported as 0).
fn max_file(path: &Path) -> Option<f64> {
    let text = read(path)?;
    match text.trim() {
        "max" => Some(0.0),
        v => v.parse().ok().map(limit),
    }
}

fn working_set(usage: f64, inactive_file: Option<&f64>) -> f64 {
    match inactive_file {
        Some(&i) if i < usage => usage - i,
        Some(_) => 0.0,
        None => usage,
    }
}

fn walk(dir: &Path, rel: &str, depth: usize, out: &mut Vec<String>) {
    out.push(rel.to_string());
    // kubepods / qos / pod / container: nothing the kubelet makes is deeper.
    if depth >= 4 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut children: Vec<String> = entries
        .filter_map(|e| {
            let e = e.ok()?;
            e.file_type().ok()?.is_dir().then_some(())?;
            e.file_name().into_string().ok()
        })
        .collect();
    children.sort();
    for c in children {
        walk(&dir.join(&c), &format!("{rel}/{c}"), depth + 1, out);
    }
}
