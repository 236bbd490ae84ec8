//! Network devices from /sys/class/net: the statistics node_exporter's
//! `netdev` collector reports (`node_network_{receive,transmit}_*_total`,
//! loopback left out as it leaves it out) and, from the `netclass`
//! collector, `node_network_up` and `node_network_mtu_bytes`.

use super::{Exposition, HostPaths, Kind};
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

/// sysfs property file → node_exporter's netclass metric and whether it
/// counts (the rest are gauges), in node_exporter's order.
const NETCLASS_PROPERTIES: [(&str, &str, bool); 15] = [
    ("addr_assign_type", "address_assign_type", false),
    ("carrier", "carrier", false),
    ("carrier_changes", "carrier_changes_total", true),
    ("carrier_up_count", "carrier_up_changes_total", true),
    ("carrier_down_count", "carrier_down_changes_total", true),
    ("dev_id", "device_id", false),
    ("dormant", "dormant", false),
    ("flags", "flags", false),
    ("ifindex", "iface_id", false),
    ("iflink", "iface_link", false),
    ("link_mode", "iface_link_mode", false),
    ("mtu", "mtu_bytes", false),
    ("name_assign_type", "name_assign_type", false),
    ("netdev_group", "net_dev_group", false),
    ("tx_queue_len", "transmit_queue_length", false),
];

/// A property file's text, or `None` where the kernel refuses to read it
/// (carrier of a device that is down, speed of a virtual one).
fn property(base: &Path, file: &str) -> Option<String> {
    std::fs::read_to_string(base.join(file))
        .ok()
        .map(|t| t.trim_end_matches('\n').to_string())
}

/// node_exporter's netclass collector: every property of every device in
/// /sys/class/net (loopback included, as it does), `node_network_info`,
/// `node_network_speed_bytes` and `node_network_up`.
pub fn collect_netclass(paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let devs = devices(paths)?;
    struct Dev {
        name: String,
        values: Vec<Option<f64>>,
        speed: Option<f64>,
        protocol_type: Option<f64>,
        info: [String; 5],
        up: f64,
    }
    let mut rows = Vec::new();
    for dev in &devs {
        let base = paths.sys(&format!("class/net/{dev}"));
        let text = |f: &str| property(&base, f).unwrap_or_default();
        let operstate = text("operstate");
        rows.push(Dev {
            name: dev.clone(),
            values: NETCLASS_PROPERTIES
                .iter()
                .map(|(file, _, _)| read_number(&base.join(file)))
                .collect(),
            // Mbit/s to bytes/s as node_exporter does it (integers; -1,
            // "unknown", stays negative).
            speed: property(&base, "speed")
                .and_then(|s| s.trim().parse::<i64>().ok())
                .map(|mbit| (mbit * 1000 * 1000 / 8) as f64),
            protocol_type: read_number(&base.join("type")),
            info: [
                text("address"),
                text("broadcast"),
                text("duplex"),
                text("ifalias"),
                operstate.clone(),
            ],
            up: if operstate.trim() == "up" { 1.0 } else { 0.0 },
        });
    }
    out.family(
        "node_network_info",
        "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
        Kind::Gauge,
    );
    for d in &rows {
        let [address, broadcast, duplex, ifalias, operstate] = &d.info;
        out.sample(
            "node_network_info",
            &[
                ("address", address),
                ("broadcast", broadcast),
                ("device", &d.name),
                ("duplex", duplex),
                ("ifalias", ifalias),
                ("operstate", operstate),
            ],
            1.0,
        );
    }
    for (i, (_, metric, counter)) in NETCLASS_PROPERTIES.iter().enumerate() {
        let name = format!("node_network_{metric}");
        let kind = if *counter { Kind::Counter } else { Kind::Gauge };
        out.family(&name, &format!("Network device property: {metric}"), kind);
        for d in &rows {
            if let Some(v) = d.values[i] {
                out.sample(&name, &[("device", &d.name)], v);
            }
        }
    }
    for (metric, pick) in [
        (
            "speed_bytes",
            (|d: &Dev| d.speed) as fn(&Dev) -> Option<f64>,
        ),
        ("protocol_type", |d: &Dev| d.protocol_type),
    ] {
        let name = format!("node_network_{metric}");
        out.family(
            &name,
            &format!("Network device property: {metric}"),
            Kind::Gauge,
        );
        for d in &rows {
            if let Some(v) = pick(d) {
                out.sample(&name, &[("device", &d.name)], v);
            }
        }
    }
    out.family(
        "node_network_up",
        "Value is 1 if operstate is 'up', 0 otherwise.",
        Kind::Gauge,
    );
    for d in &rows {
        out.sample("node_network_up", &[("device", &d.name)], d.up);
    }
    Ok(())
}
