//! CPU and memory usage of pods, containers and nodes, read from the
//! series the agent already ships, the way metrics-server computes it:
//! CPU is the rate between the last two points of the cumulative CPU
//! counter (the window is the time between them), memory the last
//! working-set sample, and a series whose newest point is older than the
//! staleness age is left out.
//!
//! Sources, by series name:
//! - containers: `container_cpu_usage_seconds_total` and
//!   `container_memory_working_set_bytes` with `namespace`, `pod` and
//!   `container` (cAdvisor's names: the agent's cgroup collector and the
//!   kubelet's `/metrics/resource` both ship them; where both do, the
//!   series with the newest point wins);
//! - nodes: `node_cpu_usage_seconds_total` and
//!   `node_memory_working_set_bytes` by `node` (the kubelet's resource
//!   metrics), else the agent's node collector by `instance`: the sum of
//!   `node_cpu_seconds_total` over every mode but idle and iowait, and
//!   `MemTotal − MemFree − Inactive(file)` (the kubelet's working set of
//!   the root cgroup: usage less inactive file pages).

use std::collections::{BTreeMap, HashMap, HashSet};
use tsdb::{Db, MatchOp, Matcher, Querier, Sample, TimeRange, STALE_NAN_BITS};

/// One point of a cumulative CPU counter and the memory beside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    /// Nanocores over the window (truncated, as metrics-server does).
    pub nanocores: u64,
    pub memory_bytes: u64,
    /// Milliseconds since the epoch of the newest CPU point.
    pub timestamp_ms: i64,
    /// Milliseconds between the two CPU points.
    pub window_ms: i64,
}

/// Containers' usage by (namespace, pod), then by container name.
pub type ContainerUsage = BTreeMap<(String, String), BTreeMap<String, Usage>>;

/// The last two points of a counter.
#[derive(Debug, Clone, Copy)]
struct Rate {
    prev: Sample,
    last: Sample,
}

impl Rate {
    /// The usage of this CPU rate beside `memory_bytes`.
    fn usage(&self, memory_bytes: f64) -> Option<Usage> {
        Some(Usage {
            nanocores: self.nanocores()?,
            memory_bytes: memory_bytes.max(0.0) as u64,
            timestamp_ms: self.last.t,
            window_ms: self.last.t - self.prev.t,
        })
    }

    /// Nanocores from a counter in seconds; None when it went backwards
    /// (a restart: metrics-server skips such a point too).
    fn nanocores(&self) -> Option<u64> {
        let dt = self.last.t - self.prev.t;
        let dv = self.last.v - self.prev.v;
        if dt <= 0 || dv < 0.0 || !dv.is_finite() {
            return None;
        }
        Some((dv * 1e9 / (dt as f64 / 1000.0)) as u64)
    }
}

fn is_stale_marker(s: &Sample) -> bool {
    s.v.to_bits() == STALE_NAN_BITS
}

/// Which pods a read is about: a namespace, a pod in it, or all.
#[derive(Debug, Clone, Copy, Default)]
pub struct PodFilter<'a> {
    pub namespace: Option<&'a str>,
    pub pod: Option<&'a str>,
}

/// Reads usage as of `now_ms`, leaving out series whose newest point is
/// older than `stale_after_ms`.
pub struct UsageReader<'a> {
    pub db: &'a Db,
    pub now_ms: i64,
    pub stale_after_ms: i64,
}

impl UsageReader<'_> {
    fn range(&self) -> TimeRange {
        // Two staleness ages back: the previous point may be older than
        // the newest by up to a scrape interval.
        let back = self.stale_after_ms.saturating_mul(2);
        TimeRange::new(self.now_ms.saturating_sub(back), self.now_ms)
    }

    fn select(&self, name: &str, non_empty: &[&str]) -> Result<Vec<tsdb::Series>, String> {
        self.select_where(name, non_empty, &PodFilter::default())
    }

    fn select_where(
        &self,
        name: &str,
        non_empty: &[&str],
        only: &PodFilter<'_>,
    ) -> Result<Vec<tsdb::Series>, String> {
        let mut m = vec![matcher(MatchOp::Equal, "__name__", name)?];
        for l in non_empty {
            m.push(matcher(MatchOp::NotEqual, l, "")?);
        }
        // Narrowed in the index, so one namespace's request reads only it.
        if let Some(ns) = only.namespace {
            m.push(matcher(MatchOp::Equal, "namespace", ns)?);
        }
        if let Some(pod) = only.pod {
            m.push(matcher(MatchOp::Equal, "pod", pod)?);
        }
        self.db.select(&m, self.range()).map_err(|e| e.to_string())
    }

    /// The last two points of a series, if its newest is fresh.
    fn last_two(&self, s: &tsdb::Series) -> Result<Option<Rate>, String> {
        let samples = s.collect_samples().map_err(|e| e.to_string())?;
        let n = samples.len();
        if n < 2 {
            return Ok(None);
        }
        let (prev, last) = (samples[n - 2], samples[n - 1]);
        if is_stale_marker(&last) || is_stale_marker(&prev) || !self.fresh(last.t) {
            return Ok(None);
        }
        Ok(Some(Rate { prev, last }))
    }

    fn last_one(&self, s: &tsdb::Series) -> Result<Option<Sample>, String> {
        let last = s.last_sample().map_err(|e| e.to_string())?;
        Ok(last.filter(|l| !is_stale_marker(l) && self.fresh(l.t)))
    }

    fn fresh(&self, t: i64) -> bool {
        t >= self.now_ms.saturating_sub(self.stale_after_ms)
    }

    /// Every container (of the pods `only` names) with fresh CPU (two
    /// points) and memory, by pod.
    pub fn containers(&self, only: &PodFilter<'_>) -> Result<ContainerUsage, String> {
        let keys = ["namespace", "pod", "container"];
        // Keys borrow from the selected series: no string is copied until
        // a container is known to have both.
        fn key(s: &tsdb::Series) -> Option<(&str, &str, &str)> {
            let l = &s.labels;
            let c = l.get("container")?;
            // The kubelet's cAdvisor names the sandbox "POD": not a container.
            (c != "POD").then(|| {
                (
                    l.get("namespace").unwrap_or(""),
                    l.get("pod").unwrap_or(""),
                    c,
                )
            })
        }
        let cpu_series = self.select_where("container_cpu_usage_seconds_total", &keys, only)?;
        let mut cpu: HashMap<(&str, &str, &str), Rate> = HashMap::with_capacity(cpu_series.len());
        // Containers with a fresh point in either series: a pod any of whose
        // containers lacks a full answer is left out, as metrics-server
        // leaves it out (its sum would under-read the pod).
        let mut seen: HashSet<(&str, &str, &str)> = HashSet::new();
        for s in &cpu_series {
            let Some(k) = key(s) else { continue };
            if self.last_one(s)?.is_some() {
                seen.insert(k);
            }
            let Some(r) = self.last_two(s)? else {
                continue;
            };
            if cpu.get(&k).is_none_or(|o| r.last.t > o.last.t) {
                cpu.insert(k, r);
            }
        }
        let mem_series = self.select_where("container_memory_working_set_bytes", &keys, only)?;
        let mut memory: HashMap<(&str, &str, &str), Sample> =
            HashMap::with_capacity(mem_series.len());
        for s in &mem_series {
            let (Some(k), Some(m)) = (key(s), self.last_one(s)?) else {
                continue;
            };
            seen.insert(k);
            if memory.get(&k).is_none_or(|o| m.t > o.t) {
                memory.insert(k, m);
            }
        }
        let mut out = ContainerUsage::new();
        let mut incomplete: HashSet<(&str, &str)> = HashSet::new();
        for &(ns, pod, container) in &seen {
            let usage = cpu
                .get(&(ns, pod, container))
                .zip(memory.get(&(ns, pod, container)))
                .and_then(|(r, m)| r.usage(m.v));
            match usage {
                Some(u) => {
                    out.entry((ns.to_string(), pod.to_string()))
                        .or_default()
                        .insert(container.to_string(), u);
                }
                None => {
                    incomplete.insert((ns, pod));
                }
            }
        }
        for (ns, pod) in incomplete {
            out.remove(&(ns.to_string(), pod.to_string()));
        }
        Ok(out)
    }

    /// Every node with fresh CPU and memory, by name.
    pub fn nodes(&self) -> Result<BTreeMap<String, Usage>, String> {
        let mut out = self.nodes_from_kubelet()?;
        for (node, u) in self.nodes_from_node_collector()? {
            out.entry(node).or_insert(u);
        }
        Ok(out)
    }

    fn nodes_from_kubelet(&self) -> Result<BTreeMap<String, Usage>, String> {
        let mut cpu: BTreeMap<String, Rate> = BTreeMap::new();
        for s in self.select("node_cpu_usage_seconds_total", &["node"])? {
            let node = s.labels.get("node").unwrap_or("").to_string();
            if let Some(r) = self.last_two(&s)? {
                if cpu.get(&node).is_none_or(|o| r.last.t > o.last.t) {
                    cpu.insert(node, r);
                }
            }
        }
        let mut out = BTreeMap::new();
        for s in self.select("node_memory_working_set_bytes", &["node"])? {
            let node = s.labels.get("node").unwrap_or("");
            let (Some(r), Some(m)) = (cpu.get(node), self.last_one(&s)?) else {
                continue;
            };
            if let Some(u) = r.usage(m.v) {
                out.insert(node.to_string(), u);
            }
        }
        Ok(out)
    }

    fn nodes_from_node_collector(&self) -> Result<BTreeMap<String, Usage>, String> {
        // Per instance: the busy CPU seconds summed over CPUs and modes at
        // the last two scrapes.
        let mut busy: BTreeMap<String, Rate> = BTreeMap::new();
        for s in self.select("node_cpu_seconds_total", &["instance", "mode"])? {
            if matches!(s.labels.get("mode"), Some("idle" | "iowait")) {
                continue;
            }
            let instance = s.labels.get("instance").unwrap_or("").to_string();
            let Some(r) = self.last_two(&s)? else {
                continue;
            };
            let e = busy.entry(instance).or_insert(Rate {
                prev: Sample::new(r.prev.t, 0.0),
                last: Sample::new(r.last.t, 0.0),
            });
            e.prev = Sample::new(e.prev.t.max(r.prev.t), e.prev.v + r.prev.v);
            e.last = Sample::new(e.last.t.max(r.last.t), e.last.v + r.last.v);
        }
        let mut fields: BTreeMap<String, [Option<f64>; 3]> = BTreeMap::new();
        for (i, name) in [
            "node_memory_MemTotal_bytes",
            "node_memory_MemFree_bytes",
            "node_memory_Inactive_file_bytes",
        ]
        .iter()
        .enumerate()
        {
            for s in self.select(name, &["instance"])? {
                let instance = s.labels.get("instance").unwrap_or("").to_string();
                if let Some(m) = self.last_one(&s)? {
                    fields.entry(instance).or_default()[i] = Some(m.v);
                }
            }
        }
        let mut out = BTreeMap::new();
        for (instance, r) in busy {
            let Some([Some(total), Some(free), Some(inactive)]) = fields.get(&instance) else {
                continue;
            };
            if let Some(u) = r.usage(total - free - inactive) {
                out.insert(instance, u);
            }
        }
        Ok(out)
    }
}

fn matcher(op: MatchOp, name: &str, value: &str) -> Result<Matcher, String> {
    Matcher::new(op, name, value).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_rate_is_truncated_nanocores_and_resets_are_skipped() {
        let r = Rate {
            prev: Sample::new(0, 10.0),
            last: Sample::new(10_000, 10.5),
        };
        // 0.5 s of CPU over 10 s = 0.05 cores.
        assert_eq!(r.nanocores(), Some(50_000_000));
        let reset = Rate {
            prev: Sample::new(0, 10.0),
            last: Sample::new(15_000, 1.0),
        };
        assert_eq!(reset.nanocores(), None);
    }
}
