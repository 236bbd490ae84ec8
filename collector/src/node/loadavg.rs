//! `node_load1`, `node_load5`, `node_load15` from /proc/loadavg.

use super::{read, Exposition, HostPaths, Kind};

pub fn collect(paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let path = paths.proc("loadavg");
    let text = read(&path)?;
    let mut fields = text.split_whitespace();
    for (name, help) in [
        ("node_load1", "1m load average."),
        ("node_load5", "5m load average."),
        ("node_load15", "15m load average."),
    ] {
        let v: f64 = fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("{}: unexpected content {text:?}", path.display()))?;
        out.single(name, help, Kind::Gauge, v);
    }
    Ok(())
}
