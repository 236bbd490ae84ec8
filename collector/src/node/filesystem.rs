//! `node_filesystem_*`: every mount of the host (/proc/1/mounts) except
//! node_exporter's default exclusions, measured with statfs under the
//! host's root.

use super::{read, Exposition, HostPaths, Kind};
use regex::Regex;
use std::sync::OnceLock;

/// node_exporter 1.5's defaults (`--collector.filesystem.*-exclude`).
const MOUNT_POINTS_EXCLUDE: &str =
    r"^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";
const FS_TYPES_EXCLUDE: &str = r"^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$";

fn excluded(mount_point: &str, fs_type: &str) -> bool {
    static RES: OnceLock<Option<(Regex, Regex)>> = OnceLock::new();
    let res = RES.get_or_init(|| {
        Some((
            Regex::new(MOUNT_POINTS_EXCLUDE).ok()?,
            Regex::new(FS_TYPES_EXCLUDE).ok()?,
        ))
    });
    match res {
        Some((mp, ft)) => mp.is_match(mount_point) || ft.is_match(fs_type),
        None => false,
    }
}

/// Undoes the kernel's octal escapes in mount fields (`\040` is a space).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Mount {
    device: String,
    mount_point: String,
    fs_type: String,
    read_only: bool,
}

fn mounts(paths: &HostPaths) -> Result<Vec<Mount>, String> {
    let text = read(&paths.proc("1/mounts"))?;
    let mut out: Vec<Mount> = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 4 {
            continue;
        }
        let m = Mount {
            device: unescape(f[0]),
            mount_point: unescape(f[1]),
            fs_type: f[2].to_string(),
            read_only: f[3].split(',').any(|o| o == "ro"),
        };
        if excluded(&m.mount_point, &m.fs_type) {
            continue;
        }
        // A mount listed twice would be two series with one label set.
        if out.iter().any(|o| {
            o.device == m.device && o.mount_point == m.mount_point && o.fs_type == m.fs_type
        }) {
            continue;
        }
        out.push(m);
    }
    Ok(out)
}

struct Usage {
    size: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}

fn statfs(path: &std::path::Path) -> Option<Usage> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a NUL-terminated path; statfs writes only into `s`.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        if libc::statfs(c.as_ptr(), &mut s) != 0 {
            return None;
        }
        let bsize = s.f_bsize as f64;
        Some(Usage {
            size: s.f_blocks as f64 * bsize,
            free: s.f_bfree as f64 * bsize,
            avail: s.f_bavail as f64 * bsize,
            files: s.f_files as f64,
            files_free: s.f_ffree as f64,
        })
    }
}

pub fn collect(paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let mut rows = Vec::new();
    for m in mounts(paths)? {
        let rel = m.mount_point.trim_start_matches('/');
        let usage = statfs(&paths.rootfs.join(rel));
        rows.push((m, usage));
    }
    type Field = fn(&Usage) -> f64;
    let families: [(&str, &str, Field); 5] = [
        (
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes.",
            |u| u.avail,
        ),
        (
            "node_filesystem_files",
            "Filesystem total file nodes.",
            |u| u.files,
        ),
        (
            "node_filesystem_files_free",
            "Filesystem total free file nodes.",
            |u| u.files_free,
        ),
        (
            "node_filesystem_free_bytes",
            "Filesystem free space in bytes.",
            |u| u.free,
        ),
        (
            "node_filesystem_size_bytes",
            "Filesystem size in bytes.",
            |u| u.size,
        ),
    ];
    let labels = |m: &Mount| {
        [
            ("device", m.device.clone()),
            ("fstype", m.fs_type.clone()),
            ("mountpoint", m.mount_point.clone()),
        ]
    };
    let sample = |out: &mut Exposition, name: &str, m: &Mount, v: f64| {
        let l = labels(m);
        let refs: Vec<(&str, &str)> = l.iter().map(|(n, v)| (*n, v.as_str())).collect();
        out.sample(name, &refs, v);
    };
    for (name, help, field) in families {
        out.family(name, help, Kind::Gauge);
        for (m, u) in &rows {
            if let Some(u) = u {
                sample(out, name, m, field(u));
            }
        }
    }
    out.family(
        "node_filesystem_device_error",
        "Whether an error occurred while getting statistics for the given device.",
        Kind::Gauge,
    );
    for (m, u) in &rows {
        sample(
            out,
            "node_filesystem_device_error",
            m,
            if u.is_some() { 0.0 } else { 1.0 },
        );
    }
    out.family(
        "node_filesystem_readonly",
        "Filesystem read-only status.",
        Kind::Gauge,
    );
    for (m, _) in &rows {
        sample(
            out,
            "node_filesystem_readonly",
            m,
            if m.read_only { 1.0 } else { 0.0 },
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_fields_are_unescaped_and_exclusions_apply() {
        assert_eq!(unescape(r"/mnt/my\040disk"), "/mnt/my disk");
        assert!(excluded("/proc", "proc"));
        assert!(excluded("/dev/shm", "tmpfs"));
        assert!(excluded("/data", "overlay"));
        assert!(!excluded("/", "ext4"));
        assert!(!excluded("/run", "tmpfs"));
    }
}
