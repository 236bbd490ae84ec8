//! `node_disk_*` from /proc/diskstats (and `node_disk_info` with the udev
//! properties node_exporter reads), except node_exporter's default device
//! exclusion (partitions, ram, loop and floppy devices).

use super::{read, Exposition, HostPaths, Kind};
use regex::Regex;
use std::sync::OnceLock;

/// node_exporter 1.5's `--collector.diskstats.device-exclude` default.
const DEVICE_EXCLUDE: &str = r"^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$";

/// Disk sectors are 512 bytes in /proc/diskstats whatever the hardware's.
const SECTOR: f64 = 512.0;

fn excluded(device: &str) -> bool {
    static RE: OnceLock<Option<Regex>> = OnceLock::new();
    RE.get_or_init(|| Regex::new(DEVICE_EXCLUDE).ok())
        .as_ref()
        .is_some_and(|re| re.is_match(device))
}

/// (field index after the device name, name, help, kind, scale), in
/// /proc/diskstats order.
const FIELDS: [(usize, &str, &str, Kind, f64); 17] = [
    (
        0,
        "node_disk_reads_completed_total",
        "The total number of reads completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        1,
        "node_disk_reads_merged_total",
        "The total number of reads merged.",
        Kind::Counter,
        1.0,
    ),
    (
        2,
        "node_disk_read_bytes_total",
        "The total number of bytes read successfully.",
        Kind::Counter,
        SECTOR,
    ),
    (
        3,
        "node_disk_read_time_seconds_total",
        "The total number of seconds spent by all reads.",
        Kind::Counter,
        0.001,
    ),
    (
        4,
        "node_disk_writes_completed_total",
        "The total number of writes completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        5,
        "node_disk_writes_merged_total",
        "The number of writes merged.",
        Kind::Counter,
        1.0,
    ),
    (
        6,
        "node_disk_written_bytes_total",
        "The total number of bytes written successfully.",
        Kind::Counter,
        SECTOR,
    ),
    (
        7,
        "node_disk_write_time_seconds_total",
        "This is the total number of seconds spent by all writes.",
        Kind::Counter,
        0.001,
    ),
    (
        8,
        "node_disk_io_now",
        "The number of I/Os currently in progress.",
        Kind::Gauge,
        1.0,
    ),
    (
        9,
        "node_disk_io_time_seconds_total",
        "Total seconds spent doing I/Os.",
        Kind::Counter,
        0.001,
    ),
    (
        10,
        "node_disk_io_time_weighted_seconds_total",
        "The weighted # of seconds spent doing I/Os.",
        Kind::Counter,
        0.001,
    ),
    (
        11,
        "node_disk_discards_completed_total",
        "The total number of discards completed successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        12,
        "node_disk_discards_merged_total",
        "The total number of discards merged.",
        Kind::Counter,
        1.0,
    ),
    (
        13,
        "node_disk_discarded_sectors_total",
        "The total number of sectors discarded successfully.",
        Kind::Counter,
        1.0,
    ),
    (
        14,
        "node_disk_discard_time_seconds_total",
        "This is the total number of seconds spent by all discards.",
        Kind::Counter,
        0.001,
    ),
    (
        15,
        "node_disk_flush_requests_total",
        "The total number of flush requests completed successfully",
        Kind::Counter,
        1.0,
    ),
    (
        16,
        "node_disk_flush_requests_time_seconds_total",
        "This is the total number of seconds spent by all flush requests.",
        Kind::Counter,
        0.001,
    ),
];

/// udev's properties of a block device, from its database under the host
/// root (`/run/udev/data/b<major>:<minor>`); empty when there is none.
fn udev_info(paths: &HostPaths, major: &str, minor: &str) -> [String; 5] {
    let path = paths.rootfs.join(format!("run/udev/data/b{major}:{minor}"));
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let prop = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("E:")?.strip_prefix(key)?.strip_prefix('='))
            .unwrap_or("")
            .to_string()
    };
    [
        prop("ID_MODEL"),
        prop("ID_PATH"),
        prop("ID_REVISION"),
        prop("ID_SERIAL_SHORT"),
        prop("ID_WWN"),
    ]
}

pub fn collect(paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let text = read(&paths.proc("diskstats"))?;
    let mut rows: Vec<(String, String, String, Vec<f64>)> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 14 || excluded(f[2]) {
            continue;
        }
        let values: Vec<f64> = f[3..].iter().map(|x| x.parse().unwrap_or(0.0)).collect();
        rows.push((f[2].to_string(), f[0].to_string(), f[1].to_string(), values));
    }
    out.family(
        "node_disk_info",
        "Info of /sys/block/<block_device>.",
        Kind::Gauge,
    );
    for (dev, major, minor, _) in &rows {
        let [model, path, revision, serial, wwn] = udev_info(paths, major, minor);
        out.sample(
            "node_disk_info",
            &[
                ("device", dev),
                ("major", major),
                ("minor", minor),
                ("model", &model),
                ("path", &path),
                ("revision", &revision),
                ("serial", &serial),
                ("wwn", &wwn),
            ],
            1.0,
        );
    }
    for (i, name, help, kind, scale) in FIELDS {
        // Older kernels have fewer fields: report what the line holds.
        if !rows.iter().any(|r| r.3.len() > i) {
            continue;
        }
        out.family(name, help, kind);
        for (dev, _, _, values) in &rows {
            if let Some(v) = values.get(i) {
                out.sample(name, &[("device", dev)], v * scale);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_and_pseudo_devices_are_excluded() {
        for d in ["sda1", "vda2", "nvme0n1p1", "loop0", "ram0", "fd0"] {
            assert!(excluded(d), "{d}");
        }
        for d in ["sda", "vda", "nvme0n1", "zram0", "dm-0"] {
            assert!(!excluded(d), "{d}");
        }
    }
}
