//! `node_uname_info` (the uname system call, as node_exporter reports it)
//! and `node_time_seconds`.

use super::{Exposition, HostPaths, Kind};

/// The uname fields, or `None` if the call fails.
pub fn uname() -> Option<[String; 6]> {
    // SAFETY: utsname is plain bytes; uname fills it and returns 0 on
    // success, and every field is NUL-terminated within its array.
    unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return None;
        }
        let field = |f: &[libc::c_char]| {
            let bytes: Vec<u8> = f
                .iter()
                .take_while(|&&c| c != 0)
                .map(|&c| c as u8)
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        };
        Some([
            field(&u.domainname),
            field(&u.machine),
            field(&u.nodename),
            field(&u.release),
            field(&u.sysname),
            field(&u.version),
        ])
    }
}

pub fn collect_uname(_paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let [domainname, machine, nodename, release, sysname, version] =
        uname().ok_or_else(|| "uname failed".to_string())?;
    out.family(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        Kind::Gauge,
    );
    out.sample(
        "node_uname_info",
        &[
            ("domainname", &domainname),
            ("machine", &machine),
            ("nodename", &nodename),
            ("release", &release),
            ("sysname", &sysname),
            ("version", &version),
        ],
        1.0,
    );
    Ok(())
}

pub fn collect_time(_paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    out.single(
        "node_time_seconds",
        "System time in seconds since epoch (1970).",
        Kind::Gauge,
        now.as_secs_f64(),
    );
    Ok(())
}
