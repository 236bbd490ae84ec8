//! Network devices from /sys/class/net: the statistics node_exporter's
//! `netdev` collector reports (`node_network_{receive,transmit}_*_total`,
//! loopback left out as it leaves it out) and, from the `netclass`
//! collector, `node_network_up` and `node_network_mtu_bytes`.

use super::{read, Exposition, HostPaths, Kind};
use std::path::Path;

/// sysfs statistics file → node_exporter's statistic name.
pub const SYSFS_STATS: [(&str, &str); 17] = [
    ("rx_bytes", "receive_bytes"),
    ("rx_compressed", "receive_compressed"),
    ("rx_dropped", "receive_drop"),
    ("rx_errors", "receive_errs"),
    ("rx_fifo_errors", "receive_fifo"),
    ("rx_frame_errors", "receive_frame"),
    ("multicast", "receive_multicast"),
    ("rx_nohandler", "receive_nohandler"),
    ("rx_packets", "receive_packets"),
    ("tx_bytes", "transmit_bytes"),
    ("tx_carrier_errors", "transmit_carrier"),
    ("collisions", "transmit_colls"),
    ("tx_compressed", "transmit_compressed"),
    ("tx_dropped", "transmit_drop"),
    ("tx_errors", "transmit_errs"),
    ("tx_fifo_errors", "transmit_fifo"),
    ("tx_packets", "transmit_packets"),
];

const IFF_LOOPBACK: u64 = 0x8;

fn devices(paths: &HostPaths) -> Result<Vec<String>, String> {
    let dir = paths.sys("class/net");
    let mut devs: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    devs.sort();
    Ok(devs)
}

fn read_number(path: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(path).ok()?;
    let t = text.trim();
    match t.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok().map(|v| v as f64),
        None => t.parse().ok(),
    }
}

pub fn collect_netdev(paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    for dev in devices(paths)? {
        let base = paths.sys(&format!("class/net/{dev}"));
        let flags = read_number(&base.join("flags")).unwrap_or(0.0) as u64;
        if flags & IFF_LOOPBACK != 0 {
            continue;
        }
        let stats: Option<Vec<f64>> = SYSFS_STATS
            .iter()
            .map(|(file, _)| read_number(&base.join("statistics").join(file)))
            .collect();
        if let Some(stats) = stats {
            rows.push((dev, stats));
        }
    }
    for (i, (_, stat)) in SYSFS_STATS.iter().enumerate() {
        let name = format!("node_network_{stat}_total");
        out.family(
            &name,
            &format!("Network device statistic {stat}."),
            Kind::Counter,
        );
        for (dev, stats) in &rows {
            out.sample(&name, &[("device", dev)], stats[i]);
        }
    }
    Ok(())
}

pub fn collect_netclass(paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let devs = devices(paths)?;
    let mut up = Vec::new();
    let mut mtu = Vec::new();
    for dev in &devs {
        let base = paths.sys(&format!("class/net/{dev}"));
        let state = read(&base.join("operstate")).unwrap_or_default();
        up.push((dev, if state.trim() == "up" { 1.0 } else { 0.0 }));
        if let Some(m) = read_number(&base.join("mtu")) {
            mtu.push((dev, m));
        }
    }
    out.family(
        "node_network_mtu_bytes",
        "Network device property: mtu_bytes",
        Kind::Gauge,
    );
    for (dev, v) in mtu {
        out.sample("node_network_mtu_bytes", &[("device", dev)], v);
    }
    out.family(
        "node_network_up",
        "Value is 1 if operstate is 'up', 0 otherwise.",
        Kind::Gauge,
    );
    for (dev, v) in up {
        out.sample("node_network_up", &[("device", dev)], v);
    }
    Ok(())
}
