//! `file_sd_configs`: target groups from JSON or YAML files (a list of
//! `{targets: [...], labels: {...}}`), as Prometheus reads them. A glob may
//! stand in the last path element (`/etc/targets/*.json`). Each target gets
//! `__meta_filepath`. A file that cannot be read or parsed keeps the groups
//! it had, and the error is logged, as Prometheus does.

use crate::labels::Labels;
use crate::target::{TargetGroup, ADDRESS};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use vigil_config::service_discovery::FileSdConfig;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileGroup {
    #[serde(default)]
    targets: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// `*` and `?` wildcards within one path element.
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    match (pattern.first(), name.first()) {
        (None, None) => true,
        (Some(b'*'), _) => {
            glob_match(&pattern[1..], name) || (!name.is_empty() && glob_match(pattern, &name[1..]))
        }
        (Some(b'?'), Some(_)) => glob_match(&pattern[1..], &name[1..]),
        (Some(p), Some(n)) if p == n => glob_match(&pattern[1..], &name[1..]),
        _ => false,
    }
}

/// The files a pattern names now, sorted.
pub fn expand(pattern: &str) -> Vec<PathBuf> {
    let path = Path::new(pattern);
    let (Some(dir), Some(last)) = (path.parent(), path.file_name().and_then(|f| f.to_str())) else {
        return Vec::new();
    };
    if !last.contains(['*', '?']) {
        return vec![path.to_path_buf()];
    }
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter(|e| {
                    e.file_name()
                        .to_str()
                        .is_some_and(|n| glob_match(last.as_bytes(), n.as_bytes()))
                })
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Reads one file's groups.
pub fn read_file(path: &Path) -> Result<Vec<TargetGroup>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // YAML is a superset of JSON: one parser reads both.
    let groups: Vec<FileGroup> = if text.trim().is_empty() {
        Vec::new()
    } else {
        serde_yaml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?
    };
    let file = path.display().to_string();
    Ok(groups
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let mut labels =
                Labels::from_pairs(g.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            labels.set("__meta_filepath", file.as_str());
            TargetGroup {
                targets: g
                    .targets
                    .iter()
                    .map(|t| Labels::from_pairs([(ADDRESS, t.as_str())]))
                    .collect(),
                labels,
                source: format!("{file}:{i}"),
            }
        })
        .collect())
}

/// What one job's file_sd configs currently say, re-read when files change.
#[derive(Default)]
pub struct FileSd {
    /// Per file: its modification time when read, and its groups.
    files: BTreeMap<PathBuf, (Option<SystemTime>, Vec<TargetGroup>)>,
}

impl FileSd {
    /// Re-reads files that are new or changed (or all, with `force`); drops
    /// files that are gone. True when anything changed.
    pub fn refresh(&mut self, cfgs: &[FileSdConfig], force: bool) -> bool {
        let mut seen: Vec<PathBuf> = Vec::new();
        let mut changed = false;
        for c in cfgs {
            for pattern in &c.files {
                for path in expand(pattern) {
                    let mtime = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
                    seen.push(path.clone());
                    let known = self.files.get(&path);
                    if !force && known.is_some_and(|(t, _)| *t == mtime && mtime.is_some()) {
                        continue;
                    }
                    match read_file(&path) {
                        Ok(groups) => {
                            if known.map(|(_, g)| g) != Some(&groups) {
                                changed = true;
                            }
                            self.files.insert(path, (mtime, groups));
                        }
                        Err(e) => tracing::warn!("file_sd: {e} (keeping its previous targets)"),
                    }
                }
            }
        }
        let before = self.files.len();
        self.files.retain(|p, _| seen.contains(p));
        changed || self.files.len() != before
    }

    pub fn groups(&self) -> Vec<TargetGroup> {
        self.files
            .values()
            .flat_map(|(_, g)| g.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn globs_and_files() {
        assert!(glob_match(b"*.json", b"a.json"));
        assert!(glob_match(b"t?.yml", b"t1.yml"));
        assert!(!glob_match(b"*.json", b"a.yml"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.json"),
            r#"[{"targets": ["h1:9100", "h2:9100"], "labels": {"env": "prod"}}]"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("b.yml"), "- targets: ['h3:1']\n").unwrap();
        std::fs::write(dir.path().join("bad.json"), "[{\"targetz\": []}]").unwrap();
        let pattern = format!("{}/*.json", dir.path().display());
        let cfg = [FileSdConfig {
            files: vec![pattern],
            refresh_interval: Duration::from_secs(60),
        }];
        let mut sd = FileSd::default();
        assert!(sd.refresh(&cfg, false));
        let groups = sd.groups();
        assert_eq!(groups.len(), 1, "bad.json is refused, b.yml not matched");
        assert_eq!(groups[0].targets.len(), 2);
        assert_eq!(groups[0].labels.get("env"), Some("prod"));
        assert!(groups[0]
            .labels
            .get("__meta_filepath")
            .is_some_and(|p| p.ends_with("a.json")));
        assert!(!sd.refresh(&cfg, false), "nothing changed");
        std::fs::remove_file(dir.path().join("a.json")).unwrap();
        assert!(sd.refresh(&cfg, false));
        assert!(sd.groups().is_empty());
        assert!(read_file(&dir.path().join("bad.json"))
            .unwrap_err()
            .contains("targetz"));
    }
}
