//! A deterministic node_exporter-like remote_write workload.
//!
//! Each host exposes a fixed set of series (CPU counters with two decimals,
//! byte counters, slowly moving memory gauges, constant filesystem sizes and
//! info metrics, load averages, ratios that need full floats). All series of
//! one host are scraped together and carry the same timestamp per scrape,
//! with a few milliseconds of jitter between scrapes, as real scrapes do.

use vigil_wire::remote_write::{encode_body, SeriesToSend, WireSample};

/// The node_disk_*_total counters generated per device (without the prefix
/// and suffix), shared with the rule benchmark so its rules hit real series.
pub const DISK_COUNTERS: [&str; 6] = [
    "reads_completed",
    "writes_completed",
    "read_bytes",
    "written_bytes",
    "reads_merged",
    "writes_merged",
];

/// xorshift64*: tiny, deterministic, good enough for synthetic data.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    /// Counter of seconds with two decimals at a steady per-series rate
    /// (node_cpu_seconds_total, disk io time).
    CounterSeconds,
    /// Busy integer counter (bytes, packets) at a steady rate with 20 % noise.
    CounterBytes,
    /// Integer counter that rarely moves (errors, drops, most netstat fields).
    CounterRare,
    /// Gauge in KiB steps that moves on about half the scrapes (meminfo, free space).
    GaugeKib,
    /// Constant (sizes, info metrics, flags).
    Constant,
    /// Slow gauge with two decimals (load average, temperatures).
    GaugeTwoDecimals,
    /// Duration in seconds from a nanosecond clock (scrape durations).
    GaugeFloat,
    /// Cumulative histogram bucket `i` of 10: an integer counter whose rate
    /// grows with the bucket's bound.
    Bucket(u8),
}

struct SeriesModel {
    labels: Vec<(String, String)>,
    kind: Kind,
    value: f64,
    /// Per-series rate for counters (units per second).
    rate: f64,
    rng: Rng,
}

impl SeriesModel {
    fn step(&mut self) -> f64 {
        let r = &mut self.rng;
        self.value = match self.kind {
            Kind::CounterSeconds => {
                let inc = (self.rate * 15.0 + (r.unit() - 0.5) * 0.4).max(0.0);
                ((self.value + inc) * 100.0).round() / 100.0
            }
            Kind::CounterBytes | Kind::Bucket(_) => {
                self.value + (self.rate * 15.0 * (0.8 + 0.4 * r.unit())).round()
            }
            Kind::CounterRare => self.value + if r.next() % 200 == 0 { 1.0 } else { 0.0 },
            Kind::GaugeKib => {
                if r.next() % 2 == 0 {
                    self.value
                } else {
                    let step = (r.next() % 64) as f64 - 32.0;
                    (self.value + step * 1024.0).max(0.0)
                }
            }
            Kind::Constant => self.value,
            Kind::GaugeTwoDecimals => {
                let v = self.value + ((r.next() % 21) as f64 - 10.0) / 100.0;
                (v.clamp(0.0, 99.0) * 100.0).round() / 100.0
            }
            // Durations measured in nanoseconds and reported in seconds,
            // as client libraries do.
            Kind::GaugeFloat => (100_000 + r.next() % 50_000_000) as f64 / 1e9,
        };
        self.value
    }
}

/// About 1000 series per host, in proportions modelled on node_exporter.
fn host_series(host: usize, per_host: usize, seed: u64) -> Vec<SeriesModel> {
    let instance = format!("host-{host:04}:9100");
    let mut out: Vec<SeriesModel> = Vec::new();
    let mut add = |name: &str, extra: Vec<(&str, String)>, kind: Kind, initial: f64| {
        let mut labels = vec![
            ("__name__".to_string(), name.to_string()),
            ("instance".to_string(), instance.clone()),
            ("job".to_string(), "node".to_string()),
        ];
        labels.extend(extra.into_iter().map(|(k, v)| (k.to_string(), v)));
        labels.sort();
        let n = out.len() as u64;
        let mut rng = Rng::new(seed ^ ((host as u64) << 20) ^ n);
        let rate = match kind {
            Kind::CounterSeconds => rng.unit(),
            Kind::CounterBytes => 10f64.powf(2.0 + 4.0 * rng.unit()),
            Kind::Bucket(i) => f64::from(i) + 1.0,
            _ => 0.0,
        };
        out.push(SeriesModel {
            labels,
            kind,
            value: initial,
            rate,
            rng,
        });
    };
    let modes = [
        "idle", "iowait", "irq", "nice", "softirq", "steal", "system", "user",
    ];
    for cpu in 0..8 {
        for m in modes {
            add(
                "node_cpu_seconds_total",
                vec![("cpu", cpu.to_string()), ("mode", m.into())],
                Kind::CounterSeconds,
                1000.0,
            );
        }
        for m in ["guest", "guest_nice"] {
            add(
                "node_cpu_guest_seconds_total",
                vec![("cpu", cpu.to_string()), ("mode", m.into())],
                Kind::Constant,
                0.0,
            );
        }
    }
    for c in 0..40 {
        let collector = format!("collector{c:02}");
        add(
            "node_scrape_collector_duration_seconds",
            vec![("collector", collector.clone())],
            Kind::GaugeFloat,
            0.0,
        );
        add(
            "node_scrape_collector_success",
            vec![("collector", collector)],
            Kind::Constant,
            1.0,
        );
    }
    for dev in 0..10 {
        let d = format!("eth{dev}");
        for dir in ["receive", "transmit"] {
            for what in ["bytes", "packets"] {
                add(
                    &format!("node_network_{dir}_{what}_total"),
                    vec![("device", d.clone())],
                    Kind::CounterBytes,
                    0.0,
                );
            }
            for what in ["errs", "drop", "fifo", "frame", "compressed", "multicast"] {
                add(
                    &format!("node_network_{dir}_{what}_total"),
                    vec![("device", d.clone())],
                    Kind::CounterRare,
                    0.0,
                );
            }
        }
        for what in [
            "mtu_bytes",
            "speed_bytes",
            "up",
            "carrier",
            "flags",
            "iface_id",
            "dormant",
            "protocol_type",
            "transmit_queue_length",
        ] {
            add(
                &format!("node_network_{what}"),
                vec![("device", d.clone())],
                Kind::Constant,
                1500.0,
            );
        }
    }
    for dev in [
        "sda", "sdb", "sdc", "sdd", "nvme0n1", "nvme1n1", "dm-0", "dm-1",
    ] {
        for what in DISK_COUNTERS {
            add(
                &format!("node_disk_{what}_total"),
                vec![("device", dev.into())],
                Kind::CounterBytes,
                0.0,
            );
        }
        for what in [
            "discards_completed",
            "discards_merged",
            "discarded_sectors",
            "flush_requests",
            "io_now",
            "reads_failed",
            "writes_failed",
            "ios_weighted",
        ] {
            add(
                &format!("node_disk_{what}_total"),
                vec![("device", dev.into())],
                Kind::CounterRare,
                0.0,
            );
        }
        for what in ["io_time_seconds", "read_time_seconds", "write_time_seconds"] {
            add(
                &format!("node_disk_{what}_total"),
                vec![("device", dev.into())],
                Kind::CounterSeconds,
                0.0,
            );
        }
    }
    for mp in 0..20 {
        let l = || {
            vec![
                ("mountpoint", format!("/data{mp}")),
                ("fstype", "ext4".into()),
                ("device", format!("/dev/vd{mp}")),
            ]
        };
        for (name, init) in [
            ("size_bytes", 1_099_511_627_776.0),
            ("files", 65_536_000.0),
            ("readonly", 0.0),
            ("device_error", 0.0),
        ] {
            add(
                &format!("node_filesystem_{name}"),
                l(),
                Kind::Constant,
                init,
            );
        }
        for (name, init) in [
            ("free_bytes", 549_755_813_888.0),
            ("avail_bytes", 500_000_000_000.0),
            ("files_free", 60_000_000.0),
        ] {
            add(
                &format!("node_filesystem_{name}"),
                l(),
                Kind::GaugeKib,
                init,
            );
        }
    }
    for i in 0..50 {
        add(
            &format!("node_memory_field{i:02}_bytes"),
            vec![],
            Kind::GaugeKib,
            8_589_934_592.0,
        );
    }
    for i in 0..40 {
        let kind = if i % 2 == 0 {
            Kind::CounterBytes
        } else {
            Kind::CounterRare
        };
        add(&format!("node_vmstat_field{i:02}"), vec![], kind, 0.0);
    }
    for i in 0..60 {
        add(
            &format!("node_netstat_field{i:02}"),
            vec![],
            Kind::CounterRare,
            0.0,
        );
    }
    for n in ["node_load1", "node_load5", "node_load15"] {
        add(n, vec![], Kind::GaugeTwoDecimals, 1.0);
    }
    for i in 0..20 {
        add(
            "node_hwmon_temp_celsius",
            vec![
                ("chip", format!("chip{}", i / 4)),
                ("sensor", format!("temp{}", i % 4)),
            ],
            Kind::GaugeTwoDecimals,
            45.0,
        );
    }
    for i in 0..20 {
        let kind = if i < 5 {
            Kind::GaugeFloat
        } else {
            Kind::Constant
        };
        add(&format!("node_timex_field{i:02}"), vec![], kind, 1.0);
    }
    for i in 0..10 {
        add(
            "node_exporter_build_info",
            vec![("collector", format!("c{i}")), ("version", "1.5.0".into())],
            Kind::Constant,
            1.0,
        );
    }
    // A request-duration histogram, as an exporter's own HTTP handler has.
    let bounds = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf",
    ];
    for (i, le) in bounds.iter().enumerate() {
        add(
            "http_request_duration_seconds_bucket",
            vec![("handler", "/metrics".into()), ("le", le.to_string())],
            Kind::Bucket(i as u8),
            0.0,
        );
    }
    add(
        "http_request_duration_seconds_count",
        vec![("handler", "/metrics".into())],
        Kind::Bucket(9),
        0.0,
    );
    add(
        "http_request_duration_seconds_sum",
        vec![("handler", "/metrics".into())],
        Kind::CounterSeconds,
        0.0,
    );
    let kinds = [Kind::Constant, Kind::CounterRare, Kind::GaugeTwoDecimals];
    // The rest: textfile and other collectors.
    for i in 0..per_host {
        add(
            "node_textfile_value",
            vec![
                ("file", format!("f{}", i / 16)),
                ("key", format!("k{}", i % 16)),
            ],
            kinds[i % kinds.len()],
            40.0,
        );
    }
    out.truncate(per_host);
    out
}

/// The whole workload, generated lazily request by request.
pub struct Workload {
    hosts: Vec<Vec<SeriesModel>>,
    pub start_ms: i64,
    pub scrapes: usize,
    pub scrapes_per_request: usize,
    seed: u64,
}

/// One request, ready to send.
pub struct Request {
    pub body: Vec<u8>,
    /// Requests of the same stream must be sent in order.
    pub stream: usize,
}

pub const SCRAPE_INTERVAL_MS: i64 = 15_000;

impl Workload {
    pub fn new(hosts: usize, per_host: usize, scrapes: usize, start_ms: i64, seed: u64) -> Self {
        Workload {
            hosts: (0..hosts).map(|h| host_series(h, per_host, seed)).collect(),
            start_ms,
            scrapes,
            scrapes_per_request: 1,
            seed,
        }
    }

    pub fn total_series(&self) -> usize {
        self.hosts.iter().map(|h| h.len()).sum()
    }

    pub fn total_samples(&self) -> usize {
        self.total_series() * self.scrapes
    }

    /// The scrape timestamp of `host` at scrape `k`: shared by all its
    /// series, with up to ±5 ms of jitter.
    fn scrape_ts(&self, host: usize, k: usize) -> i64 {
        let mut r = Rng::new(self.seed ^ ((host as u64) << 32) ^ k as u64);
        self.start_ms + k as i64 * SCRAPE_INTERVAL_MS + (r.next() % 11) as i64 - 5
    }

    /// Generates every request in send order: time slab by time slab, host by host.
    pub fn generate(mut self) -> Vec<Request> {
        let mut out = Vec::new();
        let mut k0 = 0;
        while k0 < self.scrapes {
            let k1 = (k0 + self.scrapes_per_request).min(self.scrapes);
            for h in 0..self.hosts.len() {
                let stamps: Vec<i64> = (k0..k1).map(|k| self.scrape_ts(h, k)).collect();
                let series: Vec<SentSeries> = self.hosts[h]
                    .iter_mut()
                    .map(|s| SentSeries {
                        samples: stamps
                            .iter()
                            .map(|&timestamp_ms| WireSample {
                                timestamp_ms,
                                value: s.step(),
                            })
                            .collect(),
                        labels: &s.labels,
                    })
                    .collect();
                let body = encode_body(&series);
                out.push(Request { body, stream: h });
            }
            k0 = k1;
        }
        out
    }
}

/// One series of a request, as the remote_write encoder takes it.
struct SentSeries<'a> {
    labels: &'a [(String, String)],
    samples: Vec<WireSample>,
}

impl SeriesToSend for SentSeries<'_> {
    fn label_pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.labels.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }
    fn samples(&self) -> &[WireSample] {
        &self.samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_is_deterministic_and_sized_as_asked() {
        let make = || Workload::new(3, 1000, 4, 1_700_000_000_000, 7);
        let w = make();
        assert_eq!(w.total_series(), 3000);
        assert_eq!(w.total_samples(), 12_000);
        let a = w.generate();
        let b = make().generate();
        assert_eq!(a.len(), 3 * 4, "one request per host and scrape");
        assert!(a.iter().zip(&b).all(|(x, y)| x.body == y.body));
    }

    #[test]
    fn requests_decode_as_remote_write() {
        let w = Workload::new(2, 50, 2, 1_700_000_000_000, 7);
        let stamp = w.scrape_ts(1, 0);
        let per_host = w.hosts[1].len();
        let requests = w.generate();
        let raw = vigil_wire::remote_write::decompress(&requests[1].body).unwrap();
        let write = vigil_wire::remote_write::decode_uncompressed(&raw, |t, _| t).unwrap();
        assert_eq!(write.series().len(), per_host);
        assert!(write
            .series()
            .all(|(labels, stamps)| !labels.is_empty() && stamps == [stamp]));
    }

    #[test]
    fn a_hosts_series_share_one_timestamp_per_scrape() {
        let w = Workload::new(2, 10, 3, 1_700_000_000_000, 7);
        for h in 0..2 {
            for k in 0..3 {
                let t = w.scrape_ts(h, k);
                assert!((t - (1_700_000_000_000 + k as i64 * SCRAPE_INTERVAL_MS)).abs() <= 5);
            }
        }
    }
}
