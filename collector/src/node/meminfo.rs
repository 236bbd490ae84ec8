//! `node_memory_*` from /proc/meminfo: one gauge per field, `_bytes` for
//! fields in kB, `(anon)`-style suffixes folded into the name
//! (`Active(anon)` → `node_memory_Active_anon_bytes`), as node_exporter
//! names them.

use super::{read, Exposition, HostPaths, Kind};

pub fn collect(paths: &HostPaths, out: &mut Exposition) -> Result<(), String> {
    let path = paths.proc("meminfo");
    let text = read(&path)?;
    let mut fields: Vec<(String, f64)> = Vec::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let mut parts = rest.split_whitespace();
        let Some(Ok(v)) = parts.next().map(str::parse::<f64>) else {
            return Err(format!("{}: bad line {line:?}", path.display()));
        };
        let key = key.replace('(', "_").replace(')', "");
        let (name, v) = match parts.next() {
            Some("kB") => (format!("node_memory_{key}_bytes"), v * 1024.0),
            _ => (format!("node_memory_{key}"), v),
        };
        fields.push((name, v));
    }
    // node_exporter's families come out sorted by name.
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, v) in fields {
        let field = name.trim_start_matches("node_memory_");
        out.single(
            &name,
            &format!("Memory information field {field}."),
            Kind::Gauge,
            v,
        );
    }
    Ok(())
}
