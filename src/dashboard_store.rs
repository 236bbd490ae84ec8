//! Saved dashboards: one `<uid>.json` per dashboard in a directory (by
//! default `<data dir>/dashboards`, or `dashboards_dir` in the config, so a
//! team can point it at a git checkout). Writes go to a temporary file,
//! are synced and renamed into place, so a crash leaves the old file or the
//! new one, never half of one. Built-in dashboards are not files and
//! cannot be overwritten.

use dashboards::model::Summary;
use dashboards::Dashboard;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Invalid(#[from] dashboards::Invalid),
    #[error("dashboard {0:?} is built in; save it under another uid")]
    Builtin(String),
    #[error("uid {path:?} in the URL and {body:?} in the document differ")]
    UidMismatch { path: String, body: String },
    #[error("no dashboard {0:?}")]
    NotFound(String),
    #[error("dashboard is {size} bytes, over the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("{max} dashboards are saved already, the limit; delete one first")]
    TooMany { max: usize },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A file in the directory that is not a valid dashboard.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BrokenFile {
    pub file: String,
    pub error: String,
}

/// Largest dashboard document accepted: the built-in ones are a few KB,
/// Grafana's biggest real-world boards a few hundred.
pub const MAX_DASHBOARD_BYTES: usize = 1 << 20;
/// Most dashboards one server keeps.
pub const MAX_DASHBOARDS: usize = 1000;

pub struct DashboardStore {
    dir: PathBuf,
    /// Serialises writers, so two saves of one uid cannot interleave.
    write: Mutex<()>,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { what, path, source }
}

impl DashboardStore {
    pub fn new(dir: PathBuf) -> DashboardStore {
        DashboardStore {
            dir,
            write: Mutex::new(()),
        }
    }

    /// Saved dashboard files in the directory.
    fn count_files(&self) -> usize {
        std::fs::read_dir(&self.dir).map_or(0, |rd| {
            rd.filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.ends_with(".json") && !name.starts_with('.')
                })
                .count()
        })
    }

    fn path(&self, uid: &str) -> PathBuf {
        self.dir.join(format!("{uid}.json"))
    }

    /// Built-ins first, then the saved ones by title; unreadable files are
    /// reported, not hidden.
    pub fn list(&self) -> (Vec<Summary>, Vec<BrokenFile>) {
        let mut out: Vec<Summary> = dashboards::builtin::all()
            .iter()
            .map(|d| d.summary(true))
            .collect();
        let mut saved = Vec::new();
        let mut broken = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.extension().and_then(|x| x.to_str()) != Some("json") {
                    continue;
                }
                let file = p
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                match std::fs::read_to_string(&p)
                    .map_err(|e| e.to_string())
                    .and_then(|t| dashboards::validate::parse(&t).map_err(|e| e.to_string()))
                {
                    Ok(d) if file == format!("{}.json", d.uid) => saved.push(d.summary(false)),
                    Ok(d) => broken.push(BrokenFile {
                        file,
                        error: format!(
                            "its uid is {:?}; the file must be named {}.json",
                            d.uid, d.uid
                        ),
                    }),
                    Err(error) => broken.push(BrokenFile { file, error }),
                }
            }
        }
        saved.sort_by(|a, b| a.title.cmp(&b.title).then(a.uid.cmp(&b.uid)));
        out.extend(saved);
        broken.sort_by(|a, b| a.file.cmp(&b.file));
        (out, broken)
    }

    pub fn get(&self, uid: &str) -> Result<(Dashboard, bool), StoreError> {
        if let Some(d) = dashboards::builtin::get(uid) {
            return Ok((d, true));
        }
        if !dashboards::validate::valid_uid(uid) {
            return Err(StoreError::NotFound(uid.to_string()));
        }
        let p = self.path(uid);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(uid.to_string()))
            }
            Err(e) => return Err(io("cannot read", &p)(e)),
        };
        Ok((dashboards::validate::parse(&text)?, false))
    }

    /// Validates and saves; answers whether it created the dashboard.
    pub fn put(&self, uid: &str, body: &str) -> Result<bool, StoreError> {
        if body.len() > MAX_DASHBOARD_BYTES {
            return Err(StoreError::TooLarge {
                size: body.len(),
                max: MAX_DASHBOARD_BYTES,
            });
        }
        let d = dashboards::validate::parse(body)?;
        if d.uid != uid {
            return Err(StoreError::UidMismatch {
                path: uid.to_string(),
                body: d.uid,
            });
        }
        if dashboards::builtin::is_builtin(uid) {
            return Err(StoreError::Builtin(uid.to_string()));
        }
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::create_dir_all(&self.dir).map_err(io("cannot create", &self.dir))?;
        let path = self.path(uid);
        let created = !path.exists();
        if created && self.count_files() >= MAX_DASHBOARDS {
            return Err(StoreError::TooMany {
                max: MAX_DASHBOARDS,
            });
        }
        let tmp = self.dir.join(format!(".{uid}.json.tmp"));
        // Pretty JSON with a final newline: the files are meant for git.
        let mut text = serde_json::to_string_pretty(&d).unwrap_or_default();
        text.push('\n');
        {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp).map_err(io("cannot create", &tmp))?;
            f.write_all(text.as_bytes())
                .and_then(|_| f.sync_all())
                .map_err(io("cannot write", &tmp))?;
        }
        std::fs::rename(&tmp, &path).map_err(io("cannot rename into", &path))?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(created)
    }

    pub fn delete(&self, uid: &str) -> Result<(), StoreError> {
        if dashboards::builtin::is_builtin(uid) {
            return Err(StoreError::Builtin(uid.to_string()));
        }
        if !dashboards::validate::valid_uid(uid) {
            return Err(StoreError::NotFound(uid.to_string()));
        }
        let _guard = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let p = self.path(uid);
        match std::fs::remove_file(&p) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(uid.to_string()))
            }
            Err(e) => Err(io("cannot remove", &p)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"uid": "team-a", "title": "Team A",
        "panels": [{"title": "up", "type": "stat", "targets": [{"expr": "up"}]}]}"#;

    #[test]
    fn save_list_get_delete() {
        let dir = tempfile::tempdir().unwrap();
        let s = DashboardStore::new(dir.path().join("dash"));
        assert!(s.put("team-a", DOC).unwrap());
        assert!(!s.put("team-a", DOC).unwrap());
        let (list, broken) = s.list();
        assert!(broken.is_empty());
        assert!(list.iter().any(|d| d.uid == "node" && d.builtin));
        assert!(list.iter().any(|d| d.uid == "team-a" && !d.builtin));
        let (d, builtin) = s.get("team-a").unwrap();
        assert_eq!((d.title.as_str(), builtin), ("Team A", false));
        let file = std::fs::read_to_string(dir.path().join("dash/team-a.json")).unwrap();
        assert!(file.ends_with("}\n") && file.contains("\n  \"title\""));
        s.delete("team-a").unwrap();
        assert!(matches!(s.get("team-a"), Err(StoreError::NotFound(_))));
        assert!(matches!(s.delete("team-a"), Err(StoreError::NotFound(_))));
    }

    #[test]
    fn refuses_what_it_must() {
        let dir = tempfile::tempdir().unwrap();
        let s = DashboardStore::new(dir.path().to_path_buf());
        assert!(matches!(
            s.put("other", DOC),
            Err(StoreError::UidMismatch { .. })
        ));
        let node = DOC.replace("team-a", "node");
        assert!(matches!(s.put("node", &node), Err(StoreError::Builtin(_))));
        assert!(matches!(s.delete("node"), Err(StoreError::Builtin(_))));
        let e = s
            .put("team-a", "{\"uid\": \"team-a\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1"), "{e}");
        assert!(matches!(
            s.get("../etc/passwd"),
            Err(StoreError::NotFound(_))
        ));
        std::fs::write(dir.path().join("junk.json"), "not json").unwrap();
        std::fs::write(dir.path().join("misnamed.json"), DOC).unwrap();
        let (_, broken) = s.list();
        assert_eq!(broken.len(), 2);
        assert!(broken[1].error.contains("team-a.json"), "{broken:?}");
    }
}
