//! Built-in pod and container metrics with cAdvisor's names and labels
//! (`container_cpu_usage_seconds_total`, `container_memory_working_set_bytes`,
//! ... with `namespace`, `pod`, `container`, `id`, `image`, `name`), so
//! dashboards and alerts written against the kubelet's cAdvisor keep
//! working. Read from the node's cgroup filesystem (v2, or v1 where that is
//! what the node runs) and named through the kubelet's pod list.
//!
//! Like the node collectors, this writes the text exposition format and
//! the agent scrapes it as one more job. It only reads: cgroups, /proc and
//! /sys under configurable roots, and the pod list.

pub mod cgroup;
pub mod pods;

use crate::fetch::Secret;
use crate::node::{Exposition, Kind};
use crate::scrape_config::ContainersConfig;
use cgroup::{CgroupFs, Stats};
use pods::{classify, CgroupKind, PodIndex};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a pod list is trusted before it is fetched again; sooner when
/// a container shows up that it does not name.
const POD_LIST_TTL: Duration = Duration::from_secs(30);
/// The soonest a pod list is fetched again for an unknown container.
const POD_LIST_MIN_AGE: Duration = Duration::from_secs(2);

/// Where the pod list comes from.
enum PodSource {
    /// The kubelet's `/pods` (or any URL serving a `PodList`).
    Url {
        url: String,
        agent: Result<ureq::Agent, String>,
        token: Option<Secret>,
    },
    File(PathBuf),
}

struct Cached {
    index: PodIndex,
    fetched: Option<Instant>,
}

/// The container collector of one agent.
pub struct Containers {
    cgroups: CgroupFs,
    procfs: PathBuf,
    sysfs: PathBuf,
    pods: PodSource,
    cache: Mutex<Cached>,
}

/// One cgroup to report, with its labels.
struct Row {
    labels: Vec<(&'static str, String)>,
    stats: Stats,
    /// The pod's network devices (pod cgroups only).
    net: Vec<NetDev>,
    started: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
struct NetDev {
    name: String,
    /// rx bytes, packets, errs, drop; tx bytes, packets, errs, drop.
    values: [f64; 8],
}

impl Containers {
    pub fn new(cfg: &ContainersConfig) -> Containers {
        let p = &cfg.pods;
        let pods = match (&p.url, &p.file) {
            (Some(url), _) => PodSource::Url {
                url: url.clone(),
                agent: crate::fetch::http_agent(p.tls_config.as_ref()).map_err(|e| e.to_string()),
                token: p.bearer_token_file.clone().map(Secret::File),
            },
            (None, Some(file)) => PodSource::File(file.clone()),
            // Validation requires one of them; an empty list names nothing.
            (None, None) => PodSource::File(PathBuf::new()),
        };
        Containers {
            cgroups: CgroupFs::at(&cfg.cgroupfs),
            procfs: cfg.procfs.clone(),
            sysfs: cfg.sysfs.clone(),
            pods,
            cache: Mutex::new(Cached {
                index: PodIndex::default(),
                fetched: None,
            }),
        }
    }

    fn fetch_pods(&self, timeout: Duration) -> Result<PodIndex, String> {
        match &self.pods {
            PodSource::File(path) => {
                let body = std::fs::read(path)
                    .map_err(|e| format!("reading the pod list {}: {e}", path.display()))?;
                PodIndex::from_json(&body)
            }
            PodSource::Url { url, agent, token } => {
                let agent = agent.as_ref().map_err(|e| e.clone())?;
                let mut req = agent.get(url).timeout(timeout);
                if let Some(t) = token {
                    req = req.set("Authorization", &format!("Bearer {}", t.read()?));
                }
                let resp = req
                    .call()
                    .map_err(|e| format!("fetching the pod list from {url}: {e}"))?;
                let mut body = Vec::new();
                std::io::Read::read_to_end(&mut resp.into_reader(), &mut body)
                    .map_err(|e| format!("fetching the pod list from {url}: {e}"))?;
                PodIndex::from_json(&body)
            }
        }
    }

    /// The pod list, fetched again when it is old or (not too often) when
    /// `missing` says it does not know a container on the node.
    fn pod_index(&self, missing: bool, timeout: Duration) -> Result<PodIndex, String> {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let age = c.fetched.map(|t| t.elapsed());
        let stale = match age {
            None => true,
            Some(a) => a >= POD_LIST_TTL || (missing && a >= POD_LIST_MIN_AGE),
        };
        if stale {
            match self.fetch_pods(timeout) {
                Ok(index) => {
                    c.index = index;
                    c.fetched = Some(Instant::now());
                }
                // With no list yet nothing can be named: the scrape fails
                // with the reason. An older list still names most.
                Err(e) if c.fetched.is_none() => return Err(e),
                Err(e) => tracing::warn!("keeping the previous pod list: {e}"),
            }
        }
        Ok(c.index.clone())
    }

    /// Every known pod's and container's metrics, as a text exposition.
    pub fn gather(&self, timeout: Duration) -> Result<String, String> {
        let cgroups: Vec<(String, CgroupKind)> = self
            .cgroups
            .kubelet_cgroups()
            .into_iter()
            .filter_map(|rel| classify(&rel).map(|k| (rel, k)))
            .collect();
        let known = |idx: &PodIndex| {
            cgroups.iter().all(|(_, k)| match k {
                CgroupKind::Pod(uid) => idx.pods.contains_key(uid),
                // Sandbox (pause) containers are in no pod's statuses.
                CgroupKind::Container { .. } => true,
            })
        };
        let cached_knows = {
            let c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            known(&c.index)
        };
        let index = self.pod_index(!cached_knows, timeout)?;
        // A pod's processes, for its network namespace.
        let mut pod_pid: HashMap<&str, u32> = HashMap::new();
        for (rel, kind) in &cgroups {
            let uid = match kind {
                CgroupKind::Pod(u) => u,
                CgroupKind::Container { pod_uid, .. } => pod_uid,
            };
            if !pod_pid.contains_key(uid.as_str()) {
                if let Some(&pid) = self.cgroups.procs(rel).first() {
                    pod_pid.insert(uid, pid);
                }
            }
        }
        let mut rows = Vec::new();
        for (rel, kind) in &cgroups {
            let row = match kind {
                CgroupKind::Pod(uid) => {
                    let Some(pod) = index.pods.get(uid) else {
                        continue;
                    };
                    let net = pod_pid
                        .get(uid.as_str())
                        .map(|pid| net_devices(&self.procfs.join(format!("{pid}/net/dev"))))
                        .unwrap_or_default();
                    Row {
                        labels: labels(rel, "", "", "", &pod.namespace, &pod.name),
                        stats: self.cgroups.stats(rel),
                        net,
                        started: None,
                    }
                }
                CgroupKind::Container { pod_uid, id } => {
                    let (Some(pod), Some(c)) = (index.pods.get(pod_uid), index.containers.get(id))
                    else {
                        continue;
                    };
                    Row {
                        labels: labels(rel, &c.name, &c.image, id, &pod.namespace, &pod.name),
                        stats: self.cgroups.stats(rel),
                        net: Vec::new(),
                        started: c.started,
                    }
                }
            };
            rows.push(row);
        }
        Ok(self.write(&rows))
    }

    fn write(&self, rows: &[Row]) -> String {
        let mut out = Exposition::default();
        let label_refs = |r: &Row| -> Vec<(&str, String)> {
            r.labels.iter().map(|(n, v)| (*n, v.clone())).collect()
        };
        for (name, help, kind, get) in FAMILIES {
            let present: Vec<(&Row, f64)> = rows
                .iter()
                .filter_map(|r| get(&r.stats).map(|v| (r, v)))
                .collect();
            if present.is_empty() {
                continue;
            }
            out.family(name, help, *kind);
            for (r, v) in present {
                let mut ls = label_refs(r);
                if *name == "container_cpu_usage_seconds_total" {
                    ls.insert(0, ("cpu", "total".into()));
                    ls.sort_by(|a, b| a.0.cmp(b.0));
                }
                let ls: Vec<(&str, &str)> = ls.iter().map(|(n, v)| (*n, v.as_str())).collect();
                out.sample(name, &ls, v);
            }
        }
        let device_names = self.device_names(rows);
        for (name, help, pick) in IO_FAMILIES {
            let mut first = true;
            for r in rows {
                for (dev, io) in &r.stats.io {
                    if first {
                        out.family(name, help, Kind::Counter);
                        first = false;
                    }
                    let device = device_names
                        .get(dev)
                        .cloned()
                        .unwrap_or_else(|| dev.clone());
                    let mut ls = label_refs(r);
                    ls.push(("device", device));
                    ls.sort_by(|a, b| a.0.cmp(b.0));
                    let ls: Vec<(&str, &str)> = ls.iter().map(|(n, v)| (*n, v.as_str())).collect();
                    out.sample(name, &ls, pick(io));
                }
            }
        }
        for (i, (name, help)) in NET_FAMILIES.iter().enumerate() {
            let mut first = true;
            for r in rows {
                for dev in &r.net {
                    if first {
                        out.family(name, help, Kind::Counter);
                        first = false;
                    }
                    let mut ls = label_refs(r);
                    ls.push(("interface", dev.name.clone()));
                    ls.sort_by(|a, b| a.0.cmp(b.0));
                    let ls: Vec<(&str, &str)> = ls.iter().map(|(n, v)| (*n, v.as_str())).collect();
                    out.sample(name, &ls, dev.values[i]);
                }
            }
        }
        let started: Vec<(&Row, f64)> = rows
            .iter()
            .filter_map(|r| r.started.map(|s| (r, s)))
            .collect();
        if !started.is_empty() {
            out.family(
                "container_start_time_seconds",
                "Start time of the container since unix epoch in seconds.",
                Kind::Gauge,
            );
            for (r, s) in started {
                let ls = label_refs(r);
                let ls: Vec<(&str, &str)> = ls.iter().map(|(n, v)| (*n, v.as_str())).collect();
                out.sample("container_start_time_seconds", &ls, s);
            }
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs() as f64);
        if !rows.is_empty() {
            out.family(
                "container_last_seen",
                "Last time a container was seen by the exporter",
                Kind::Gauge,
            );
            for r in rows {
                let ls = label_refs(r);
                let ls: Vec<(&str, &str)> = ls.iter().map(|(n, v)| (*n, v.as_str())).collect();
                out.sample("container_last_seen", &ls, now);
            }
        }
        out.into_string()
    }

    /// `/dev/<name>` of each `major:minor` the rows did I/O on, from
    /// `/sys/dev/block/<major:minor>/uevent`.
    fn device_names(&self, rows: &[Row]) -> HashMap<String, String> {
        let mut names = HashMap::new();
        for dev in rows.iter().flat_map(|r| r.stats.io.keys()) {
            if names.contains_key(dev) {
                continue;
            }
            let uevent = self.sysfs.join(format!("dev/block/{dev}/uevent"));
            let name = std::fs::read_to_string(uevent).ok().and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("DEVNAME="))
                    .map(|n| format!("/dev/{}", n.trim()))
            });
            if let Some(n) = name {
                names.insert(dev.clone(), n);
            }
        }
        names
    }
}

/// cAdvisor's label set, sorted by name.
fn labels(
    id: &str,
    container: &str,
    image: &str,
    name: &str,
    namespace: &str,
    pod: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("container", container.to_string()),
        ("id", id.to_string()),
        ("image", image.to_string()),
        ("name", name.to_string()),
        ("namespace", namespace.to_string()),
        ("pod", pod.to_string()),
    ]
}

/// `/proc/<pid>/net/dev`: every interface but loopback.
fn net_devices(path: &Path) -> Vec<NetDev> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo" {
            continue;
        }
        let f: Vec<f64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() < 16 {
            continue;
        }
        out.push(NetDev {
            name: name.to_string(),
            values: [f[0], f[1], f[2], f[3], f[8], f[9], f[10], f[11]],
        });
    }
    out
}

type Get = fn(&Stats) -> Option<f64>;

const FAMILIES: &[(&str, &str, Kind, Get)] = &[
    (
        "container_cpu_usage_seconds_total",
        "Cumulative cpu time consumed in seconds.",
        Kind::Counter,
        |s| s.cpu_usage_seconds,
    ),
    (
        "container_cpu_user_seconds_total",
        "Cumulative user cpu time consumed in seconds.",
        Kind::Counter,
        |s| s.cpu_user_seconds,
    ),
    (
        "container_cpu_system_seconds_total",
        "Cumulative system cpu time consumed in seconds.",
        Kind::Counter,
        |s| s.cpu_system_seconds,
    ),
    (
        "container_cpu_cfs_periods_total",
        "Number of elapsed enforcement period intervals.",
        Kind::Counter,
        |s| s.cfs_periods,
    ),
    (
        "container_cpu_cfs_throttled_periods_total",
        "Number of throttled period intervals.",
        Kind::Counter,
        |s| s.cfs_throttled_periods,
    ),
    (
        "container_cpu_cfs_throttled_seconds_total",
        "Total time duration the container has been throttled.",
        Kind::Counter,
        |s| s.cfs_throttled_seconds,
    ),
    (
        "container_memory_usage_bytes",
        "Current memory usage in bytes, including all memory regardless of when it was accessed",
        Kind::Gauge,
        |s| s.memory_usage,
    ),
    (
        "container_memory_max_usage_bytes",
        "Maximum memory usage recorded in bytes",
        Kind::Gauge,
        |s| s.memory_max_usage,
    ),
    (
        "container_memory_working_set_bytes",
        "Current working set in bytes.",
        Kind::Gauge,
        |s| s.memory_working_set,
    ),
    (
        "container_memory_rss",
        "Size of RSS in bytes.",
        Kind::Gauge,
        |s| s.memory_rss,
    ),
    (
        "container_memory_cache",
        "Number of bytes of page cache memory.",
        Kind::Gauge,
        |s| s.memory_cache,
    ),
    (
        "container_memory_mapped_file",
        "Size of memory mapped files in bytes.",
        Kind::Gauge,
        |s| s.memory_mapped_file,
    ),
    (
        "container_memory_swap",
        "Container swap usage in bytes.",
        Kind::Gauge,
        |s| s.memory_swap,
    ),
    (
        "container_memory_failcnt",
        "Number of memory usage hits limits",
        Kind::Counter,
        |s| s.memory_failcnt,
    ),
    (
        "container_oom_events_total",
        "Count of out of memory events observed for the container",
        Kind::Counter,
        |s| s.oom_events,
    ),
    (
        "container_processes",
        "Number of processes running inside the container.",
        Kind::Gauge,
        |s| s.processes,
    ),
    (
        "container_spec_cpu_period",
        "CPU period of the container.",
        Kind::Gauge,
        |s| s.spec_cpu_period,
    ),
    (
        "container_spec_cpu_quota",
        "CPU quota of the container.",
        Kind::Gauge,
        |s| s.spec_cpu_quota,
    ),
    (
        "container_spec_cpu_shares",
        "CPU share of the container.",
        Kind::Gauge,
        |s| s.spec_cpu_shares,
    ),
    (
        "container_spec_memory_limit_bytes",
        "Memory limit for the container.",
        Kind::Gauge,
        |s| s.spec_memory_limit,
    ),
    (
        "container_spec_memory_reservation_limit_bytes",
        "Memory reservation limit for the container.",
        Kind::Gauge,
        |s| s.spec_memory_reservation,
    ),
    (
        "container_spec_memory_swap_limit_bytes",
        "Memory swap limit for the container.",
        Kind::Gauge,
        |s| s.spec_memory_swap_limit,
    ),
];

type PickIo = fn(&cgroup::DeviceIo) -> f64;

const IO_FAMILIES: &[(&str, &str, PickIo)] = &[
    (
        "container_fs_reads_bytes_total",
        "Cumulative count of bytes read",
        |io| io.read_bytes,
    ),
    (
        "container_fs_writes_bytes_total",
        "Cumulative count of bytes written",
        |io| io.write_bytes,
    ),
    (
        "container_fs_reads_total",
        "Cumulative count of reads completed",
        |io| io.reads,
    ),
    (
        "container_fs_writes_total",
        "Cumulative count of writes completed",
        |io| io.writes,
    ),
];

/// In the order of [`NetDev::values`].
const NET_FAMILIES: [(&str, &str); 8] = [
    (
        "container_network_receive_bytes_total",
        "Cumulative count of bytes received",
    ),
    (
        "container_network_receive_packets_total",
        "Cumulative count of packets received",
    ),
    (
        "container_network_receive_errors_total",
        "Cumulative count of errors encountered while receiving",
    ),
    (
        "container_network_receive_packets_dropped_total",
        "Cumulative count of packets dropped while receiving",
    ),
    (
        "container_network_transmit_bytes_total",
        "Cumulative count of bytes transmitted",
    ),
    (
        "container_network_transmit_packets_total",
        "Cumulative count of packets transmitted",
    ),
    (
        "container_network_transmit_errors_total",
        "Cumulative count of errors encountered while transmitting",
    ),
    (
        "container_network_transmit_packets_dropped_total",
        "Cumulative count of packets dropped while transmitting",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::tests::samples;

    const UID: &str = "3f2a9c1e-7b4d-4e21-9a0b-1c2d3e4f5a6b";
    const UID2: &str = "99990000-1111-2222-3333-444455556666";

    fn app_id() -> String {
        "a1".repeat(32)
    }

    fn db_id() -> String {
        "d4".repeat(32)
    }

    /// A pod list as the kubelet serves it: `web-0` (burstable, one
    /// container; its sandbox is not listed) and `db-0` (guaranteed).
    fn pod_list() -> String {
        format!(
            r#"{{"kind":"PodList","apiVersion":"v1","items":[
  {{"metadata":{{"name":"web-0","namespace":"shop","uid":"{UID}"}},
   "status":{{"phase":"Running","containerStatuses":[{{"name":"app","image":"registry.local/shop/web:1.4","containerID":"containerd://{}",
     "state":{{"running":{{"startedAt":"2026-12-03T10:00:00Z"}}}}}}]}}}},
  {{"metadata":{{"name":"db-0","namespace":"shop","uid":"{UID2}"}},
   "status":{{"phase":"Running","containerStatuses":[{{"name":"postgres","image":"postgres:16","containerID":"containerd://{}","state":{{"running":{{}}}}}}]}}}}]}}"#,
            app_id(),
            db_id()
        )
    }

    fn write(root: &Path, rel: &str, text: &str) {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// The kubelet's layout under cgroup v2 with the systemd driver.
    fn cgroup_v2(root: &Path) {
        let pod = format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
            UID.replace('-', "_")
        );
        write(
            root,
            "cgroup/cgroup.controllers",
            "cpuset cpu io memory pids\n",
        );
        write(
            root,
            "cgroup/system.slice/containerd.service/cpu.stat",
            "usage_usec 1\n",
        );
        write(
            root,
            &format!("cgroup/{pod}/cpu.stat"),
            "usage_usec 9000000\nuser_usec 6000000\nsystem_usec 3000000\n",
        );
        write(root, &format!("cgroup/{pod}/memory.current"), "300000000\n");
        write(
            root,
            &format!("cgroup/{pod}/memory.stat"),
            "anon 100000000\nfile 150000000\ninactive_file 50000000\n",
        );
        let app = format!("cgroup/{pod}/cri-containerd-{}.scope", app_id());
        write(root, &format!("{app}/cpu.stat"), "usage_usec 7250000\nuser_usec 5000000\nsystem_usec 2250000\nnr_periods 120\nnr_throttled 7\nthrottled_usec 350000\n");
        write(root, &format!("{app}/cpu.max"), "50000 100000\n");
        write(root, &format!("{app}/cpu.weight"), "20\n");
        write(root, &format!("{app}/memory.current"), "200000000\n");
        write(root, &format!("{app}/memory.peak"), "250000000\n");
        write(root, &format!("{app}/memory.max"), "536870912\n");
        write(root, &format!("{app}/memory.low"), "0\n");
        write(root, &format!("{app}/memory.swap.current"), "0\n");
        write(root, &format!("{app}/memory.swap.max"), "max\n");
        write(
            root,
            &format!("{app}/memory.stat"),
            "anon 80000000\nfile 110000000\nfile_mapped 9000000\ninactive_file 40000000\n",
        );
        write(
            root,
            &format!("{app}/memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        );
        write(root, &format!("{app}/pids.current"), "12\n");
        write(
            root,
            &format!("{app}/io.stat"),
            "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
        );
        write(root, &format!("{app}/cgroup.procs"), "4242\n4243\n");
        // The sandbox (pause) container: in no container status.
        let pause = format!("cgroup/{pod}/cri-containerd-{}.scope", "5a".repeat(32));
        write(root, &format!("{pause}/cpu.stat"), "usage_usec 10\n");
        let db = format!(
            "cgroup/kubepods.slice/kubepods-pod{}.slice/cri-containerd-{}.scope",
            UID2.replace('-', "_"),
            db_id()
        );
        write(root, &format!("{db}/cpu.stat"), "usage_usec 1000000\n");
        write(root, &format!("{db}/memory.current"), "1000\n");
        write(root, &format!("{db}/memory.max"), "max\n");
        write(root, &format!("{db}/cpu.max"), "max 100000\n");
        write(
            root,
            "proc/4242/net/dev",
            "Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n  eth0:  123456     789    1    2    0     0          0         0    65432     321    3    4    0     0       0          0\n",
        );
        write(
            root,
            "sys/dev/block/8:0/uevent",
            "MAJOR=8\nMINOR=0\nDEVNAME=sda\nDEVTYPE=disk\n",
        );
    }

    fn collector(root: &Path, cgroup_dir: &str) -> Containers {
        write(root, "pods.json", &pod_list());
        let cfg = ContainersConfig {
            cgroupfs: root.join(cgroup_dir),
            procfs: root.join("proc"),
            sysfs: root.join("sys"),
            pods: crate::scrape_config::PodsConfig {
                file: Some(root.join("pods.json")),
                ..Default::default()
            },
            ..ContainersConfig::default()
        };
        Containers::new(&cfg)
    }

    #[test]
    fn cgroup_v2_with_the_systemd_driver_in_cadvisor_names() {
        let dir = tempfile::tempdir().unwrap();
        cgroup_v2(dir.path());
        let c = collector(dir.path(), "cgroup");
        assert_eq!(c.cgroups.version, cgroup::Version::V2);
        let got = samples(&c.gather(Duration::from_secs(1)).unwrap());
        let pod_id = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
            UID.replace('-', "_")
        );
        let app = format!(
            "container=app,id={pod_id}/cri-containerd-{}.scope,image=registry.local/shop/web:1.4,name={},namespace=shop,pod=web-0",
            app_id(),
            app_id()
        );
        let pod = format!("container=,id={pod_id},image=,name=,namespace=shop,pod=web-0");
        for want in [
            format!(
                "container_cpu_usage_seconds_total{{container=app,cpu=total,{}}} 7.25",
                &app["container=app,".len()..]
            ),
            format!("container_cpu_user_seconds_total{{{app}}} 5"),
            format!("container_cpu_cfs_throttled_periods_total{{{app}}} 7"),
            format!("container_cpu_cfs_throttled_seconds_total{{{app}}} 0.35"),
            format!("container_memory_usage_bytes{{{app}}} 200000000"),
            format!("container_memory_working_set_bytes{{{app}}} 160000000"),
            format!("container_memory_rss{{{app}}} 80000000"),
            format!("container_memory_cache{{{app}}} 110000000"),
            format!("container_memory_mapped_file{{{app}}} 9000000"),
            format!("container_memory_max_usage_bytes{{{app}}} 250000000"),
            format!("container_memory_failcnt{{{app}}} 3"),
            format!("container_oom_events_total{{{app}}} 1"),
            format!("container_processes{{{app}}} 12"),
            format!("container_spec_cpu_quota{{{app}}} 50000"),
            format!("container_spec_cpu_period{{{app}}} 100000"),
            // cpu.weight 20 is what the kubelet sets for 512 shares; the
            // conversion back loses precision, as cAdvisor's does (500).
            format!("container_spec_cpu_shares{{{app}}} 500"),
            format!("container_spec_memory_limit_bytes{{{app}}} 536870912"),
            format!("container_spec_memory_swap_limit_bytes{{{app}}} 0"),
            format!(
                "container_fs_reads_bytes_total{{{},device=/dev/sda,{}}} 4096",
                "container=app",
                &app["container=app,".len()..]
            ),
            format!(
                "container_fs_writes_total{{container=app,device=/dev/sda,{}}} 2",
                &app["container=app,".len()..]
            ),
            format!("container_start_time_seconds{{{app}}} 1796292000"),
            // The pod's own cgroup, and its network (loopback left out).
            format!(
                "container_cpu_usage_seconds_total{{container=,cpu=total,{}}} 9",
                &pod["container=,".len()..]
            ),
            format!("container_memory_working_set_bytes{{{pod}}} 250000000"),
            format!(
                "container_network_receive_bytes_total{{{},interface=eth0,{}}} 123456",
                "container=,id=".to_string() + &pod_id + ",image=",
                &pod[pod.find("name=").unwrap()..]
            ),
            format!(
                "container_network_transmit_packets_dropped_total{{{},interface=eth0,{}}} 4",
                "container=,id=".to_string() + &pod_id + ",image=",
                &pod[pod.find("name=").unwrap()..]
            ),
        ] {
            assert!(got.contains(&want), "missing {want}\nin {got:#?}");
        }
        // The guaranteed pod's container: no quota, unlimited memory as 0.
        let db: Vec<&String> = got
            .iter()
            .filter(|s| s.contains("container=postgres"))
            .collect();
        assert!(
            db.iter()
                .any(|s| s.starts_with("container_spec_memory_limit_bytes{") && s.ends_with(" 0")),
            "{db:?}"
        );
        assert!(
            !db.iter()
                .any(|s| s.starts_with("container_spec_cpu_quota{")),
            "{db:?}"
        );
        // Nothing for the sandbox, system services or the network's lo.
        assert!(
            !got.iter().any(|s| s.contains(&"5a".repeat(32))),
            "sandbox reported"
        );
        assert!(!got.iter().any(|s| s.contains("containerd.service")));
        assert!(!got.iter().any(|s| s.contains("interface=lo")));
    }

    #[test]
    fn cgroup_v1_with_the_cgroupfs_driver() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let rel = format!("kubepods/burstable/pod{UID}/{}", app_id());
        write(
            root,
            &format!("v1/cpuacct/{rel}/cpuacct.usage"),
            "7250000000\n",
        );
        write(
            root,
            &format!("v1/cpuacct/{rel}/cpuacct.stat"),
            "user 500\nsystem 225\n",
        );
        write(
            root,
            &format!("v1/cpu/{rel}/cpu.stat"),
            "nr_periods 120\nnr_throttled 7\nthrottled_time 350000000\n",
        );
        write(root, &format!("v1/cpu/{rel}/cpu.shares"), "512\n");
        write(root, &format!("v1/cpu/{rel}/cpu.cfs_quota_us"), "-1\n");
        write(root, &format!("v1/cpu/{rel}/cpu.cfs_period_us"), "100000\n");
        write(
            root,
            &format!("v1/memory/{rel}/memory.usage_in_bytes"),
            "200000000\n",
        );
        write(
            root,
            &format!("v1/memory/{rel}/memory.limit_in_bytes"),
            "9223372036854771712\n",
        );
        write(root, &format!("v1/memory/{rel}/memory.stat"), "cache 1\nrss 2\ntotal_cache 110000000\ntotal_rss 80000000\ntotal_mapped_file 9000000\ntotal_inactive_file 40000000\n");
        write(root, &format!("v1/memory/{rel}/memory.failcnt"), "0\n");
        write(
            root,
            &format!("v1/blkio/{rel}/blkio.throttle.io_service_bytes"),
            "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Total 12288\nTotal 12288\n",
        );
        write(
            root,
            &format!("v1/blkio/{rel}/blkio.throttle.io_serviced"),
            "8:0 Read 1\n8:0 Write 2\nTotal 3\n",
        );
        let c = collector(root, "v1");
        assert_eq!(c.cgroups.version, cgroup::Version::V1);
        let got = samples(&c.gather(Duration::from_secs(1)).unwrap());
        let app = format!(
            "container=app,id=/{rel},image=registry.local/shop/web:1.4,name={},namespace=shop,pod=web-0",
            app_id()
        );
        let rest = &app["container=app,".len()..];
        for want in [
            format!("container_cpu_usage_seconds_total{{container=app,cpu=total,{rest}}} 7.25"),
            format!("container_cpu_user_seconds_total{{{app}}} 5"),
            format!("container_cpu_system_seconds_total{{{app}}} 2.25"),
            format!("container_cpu_cfs_throttled_seconds_total{{{app}}} 0.35"),
            format!("container_memory_working_set_bytes{{{app}}} 160000000"),
            format!("container_memory_rss{{{app}}} 80000000"),
            format!("container_spec_memory_limit_bytes{{{app}}} 0"),
            format!("container_spec_cpu_shares{{{app}}} 512"),
            format!("container_fs_reads_total{{container=app,device=8:0,{rest}}} 1"),
            format!("container_fs_writes_bytes_total{{container=app,device=8:0,{rest}}} 8192"),
        ] {
            assert!(got.contains(&want), "missing {want}\nin {got:#?}");
        }
        assert!(
            !got.iter()
                .any(|s| s.starts_with("container_spec_cpu_quota{")),
            "-1 is no quota"
        );
    }

    #[test]
    fn without_a_pod_list_the_scrape_fails_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        cgroup_v2(dir.path());
        let c = collector(dir.path(), "cgroup");
        std::fs::remove_file(dir.path().join("pods.json")).unwrap();
        let e = c.gather(Duration::from_secs(1)).unwrap_err();
        assert!(e.starts_with("reading the pod list "), "{e}");
        // Once read, an unreadable list keeps the last one.
        write(dir.path(), "pods.json", &pod_list());
        assert!(c.gather(Duration::from_secs(1)).is_ok());
        std::fs::write(dir.path().join("pods.json"), "{").unwrap();
        c.cache.lock().unwrap().fetched = Some(Instant::now() - POD_LIST_TTL);
        let body = c.gather(Duration::from_secs(1)).unwrap();
        assert!(body.contains("pod=\"web-0\""));
    }
}
