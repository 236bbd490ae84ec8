//! Silences, as Alertmanager keeps them: label matchers with a start and
//! an end; an alert matched by an active silence is not notified. Kept in
//! a JSON file (written to a temporary file, fsync'd, renamed) so a
//! restart keeps them.

use crate::clock::lock;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SilenceMatcher {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_regex: bool,
    #[serde(default = "yes")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Silence {
    pub id: String,
    pub matchers: Vec<SilenceMatcher>,
    /// Milliseconds since the epoch.
    pub starts_at: i64,
    pub ends_at: i64,
    pub updated_at: i64,
    pub created_by: String,
    pub comment: String,
}

impl Silence {
    /// `pending`, `active` or `expired` at `now`.
    pub fn state(&self, now: i64) -> &'static str {
        if now < self.starts_at {
            "pending"
        } else if now < self.ends_at {
            "active"
        } else {
            "expired"
        }
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matchers.iter().all(|m| {
            let v = labels.get(&m.name).map_or("", String::as_str);
            let hit = if m.is_regex {
                regex::Regex::new(&format!("^(?:{})$", m.value)).is_ok_and(|r| r.is_match(v))
            } else {
                v == m.value
            };
            hit == m.is_equal
        })
    }
}

pub struct Silences {
    path: Option<PathBuf>,
    list: Mutex<Vec<Silence>>,
}

/// An id that is unique enough for silences (time and a counter).
fn new_id(now: i64, n: usize) -> String {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15 ^ (now as u64);
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9) ^ (n as u64);
    h = (h ^ (h >> 31)).wrapping_mul(0x94d0_49bb_1331_11eb);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        (now as u64) & 0xffff_ffff,
        (h >> 48) & 0xffff,
        (h >> 32) & 0xffff,
        (h >> 16) & 0xffff,
        h & 0xffff_ffff_ffff
    )
}

/// Largest silence (as JSON): Alertmanager's `--silences.max-silence-size-bytes`.
pub const MAX_SILENCE_BYTES: usize = 8 << 10;
/// Most active and pending silences: Alertmanager's `--silences.max-silences`.
/// With the size bound it keeps the state file a few MB at most, so
/// rewriting it whole on each change stays cheap.
pub const MAX_SILENCES: usize = 1000;
/// How long an expired silence stays listed (Alertmanager's `--data.retention`).
pub const EXPIRED_KEPT_MS: i64 = 120 * 3600 * 1000;

impl Silences {
    /// Silences kept in `path` (none when absent); `None`: memory only.
    pub fn open(path: Option<PathBuf>) -> Result<Silences, String> {
        let list = match &path {
            Some(p) if p.exists() => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?;
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?
            }
            _ => Vec::new(),
        };
        Ok(Silences {
            path,
            list: Mutex::new(list),
        })
    }

    fn save(&self, list: &[Silence]) -> Result<(), String> {
        let Some(p) = &self.path else { return Ok(()) };
        let tmp = p.with_extension("tmp");
        let text = serde_json::to_string(list).map_err(|e| e.to_string())?;
        let mut f = std::fs::File::create(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, p).map_err(|e| format!("{}: {e}", p.display()))
    }

    /// Creates (or, with a known id, updates) a silence; returns its id.
    /// Expired silences past [`EXPIRED_KEPT_MS`] are dropped on the way.
    pub fn put(&self, mut s: Silence, now: i64) -> Result<String, String> {
        let size = serde_json::to_string(&s).map_or(usize::MAX, |t| t.len());
        if size > MAX_SILENCE_BYTES {
            return Err(format!(
                "silence invalid: {size} bytes (matchers, comment and creator), over the limit of {MAX_SILENCE_BYTES}"
            ));
        }
        if s.matchers.is_empty() {
            return Err("silence invalid: at least one matcher required".into());
        }
        for m in &s.matchers {
            if m.name.is_empty() {
                return Err("silence invalid: a matcher has no label name".into());
            }
            if m.is_regex {
                regex::Regex::new(&m.value)
                    .map_err(|e| format!("silence invalid: matcher {}: {e}", m.name))?;
            }
        }
        if s.ends_at <= s.starts_at {
            return Err("silence invalid: end time must not be before start time".into());
        }
        if s.ends_at <= now {
            return Err("silence invalid: end time can't be in the past".into());
        }
        let mut list = lock(&self.list);
        list.retain(|x| x.ends_at > now - EXPIRED_KEPT_MS);
        if s.id.is_empty() {
            let live = list.iter().filter(|x| x.state(now) != "expired").count();
            if live >= MAX_SILENCES {
                return Err(format!(
                    "silence invalid: {MAX_SILENCES} silences are active or pending, the limit; expire one first"
                ));
            }
            s.id = new_id(now, list.len());
        } else if !list.iter().any(|x| x.id == s.id) {
            return Err(format!("silence {} not found", s.id));
        }
        s.updated_at = now;
        list.retain(|x| x.id != s.id);
        let id = s.id.clone();
        list.push(s);
        self.save(&list)?;
        Ok(id)
    }

    pub fn list(&self) -> Vec<Silence> {
        lock(&self.list).clone()
    }

    pub fn get(&self, id: &str) -> Option<Silence> {
        lock(&self.list).iter().find(|s| s.id == id).cloned()
    }

    /// Ends a silence now; an expired one stays listed.
    pub fn expire(&self, id: &str, now: i64) -> Result<(), String> {
        let mut list = lock(&self.list);
        let s = list
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or_else(|| format!("silence {id} not found"))?;
        if s.state(now) == "expired" {
            return Err(format!("silence {id} already expired"));
        }
        s.ends_at = now.max(s.starts_at);
        s.updated_at = now;
        self.save(&list)
    }

    /// Whether an active silence matches `labels` at `now`.
    pub fn silenced(&self, labels: &BTreeMap<String, String>, now: i64) -> bool {
        lock(&self.list)
            .iter()
            .any(|s| s.state(now) == "active" && s.matches(labels))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: &str, is_regex: bool, is_equal: bool) -> SilenceMatcher {
        SilenceMatcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    #[test]
    fn silences_match_expire_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silences.json");
        let s = Silences::open(Some(path.clone())).unwrap();
        let labels: BTreeMap<String, String> = [
            ("alertname".to_string(), "Down".to_string()),
            ("env".to_string(), "prod".to_string()),
        ]
        .into();
        let silence = Silence {
            id: String::new(),
            matchers: vec![
                m("alertname", "Do.*", true, true),
                m("env", "dev", false, false),
            ],
            starts_at: 1000,
            ends_at: 5000,
            updated_at: 0,
            created_by: "me".into(),
            comment: "maintenance".into(),
        };
        let id = s.put(silence.clone(), 1000).unwrap();
        assert!(s.silenced(&labels, 2000));
        assert!(!s.silenced(&labels, 6000), "expired by time");
        let mut other = labels.clone();
        other.insert("env".into(), "dev".into());
        assert!(!s.silenced(&other, 2000), "env != dev");
        let s = Silences::open(Some(path)).unwrap();
        assert_eq!(
            s.get(&id).map(|x| x.comment),
            Some("maintenance".to_string())
        );
        s.expire(&id, 3000).unwrap();
        assert!(!s.silenced(&labels, 3001));
        assert_eq!(s.get(&id).unwrap().state(3001), "expired");
        assert!(s.expire(&id, 3002).unwrap_err().contains("already expired"));
        let bad = Silence {
            matchers: vec![],
            ..silence.clone()
        };
        assert!(s
            .put(bad, 1000)
            .unwrap_err()
            .contains("at least one matcher"));
        let past = Silence {
            ends_at: 500,
            starts_at: 100,
            ..silence
        };
        assert!(s.put(past, 1000).is_err());
    }
}
