//! The systems under test: each started on a free loopback port with a
//! fresh data directory, measured through /proc, stopped when dropped.

use crate::workload::Request;
use anyhow::{bail, Context, Result};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Prometheus,
    VictoriaMetrics,
    Vigil,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Prometheus => "Prometheus",
            Kind::VictoriaMetrics => "VictoriaMetrics",
            Kind::Vigil => "Vigil",
        }
    }
}

pub struct Peer {
    pub kind: Kind,
    child: Child,
    pub base: String,
    pub data_dir: PathBuf,
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(600))
        .build()
}

impl Peer {
    pub fn start(kind: Kind, bin: &Path, work: &Path) -> Result<Peer> {
        Peer::start_with_rules(kind, bin, work, None)
    }

    /// Starts a peer that also evaluates `rule_file` every 15 s (Prometheus
    /// and Vigil; VictoriaMetrics has no rule engine of its own).
    pub fn start_with_rules(
        kind: Kind,
        bin: &Path,
        work: &Path,
        rule_file: Option<&Path>,
    ) -> Result<Peer> {
        let port = free_port()?;
        let data_dir = work.join(kind.name().to_lowercase());
        std::fs::create_dir_all(&data_dir)?;
        let rules = match rule_file {
            Some(f) => format!(
                "  evaluation_interval: 15s\nrule_files:\n  - {}\n",
                f.display()
            ),
            None => String::new(),
        };
        let mut cmd = Command::new(bin);
        match kind {
            Kind::Prometheus => {
                let cfg = work.join("prometheus.yml");
                std::fs::write(&cfg, format!("global:\n  scrape_interval: 15s\n{rules}"))?;
                cmd.arg(format!("--config.file={}", cfg.display()))
                    .arg(format!("--storage.tsdb.path={}", data_dir.display()))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                    .arg("--web.enable-remote-write-receiver");
            }
            Kind::VictoriaMetrics => {
                cmd.arg(format!("-storageDataPath={}", data_dir.display()))
                    .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                    .arg("-retentionPeriod=1");
            }
            Kind::Vigil => {
                if rule_file.is_some() {
                    let cfg = work.join("vigil.yml");
                    std::fs::write(&cfg, format!("global:\n{rules}"))?;
                    cmd.arg("--config").arg(&cfg);
                }
                // The peers scrape nothing and tail no logs: neither does Vigil.
                cmd.arg("--no-local-agent")
                    .arg("--listen-addr")
                    .arg(format!("127.0.0.1:{port}"))
                    .arg("--data-dir")
                    .arg(&data_dir)
                    .arg("--log-level")
                    .arg("warn");
            }
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let peer = Peer {
            kind,
            child,
            base: format!("http://127.0.0.1:{port}"),
            data_dir,
        };
        peer.wait_ready()?;
        Ok(peer)
    }

    fn wait_ready(&self) -> Result<()> {
        let path = match self.kind {
            Kind::VictoriaMetrics => "/health",
            _ => "/-/ready",
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if agent().get(&format!("{}{path}", self.base)).call().is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{} did not become ready in 60 s", self.kind.name())
    }

    /// Sends every request with `senders` threads, each owning whole
    /// streams; returns (wall seconds, failed requests).
    pub fn send_all(&self, requests: &Arc<Vec<Request>>, senders: usize) -> (f64, u64) {
        let failed = Arc::new(AtomicU64::new(0));
        let url = self.write_url();
        let start = Instant::now();
        let threads: Vec<_> = (0..senders)
            .map(|i| {
                let (requests, failed, url) = (requests.clone(), failed.clone(), url.clone());
                std::thread::spawn(move || {
                    let agent = agent();
                    // Each sender owns whole streams, so every series stays in order.
                    for r in requests.iter().filter(|r| r.stream % senders == i) {
                        let res = agent
                            .post(&url)
                            .set("Content-Type", "application/x-protobuf")
                            .set("Content-Encoding", "snappy")
                            .set("X-Prometheus-Remote-Write-Version", "0.1.0")
                            .send_bytes(&r.body);
                        if res.is_err() {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        (
            start.elapsed().as_secs_f64(),
            failed.load(Ordering::Relaxed),
        )
    }

    pub fn write_url(&self) -> String {
        format!("{}/api/v1/write", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User + system CPU seconds the process has used so far.
    pub fn cpu_seconds(&self) -> Result<f64> {
        crate::proc_stats::cpu_seconds(self.pid())
    }

    /// Resident bytes now: (anonymous, file-backed).
    pub fn rss_now(&self) -> Result<(u64, u64)> {
        crate::proc_stats::rss_now(self.pid())
    }

    /// Peak resident set size in bytes (VmHWM).
    pub fn peak_rss(&self) -> Result<u64> {
        crate::proc_stats::peak_rss(self.pid())
    }

    /// Makes the peer persist what it holds in memory, as far as it can be
    /// asked to, and waits until its data directory stops changing.
    pub fn persist(&self) -> Result<()> {
        match self.kind {
            Kind::Vigil => {
                agent()
                    .post(&format!("{}/api/vigil/flush", self.base))
                    .call()?;
            }
            Kind::VictoriaMetrics => {
                agent()
                    .get(&format!("{}/internal/force_flush", self.base))
                    .call()?;
                let now = std::time::SystemTime::now();
                let secs = now.duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
                for back_days in [0i64, 40] {
                    let (y, m) = year_month(secs - back_days * 86_400);
                    let url = format!(
                        "{}/internal/force_merge?partition_prefix={y:04}_{m:02}",
                        self.base
                    );
                    agent().get(&url).call()?;
                }
            }
            Kind::Prometheus => {
                // Prometheus has no API to persist its head; it compacts on
                // its own once the head spans 1.5 block ranges. Wait for that.
                let deadline = Instant::now() + Duration::from_secs(240);
                while prometheus_blocks(&self.data_dir)?.1 == 0 {
                    if Instant::now() > deadline {
                        bail!(
                            "Prometheus wrote no block within 240 s (send more than 3 h of data)"
                        );
                    }
                    std::thread::sleep(Duration::from_secs(2));
                }
            }
        }
        wait_stable(&self.data_dir)
    }

    /// What the peer keeps on disk, measured the same way for every peer:
    /// the whole data directory, and the persisted blocks alone with the
    /// samples they hold.
    pub fn disk(&self, total_samples: u64) -> Result<Disk> {
        let whole_bytes = dir_size(&self.data_dir);
        let (block_bytes, block_samples) = match self.kind {
            Kind::Vigil => {
                let text = agent()
                    .get(&format!("{}/api/vigil/status", self.base))
                    .call()?
                    .into_string()?;
                let status: serde_json::Value = serde_json::from_str(&text)?;
                let samples = status["block_samples"].as_u64().context("block_samples")?;
                (dir_size(&self.data_dir.join("blocks")), samples)
            }
            // After force_flush every sample sent is in a part: the parts
            // (data/) and their index (indexdb/) are its blocks.
            Kind::VictoriaMetrics => (
                dir_size(&self.data_dir.join("data")) + dir_size(&self.data_dir.join("indexdb")),
                total_samples,
            ),
            Kind::Prometheus => prometheus_blocks(&self.data_dir)?,
        };
        Ok(Disk {
            whole_bytes,
            total_samples,
            block_bytes,
            block_samples,
        })
    }
}

/// On-disk bytes after a peer persisted its data.
#[derive(Clone, Copy, Debug)]
pub struct Disk {
    /// The whole data directory (blocks, WAL, head files, caches, indexes).
    pub whole_bytes: u64,
    /// Every sample sent.
    pub total_samples: u64,
    /// The persisted blocks and their indexes only.
    pub block_bytes: u64,
    /// The samples those blocks hold.
    pub block_samples: u64,
}

impl Disk {
    pub fn whole_per_sample(&self) -> Option<f64> {
        (self.total_samples > 0).then(|| self.whole_bytes as f64 / self.total_samples as f64)
    }

    pub fn blocks_per_sample(&self) -> Option<f64> {
        (self.block_samples > 0).then(|| self.block_bytes as f64 / self.block_samples as f64)
    }
}

/// Bytes and samples in Prometheus's persisted blocks (not its WAL).
fn prometheus_blocks(dir: &Path) -> Result<(u64, u64)> {
    let (mut bytes, mut samples) = (0, 0);
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        let meta = p.join("meta.json");
        if let Ok(text) = std::fs::read_to_string(&meta) {
            let j: serde_json::Value = serde_json::from_str(&text)?;
            samples += j["stats"]["numSamples"].as_u64().unwrap_or(0);
            bytes += dir_size(&p);
        }
    }
    Ok((bytes, samples))
}

fn wait_stable(dir: &Path) -> Result<()> {
    let mut last = dir_size(dir);
    let mut stable_for = 0;
    for _ in 0..120 {
        std::thread::sleep(Duration::from_secs(1));
        let now = dir_size(dir);
        stable_for = if now == last { stable_for + 1 } else { 0 };
        if stable_for >= 5 {
            return Ok(());
        }
        last = now;
    }
    Ok(())
}

pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| {
            let p = e.path();
            match e.metadata() {
                Ok(m) if m.is_dir() => dir_size(&p),
                Ok(m) => m.len(),
                Err(_) => 0,
            }
        })
        .sum()
}

/// (year, month) of a Unix time, UTC.
fn year_month(secs: i64) -> (i64, u32) {
    let (y, m, _) = vigil_config::civil::civil_from_days(secs.div_euclid(86_400));
    (y, m)
}

#[cfg(test)]
mod tests {
    #[test]
    fn year_month() {
        assert_eq!(super::year_month(1_700_000_000), (2023, 11));
        assert_eq!(super::year_month(0), (1970, 1));
    }
}
