//! The systemd journal as a log source: `journalctl --output=json --follow`
//! read line by line, entries labelled by unit and level, pushed in
//! batches, and the cursor of the last queued entry saved so a restart
//! goes on after it (nothing lost, nothing sent twice once queued).
//!
//! journalctl is the maintained reader of the journal's file format; this
//! module only parses its JSON export.

use super::push::{PushEntry, PushStream};
use crate::labels::Labels;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

/// `logs.journal` in the agent config (Promtail's `journal` scrape config).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalConfig {
    /// The journalctl binary.
    pub journalctl: PathBuf,
    /// Labels on every stream (`job` defaults to `systemd-journal`).
    pub labels: BTreeMap<String, String>,
    /// Entries read from before the start on the first run (no cursor yet).
    pub initial_lines: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            journalctl: "journalctl".into(),
            labels: BTreeMap::new(),
            initial_lines: 1000,
        }
    }
}

/// One journal entry as pushed.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEntry {
    pub labels: Labels,
    pub time_ns: i64,
    pub line: String,
    pub cursor: String,
}

/// The `level` label of a syslog priority (0 emerg … 7 debug).
fn level(priority: &str) -> Option<&'static str> {
    Some(match priority {
        "0" | "1" | "2" => "critical",
        "3" => "error",
        "4" => "warning",
        "5" | "6" => "info",
        "7" => "debug",
        _ => return None,
    })
}

/// A journal field's text: a string, or bytes (an array of numbers) when
/// the value is not UTF-8.
fn field_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(bytes) => {
            let raw: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            Some(String::from_utf8_lossy(&raw).into_owned())
        }
        _ => None,
    }
}

/// Parses one line of `journalctl --output=json`; `None` for a line that is
/// not an entry (no cursor, time or message).
pub fn parse_entry(line: &str, base: &Labels) -> Option<JournalEntry> {
    let j: serde_json::Value = serde_json::from_str(line).ok()?;
    let cursor = j.get("__CURSOR")?.as_str()?.to_string();
    let micros: i64 = j.get("__REALTIME_TIMESTAMP")?.as_str()?.parse().ok()?;
    let message = field_text(j.get("MESSAGE")?)?;
    let text = |k: &str| j.get(k).and_then(field_text).filter(|s| !s.is_empty());
    let mut labels = base.clone();
    if let Some(unit) = text("_SYSTEMD_UNIT").or_else(|| text("SYSLOG_IDENTIFIER")) {
        labels.set("unit", unit);
    }
    if let Some(l) = text("PRIORITY").as_deref().and_then(level) {
        labels.set("level", l);
    }
    Some(JournalEntry {
        labels,
        time_ns: micros.saturating_mul(1000),
        line: message,
        cursor,
    })
}

/// Entries grouped into push streams, each stream's entries in order.
pub fn to_streams(entries: Vec<JournalEntry>) -> Vec<PushStream> {
    let mut by_labels: BTreeMap<Vec<(String, String)>, PushStream> = BTreeMap::new();
    for e in entries {
        let key: Vec<(String, String)> = e
            .labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        by_labels
            .entry(key)
            .or_insert_with(|| PushStream {
                labels: e.labels.clone(),
                entries: Vec::new(),
            })
            .entries
            .push(PushEntry {
                time_ns: e.time_ns,
                line: e.line,
            });
    }
    by_labels.into_values().collect()
}

/// The running journalctl and the lines it prints.
pub struct JournalReader {
    child: Child,
    lines: Receiver<String>,
    base: Labels,
    cursor_file: PathBuf,
}

impl JournalReader {
    /// Starts journalctl after the saved cursor (or with the last
    /// `initial_lines` entries on a first run).
    pub fn start(cfg: &JournalConfig, host: &str, cursor_file: &Path) -> std::io::Result<Self> {
        let mut cmd = Command::new(&cfg.journalctl);
        cmd.args(["--output=json", "--follow", "--no-pager", "--quiet"]);
        match std::fs::read_to_string(cursor_file) {
            Ok(c) if !c.trim().is_empty() => {
                cmd.arg(format!("--after-cursor={}", c.trim()));
            }
            _ => {
                cmd.arg(format!("--lines={}", cfg.initial_lines));
            }
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| std::io::Error::other("journalctl has no stdout"))?;
        let (tx, lines) = std::sync::mpsc::sync_channel(4096);
        std::thread::Builder::new()
            .name("journalctl".into())
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            })?;
        let mut base = Labels::from_pairs(cfg.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        if base.get("job").is_none() {
            base.set("job", "systemd-journal");
        }
        if base.get("host").is_none() {
            base.set("host", host);
        }
        Ok(JournalReader {
            child,
            lines,
            base,
            cursor_file: cursor_file.to_path_buf(),
        })
    }

    /// Entries printed within `wait` (at most `max`); `Err` once journalctl
    /// has ended.
    pub fn poll(&mut self, wait: Duration, max: usize) -> Result<Vec<JournalEntry>, String> {
        let deadline = Instant::now() + wait;
        let mut out = Vec::new();
        while out.len() < max {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => out.extend(parse_entry(&line, &self.base)),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    if out.is_empty() {
                        let status = self.child.wait().map(|s| s.to_string());
                        return Err(format!("journalctl ended: {status:?}"));
                    }
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Remembers `cursor` as read (written atomically).
    pub fn commit(&self, cursor: &str) -> std::io::Result<()> {
        let tmp = self.cursor_file.with_extension("tmp");
        std::fs::write(&tmp, cursor)?;
        std::fs::rename(&tmp, &self.cursor_file)
    }
}

impl Drop for JournalReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_get_unit_and_level_labels() {
        let base = Labels::from_pairs([("job", "systemd-journal"), ("host", "h")]);
        let line = r#"{"__CURSOR":"s=1;i=2","__REALTIME_TIMESTAMP":"1700000000123456","MESSAGE":"Started nginx","PRIORITY":"6","_SYSTEMD_UNIT":"nginx.service"}"#;
        let e = parse_entry(line, &base).unwrap();
        assert_eq!(e.time_ns, 1_700_000_000_123_456_000);
        assert_eq!(e.line, "Started nginx");
        assert_eq!(e.cursor, "s=1;i=2");
        assert_eq!(e.labels.get("unit"), Some("nginx.service"));
        assert_eq!(e.labels.get("level"), Some("info"));
        // Bytes for a message that is not UTF-8; the identifier as unit.
        let line = r#"{"__CURSOR":"c","__REALTIME_TIMESTAMP":"1","MESSAGE":[104,105,255],"PRIORITY":"3","SYSLOG_IDENTIFIER":"kernel"}"#;
        let e = parse_entry(line, &base).unwrap();
        assert_eq!(e.line, "hi\u{fffd}");
        assert_eq!(e.labels.get("unit"), Some("kernel"));
        assert_eq!(e.labels.get("level"), Some("error"));
        assert!(parse_entry("not json", &base).is_none());
        assert!(parse_entry(r#"{"MESSAGE":"no cursor"}"#, &base).is_none());
    }

    #[test]
    fn streams_group_by_labels_in_order() {
        let base = Labels::from_pairs([("job", "j")]);
        let mk = |unit: &str, t: i64| JournalEntry {
            labels: {
                let mut l = base.clone();
                l.set("unit", unit);
                l
            },
            time_ns: t,
            line: format!("{unit} {t}"),
            cursor: t.to_string(),
        };
        let s = to_streams(vec![mk("a", 1), mk("b", 2), mk("a", 3)]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].entries.len(), 2);
        assert_eq!(s[0].entries[1].time_ns, 3);
    }
}
