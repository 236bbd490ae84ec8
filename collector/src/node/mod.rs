//! Built-in node metrics with node_exporter's names, help texts, types and
//! labels, so node_exporter dashboards and alerts work unchanged. Read from
//! /proc and /sys under configurable roots (`procfs`, `sysfs`, `rootfs`),
//! so the agent can run in a container that mounts the host's.
//!
//! Each collector writes the text exposition format, which the agent then
//! treats like any scraped body (relabeling, staleness, report series). A
//! collector that cannot read its source is skipped and named in
//! `node_scrape_collector_success`, as node_exporter does; it never fails
//! the whole scrape.

mod diskstats;
mod filesystem;
mod loadavg;
mod meminfo;
mod netdev;
mod pressure;
mod stat;
mod uname;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Where the host's filesystems are.
#[derive(Debug, Clone)]
pub struct HostPaths {
    pub procfs: PathBuf,
    pub sysfs: PathBuf,
    pub rootfs: PathBuf,
}

impl Default for HostPaths {
    fn default() -> Self {
        HostPaths {
            procfs: "/proc".into(),
            sysfs: "/sys".into(),
            rootfs: "/".into(),
        }
    }
}

impl HostPaths {
    fn proc(&self, rel: &str) -> PathBuf {
        self.procfs.join(rel)
    }

    fn sys(&self, rel: &str) -> PathBuf {
        self.sysfs.join(rel)
    }
}

/// A text exposition being written, one family at a time.
#[derive(Default)]
pub struct Exposition {
    out: String,
}

#[derive(Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Exposition {
    /// Starts a family: its `# HELP` and `# TYPE` lines.
    pub fn family(&mut self, name: &str, help: &str, kind: Kind) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample of the current family.
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (n, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.out, "{n}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {}", format_value(value));
    }

    /// A family with a single unlabelled sample.
    pub fn single(&mut self, name: &str, help: &str, kind: Kind, value: f64) {
        self.family(name, help, kind);
        self.sample(name, &[], value);
    }

    pub fn into_string(self) -> String {
        self.out
    }
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

type Collect = fn(&HostPaths, &mut Exposition) -> Result<(), String>;

/// Every built-in collector, by node_exporter's collector name.
const COLLECTORS: &[(&str, Collect)] = &[
    ("cpu", stat::collect_cpu),
    ("diskstats", diskstats::collect),
    ("filesystem", filesystem::collect),
    ("loadavg", loadavg::collect),
    ("meminfo", meminfo::collect),
    ("netclass", netdev::collect_netclass),
    ("netdev", netdev::collect_netdev),
    ("pressure", pressure::collect),
    ("stat", stat::collect_stat),
    ("time", uname::collect_time),
    ("uname", uname::collect_uname),
];

/// Runs every collector into one exposition body.
pub fn gather(paths: &HostPaths) -> String {
    let mut out = Exposition::default();
    let mut results = Vec::new();
    for (name, collect) in COLLECTORS {
        let mut part = Exposition::default();
        match collect(paths, &mut part) {
            Ok(()) => {
                out.out.push_str(&part.out);
                results.push((*name, 1.0));
            }
            Err(e) => {
                tracing::debug!(collector = name, "node collector failed: {e}");
                results.push((*name, 0.0));
            }
        }
    }
    out.family(
        "node_scrape_collector_success",
        "node_exporter: Whether a collector succeeded.",
        Kind::Gauge,
    );
    for (name, ok) in results {
        out.sample("node_scrape_collector_success", &[("collector", name)], ok);
    }
    out.into_string()
}

/// The host's name (uname's nodename), for the node job's `instance`.
pub fn hostname() -> Option<String> {
    uname::uname().map(|u| u[2].clone())
}

/// Reads a whole file, naming it in the error.
fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::exposition::{Entry, Format, Parser};

    /// A fabricated host: the files each collector reads, as a real
    /// kernel writes them.
    pub(crate) fn fake_host() -> (tempfile::TempDir, HostPaths) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        let w = |rel: &str, text: &str| {
            let path = p.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        w("proc/loadavg", "0.40 0.66 0.59 1/86 27406\n");
        w(
            "proc/diskstats",
            "   7       0 loop0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n 254       0 vda 177728 12674 23031418 297251 47256 35688 13979792 57449 0 48316 359765 26998 32 14242536 4516 7198 548\n 254       1 vda1 1 1 1 1 1 1 1 1 0 1 1\n",
        );
        w(
            "run/udev/data/b254:0",
            "E:ID_MODEL=QEMU_DISK\nE:ID_SERIAL_SHORT=abc\n",
        );
        w(
            "proc/1/mounts",
            "proc /proc proc rw,relatime 0 0\n/dev/vda / ext4 rw,relatime 0 0\n/dev/vda / ext4 rw,relatime 0 0\ntmpfs /gone tmpfs ro 0 0\n",
        );
        w(
            "proc/meminfo",
            "MemTotal:       24683568 kB\nActive(anon):       1512 kB\nHugePages_Total:       0\nHugepagesize:       2048 kB\n",
        );
        w(
            "proc/stat",
            "cpu  243126 0 31238 2336561 2669 0 1322 10881 0 0\ncpu0 115069 0 14448 1176749 568 0 454 5734 10 2\ncpu1 128056 0 16789 1159811 2101 0 867 5146 0 0\nintr 1949940 0 0 2623\nctxt 2354915\nbtime 1796270080\nprocesses 27406\nprocs_running 1\nprocs_blocked 0\nsoftirq 1 2 3\n",
        );
        w("proc/pressure/cpu", "some avg10=1.09 avg60=0.98 avg300=1.01 total=114197425\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        w("proc/pressure/io", "some avg10=0.00 avg60=0.00 avg300=0.00 total=21569090\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=19076698\n");
        w("proc/pressure/memory", "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n");
        for (dev, flags, state, mtu) in [
            ("lo", "0x9", "unknown", "65536"),
            ("eth0", "0x1003", "up", "1400"),
        ] {
            w(&format!("sys/class/net/{dev}/flags"), &format!("{flags}\n"));
            w(
                &format!("sys/class/net/{dev}/operstate"),
                &format!("{state}\n"),
            );
            w(&format!("sys/class/net/{dev}/mtu"), &format!("{mtu}\n"));
            for (i, stat) in netdev::SYSFS_STATS.iter().enumerate() {
                w(
                    &format!("sys/class/net/{dev}/statistics/{}", stat.0),
                    &format!("{}\n", i * 10),
                );
            }
        }
        let paths = HostPaths {
            procfs: p.join("proc"),
            sysfs: p.join("sys"),
            rootfs: p.to_path_buf(),
        };
        (dir, paths)
    }

    /// `name{labels} value` for every sample of a body.
    pub(crate) fn samples(body: &str) -> Vec<String> {
        let mut p = Parser::new(body, Format::Text);
        let mut out = Vec::new();
        while let Some(e) = p.next_entry().unwrap() {
            if let Entry::Sample(s) = e {
                let l: Vec<String> = s.labels.iter().map(|(n, v)| format!("{n}={v}")).collect();
                out.push(format!("{}{{{}}} {}", s.name, l.join(","), s.value));
            }
        }
        out
    }

    #[test]
    fn gather_parses_and_reports_each_collector() {
        let (_d, paths) = fake_host();
        let body = gather(&paths);
        let got = samples(&body);
        for want in [
            "node_load1{} 0.4",
            "node_memory_MemTotal_bytes{} 25275973632",
            "node_memory_Active_anon_bytes{} 1548288",
            "node_memory_HugePages_Total{} 0",
            "node_cpu_seconds_total{cpu=0,mode=user} 1150.69",
            "node_cpu_seconds_total{cpu=1,mode=steal} 51.46",
            "node_cpu_guest_seconds_total{cpu=0,mode=user} 0.1",
            "node_context_switches_total{} 2354915",
            "node_boot_time_seconds{} 1796270080",
            "node_intr_total{} 1949940",
            "node_pressure_cpu_waiting_seconds_total{} 114.197425",
            "node_pressure_io_stalled_seconds_total{} 19.076698",
            "node_network_up{device=eth0} 1",
            "node_network_up{device=lo} 0",
            "node_network_mtu_bytes{device=eth0} 1400",
            "node_scrape_collector_success{collector=cpu} 1",
            "node_disk_reads_completed_total{device=vda} 177728",
            "node_disk_read_bytes_total{device=vda} 11792086016",
            "node_disk_read_time_seconds_total{device=vda} 297.25",
            "node_disk_flush_requests_total{device=vda} 7198",
            "node_disk_info{device=vda,major=254,minor=0,model=QEMU_DISK,path=,revision=,serial=abc,wwn=} 1",
            "node_filesystem_readonly{device=/dev/vda,fstype=ext4,mountpoint=/} 0",
            "node_filesystem_device_error{device=tmpfs,fstype=tmpfs,mountpoint=/gone} 1",
            "node_filesystem_readonly{device=tmpfs,fstype=tmpfs,mountpoint=/gone} 1",
        ] {
            assert!(got.iter().any(|g| g.starts_with(want)), "{want} not in {got:#?}");
        }
        assert!(!got
            .iter()
            .any(|g| g.contains("device=vda1") || g.contains("device=loop0")));
        assert_eq!(
            got.iter()
                .filter(|g| g.starts_with("node_filesystem_size_bytes"))
                .count(),
            1,
            "the root file system once; /gone cannot be measured"
        );
        // Loopback has no netdev statistics, as node_exporter reports it.
        assert!(!got
            .iter()
            .any(|g| g.starts_with("node_network_receive_bytes_total{device=lo}")));
        assert!(got
            .iter()
            .any(|g| g.starts_with("node_network_receive_bytes_total{device=eth0}")));
    }

    #[test]
    fn a_missing_source_fails_only_its_collector() {
        let (d, paths) = fake_host();
        std::fs::remove_dir_all(d.path().join("proc/pressure")).unwrap();
        let got = samples(&gather(&paths));
        assert!(got.contains(&"node_scrape_collector_success{collector=pressure} 0".to_string()));
        assert!(got.contains(&"node_scrape_collector_success{collector=loadavg} 1".to_string()));
    }
}
