//! The node's container logs as push streams: finds the kubelet's log
//! files, follows them (`tail.rs`), reads each line in its format
//! (`cri.rs`: CRI, or Docker's json-file), joins the pieces of long lines,
//! and labels every entry with its namespace, pod, container, node,
//! stream and filename — the labels Promtail's Kubernetes configs give.
//!
//! What it reads is handed out as a [`Batch`] with the read positions that
//! cover it; the caller makes the batch durable (the send queue), then
//! [`PodLogReader::commit`]s the positions. A line split into pieces is
//! only covered once it is whole, so a restart re-reads its pieces rather
//! than losing them.

use super::cri::{parse_cri, parse_docker, Joiner, Stream};
use super::multiline::Multiline;
use super::pod_labels::PodLabelSource;
use super::pod_path::PodLogPath;
use super::push::{PushEntry, PushStream};
use super::tail::{FileId, TailError, Tailer};
use crate::labels::Labels;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a new pod's log waits for the API to tell the pod's labels
/// before it is read without them.
const POD_LABELS_WAIT: Duration = Duration::from_secs(10);

/// What a poll read, and the positions to commit once it is durable.
#[derive(Debug, Default)]
pub struct Batch {
    pub streams: Vec<PushStream>,
    pub positions: HashMap<FileId, u64>,
    /// Lines that were not log lines (named in the agent's log).
    pub malformed: u64,
}

/// Per file: the joiner for its long lines, and where the oldest piece
/// still waiting for the rest of its line starts (per stream).
struct FileState {
    /// A host log file: lines are taken as they are.
    raw: bool,
    joiner: Joiner,
    pending_from: [Option<u64>; 2],
    /// Per stream, when multi-line joining is configured.
    multi: [Option<Multiline>; 2],
    /// From the path (and a host log's configuration).
    base: Labels,
    /// `base` plus the pod's labels from the API, when configured.
    labels: Labels,
}

impl FileState {
    /// Where the oldest line still held (a piece of a long line, an open
    /// multi-line entry) starts: reading counts as done only up to there.
    fn held_from(&self) -> Option<u64> {
        let multi = self
            .multi
            .iter()
            .flatten()
            .filter_map(Multiline::pending_from);
        self.pending_from
            .iter()
            .flatten()
            .copied()
            .chain(multi)
            .min()
    }
}

/// `multiline` settings: the start pattern, most lines, longest wait.
#[derive(Clone)]
pub struct MultilineRule {
    pub first: regex::Regex,
    pub max_lines: usize,
    pub max_wait: std::time::Duration,
}

impl MultilineRule {
    /// The rule a `multiline` config describes; its error names the field.
    pub fn new(cfg: &crate::scrape_config::MultilineConfig) -> Result<Self, String> {
        Ok(MultilineRule {
            first: cfg.first_line_regex()?,
            max_lines: cfg.max_lines.max(1),
            max_wait: cfg.max_wait_time,
        })
    }
}

fn emit(
    streams: &mut BTreeMap<Labels, Vec<PushEntry>>,
    labels: &Labels,
    stream: Stream,
    time_ns: i64,
    line: String,
) {
    let mut labels = labels.clone();
    labels.set("stream", stream.as_str());
    streams
        .entry(labels)
        .or_default()
        .push(PushEntry { time_ns, line });
}

pub struct PodLogReader {
    root: PathBuf,
    node: String,
    max_line_bytes: usize,
    tailer: Tailer,
    files: HashMap<FileId, FileState>,
    committed: HashMap<FileId, u64>,
    multiline: Option<MultilineRule>,
    /// Host log files (globs in the last path element) and their labels.
    host_logs: Vec<(String, Labels)>,
    /// Which host log pattern each discovered host file came from.
    host_files: HashMap<PathBuf, usize>,
    pod_labels: Option<Box<dyn PodLabelSource>>,
    /// Pod log files being read (with pod labels configured, a new file
    /// waits for its pod's labels first).
    admitted: HashSet<PathBuf>,
    /// New files waiting for their pod's labels, since when.
    waiting: HashMap<PathBuf, Instant>,
}

impl PodLogReader {
    /// Reads `root` (the kubelet's `/var/log/pods`), keeping its positions
    /// in `positions`; entries are labelled `node=<node>`.
    pub fn open(
        root: &Path,
        positions: &Path,
        node: &str,
        max_line_bytes: usize,
    ) -> Result<PodLogReader, TailError> {
        Ok(PodLogReader {
            root: root.to_path_buf(),
            node: node.to_string(),
            max_line_bytes,
            tailer: Tailer::open(positions)?,
            files: HashMap::new(),
            committed: HashMap::new(),
            multiline: None,
            host_logs: Vec::new(),
            host_files: HashMap::new(),
            pod_labels: None,
            admitted: HashSet::new(),
            waiting: HashMap::new(),
        })
    }

    /// Adds each pod's labels from `source` to its containers' streams.
    pub fn with_pod_labels(mut self, source: Box<dyn PodLabelSource>) -> Self {
        self.pod_labels = Some(source);
        self
    }

    /// The file's labels plus its pod's, if known.
    fn labelled(&self, base: &Labels) -> Labels {
        let mut l = base.clone();
        if let (Some(src), Some(ns), Some(pod)) =
            (&self.pod_labels, base.get("namespace"), base.get("pod"))
        {
            let pod_labels = src.labels(ns, pod).unwrap_or_default();
            for (k, v) in pod_labels.iter() {
                // The path's own labels win over a pod label of that name.
                if l.get(k).is_none() {
                    l.set(k, v);
                }
            }
        }
        l
    }

    /// Holds back a new pod log file while its pod's labels are not known
    /// yet (up to [`POD_LABELS_WAIT`]), so its first lines do not go out
    /// in a stream without them.
    fn hold_unlabelled(&mut self, paths: Vec<PathBuf>, now: Instant) -> Vec<PathBuf> {
        let Some(src) = &self.pod_labels else {
            return paths;
        };
        let present: HashSet<&PathBuf> = paths.iter().collect();
        self.admitted.retain(|p| present.contains(p));
        self.waiting.retain(|p, _| present.contains(p));
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            if self.admitted.contains(&p) || self.host_files.contains_key(&p) {
                out.push(p);
                continue;
            }
            let base = path_labels(&self.root, &p, &self.node);
            let known = match (base.get("namespace"), base.get("pod")) {
                (Some(ns), Some(pod)) => src.labels(ns, pod).is_some(),
                _ => true,
            };
            let since = *self.waiting.entry(p.clone()).or_insert(now);
            if known || now.duration_since(since) >= POD_LABELS_WAIT {
                self.waiting.remove(&p);
                self.admitted.insert(p.clone());
                out.push(p);
            }
        }
        out
    }

    /// Also follows the host's own log files matching each pattern (a glob
    /// in the last element, e.g. `/var/log/*.log`), their lines taken as
    /// they are (no runtime format), stamped when read, with the labels
    /// given plus `node` and `filename`.
    pub fn with_host_logs(mut self, patterns: Vec<(String, Labels)>) -> Self {
        self.host_logs = patterns;
        self
    }

    /// Joins multi-line entries (stack traces) by `rule` from now on.
    pub fn with_multiline(mut self, rule: MultilineRule) -> Self {
        self.multiline = Some(rule);
        self
    }

    /// The container log files there are now, in the kubelet's layout.
    fn discover(&mut self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        // No pod log directory (not a Kubernetes node): host logs still count.
        let pods = std::fs::read_dir(&self.root).into_iter().flatten();
        for pod in pods.flatten() {
            let Ok(containers) = std::fs::read_dir(pod.path()) else {
                continue;
            };
            for c in containers.flatten() {
                let Ok(files) = std::fs::read_dir(c.path()) else {
                    continue;
                };
                for f in files.flatten() {
                    let p = f.path();
                    if PodLogPath::parse(&self.root, &p).is_some() || self.rotated_while_reading(&p)
                    {
                        out.push(p);
                    }
                }
            }
        }
        self.host_files.clear();
        for (i, (pattern, _)) in self.host_logs.iter().enumerate() {
            for p in crate::file_sd::expand(pattern) {
                if p.is_file() && !self.host_files.contains_key(&p) {
                    self.host_files.insert(p.clone(), i);
                    out.push(p);
                }
            }
        }
        out.sort();
        out
    }

    /// A kubelet-rotated file (`0.log.20261203-104920`, not compressed)
    /// that was being read when it was rotated: read on to its end, even
    /// across a restart in between.
    fn rotated_while_reading(&self, p: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let Some(name) = p.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        let rotated = name
            .split_once(".log.")
            .is_some_and(|(n, _)| n.parse::<u32>().is_ok())
            && !name.ends_with(".gz");
        rotated
            && std::fs::metadata(p).is_ok_and(|m| {
                self.tailer.was_reading(&FileId {
                    dev: m.dev(),
                    ino: m.ino(),
                })
            })
    }

    /// Everything new since the last poll.
    pub fn poll(&mut self) -> Batch {
        let now = Instant::now();
        if self.pod_labels.as_mut().is_some_and(|s| s.refresh()) {
            let relabelled: Vec<(FileId, Labels)> = self
                .files
                .iter()
                .map(|(id, f)| (*id, self.labelled(&f.base)))
                .collect();
            for (id, l) in relabelled {
                if let Some(f) = self.files.get_mut(&id) {
                    f.labels = l;
                }
            }
        }
        let paths = self.discover();
        let paths = self.hold_unlabelled(paths, now);
        let mut batch = Batch::default();
        let mut streams: BTreeMap<Labels, Vec<PushEntry>> = BTreeMap::new();
        for chunk in self.tailer.poll(&paths) {
            let multiline = &self.multiline;
            let host = self
                .host_files
                .get(&chunk.path)
                .map(|&i| &self.host_logs[i].1);
            if !self.files.contains_key(&chunk.id) {
                let base = match host {
                    Some(l) => {
                        let mut l = l.clone();
                        l.set("node", self.node.as_str());
                        l.set("filename", chunk.path.display().to_string());
                        l
                    }
                    None => path_labels(&self.root, &chunk.path, &self.node),
                };
                let labels = self.labelled(&base);
                self.files.insert(
                    chunk.id,
                    FileState {
                        raw: host.is_some(),
                        joiner: Joiner::new(self.max_line_bytes),
                        pending_from: [None, None],
                        multi: [0, 1].map(|_| {
                            multiline
                                .as_ref()
                                .map(|r| Multiline::new(r.first.clone(), r.max_lines, r.max_wait))
                        }),
                        base,
                        labels,
                    },
                );
            }
            let Some(state) = self.files.get_mut(&chunk.id) else {
                continue;
            };
            // Offsets of each line's start, counted back from the chunk's end.
            let total: u64 = chunk.lines.iter().map(|l| l.len() as u64 + 1).sum();
            let mut at = chunk.offset.saturating_sub(total);
            for line in &chunk.lines {
                let start = at;
                at += line.len() as u64 + 1;
                let parsed = if state.raw {
                    // A host log: the line as it is, stamped now.
                    Ok((now_ns(), Stream::Stdout, false, line.clone()))
                } else if line.first() == Some(&b'{') {
                    parse_docker(line)
                        .map(|d| (d.time_ns, d.stream, d.partial, d.message.into_bytes()))
                } else {
                    parse_cri(line).map(|l| (l.time_ns, l.stream, l.partial, l.message.to_vec()))
                };
                let (time_ns, stream, partial, message) = match parsed {
                    Ok(p) => p,
                    Err(e) => {
                        batch.malformed += 1;
                        tracing::debug!(path = %chunk.path.display(), "not a log line: {e}");
                        continue;
                    }
                };
                let slot = &mut state.pending_from[stream as usize];
                // Where the entry this piece belongs to began.
                let entry_from = slot.unwrap_or(start);
                if partial && slot.is_none() {
                    *slot = Some(start);
                }
                if !partial {
                    *slot = None;
                }
                for e in state.joiner.push(time_ns, stream, partial, &message) {
                    match &mut state.multi[stream as usize] {
                        Some(m) => {
                            if let Some(b) = m.push(e.time_ns, e.line, entry_from, now) {
                                emit(&mut streams, &state.labels, stream, b.time_ns, b.line);
                            }
                        }
                        None => emit(&mut streams, &state.labels, stream, e.time_ns, e.line),
                    }
                }
            }
            batch
                .positions
                .insert(chunk.id, state.held_from().unwrap_or(chunk.offset));
        }
        // Multi-line entries that waited long enough go out; the files'
        // positions move up to what is still held.
        for (id, state) in self.files.iter_mut() {
            let mut expired = false;
            for (i, m) in state.multi.iter_mut().enumerate() {
                let stream = Stream::ALL[i];
                if let Some(b) = m.as_mut().and_then(|m| m.expire(now)) {
                    emit(&mut streams, &state.labels, stream, b.time_ns, b.line);
                    expired = true;
                }
            }
            if expired && self.tailer.is_following(id) {
                let at = state.held_from().or_else(|| self.tailer.offset(id));
                if let Some(at) = at {
                    batch.positions.insert(*id, at);
                }
            }
        }
        // Files let go (rotated away, deleted): their unfinished pieces
        // will never be completed, so they go out as they are.
        let gone: Vec<FileId> = self
            .files
            .keys()
            .filter(|id| !self.tailer.is_following(id))
            .copied()
            .collect();
        for id in gone {
            if let Some(mut state) = self.files.remove(&id) {
                for e in state.joiner.flush() {
                    let m = &mut state.multi[e.stream as usize];
                    match m
                        .as_mut()
                        .and_then(|m| m.push(e.time_ns, e.line.clone(), 0, now))
                    {
                        Some(b) => emit(&mut streams, &state.labels, e.stream, b.time_ns, b.line),
                        None if m.is_none() => {
                            emit(&mut streams, &state.labels, e.stream, e.time_ns, e.line)
                        }
                        None => {}
                    }
                }
                for (i, m) in state.multi.iter_mut().enumerate() {
                    let stream = Stream::ALL[i];
                    if let Some(b) = m.as_mut().and_then(Multiline::flush) {
                        emit(&mut streams, &state.labels, stream, b.time_ns, b.line);
                    }
                }
            }
        }
        batch.streams = streams
            .into_iter()
            .map(|(labels, entries)| PushStream { labels, entries })
            .collect();
        batch
    }

    /// Files being followed now.
    pub fn files_followed(&self) -> usize {
        self.tailer.files().len()
    }

    /// The batch's lines are durable: remember its positions.
    pub fn commit(&mut self, positions: &HashMap<FileId, u64>) -> Result<(), TailError> {
        for (id, at) in positions {
            self.committed.insert(*id, *at);
        }
        // Files no longer followed need no position.
        self.committed.retain(|id, _| self.tailer.is_following(id));
        self.tailer.save(&self.committed)
    }
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The labels of every entry of one file: from its path, as Promtail's
/// Kubernetes pipeline gives them.
fn path_labels(root: &Path, path: &Path, node: &str) -> Labels {
    let mut l = Labels::new();
    // A rotated file (`0.log.<time>`) belongs to the container of `0.log`.
    let original = path
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split_once(".log."))
        .map(|(n, _)| path.with_file_name(format!("{n}.log")));
    let parsed = PodLogPath::parse(root, path)
        .or_else(|| original.and_then(|o| PodLogPath::parse(root, &o)));
    if let Some(p) = parsed {
        l.set("namespace", p.namespace);
        l.set("pod", p.pod);
        l.set("container", p.container);
    }
    l.set("node", node);
    l.set("filename", path.display().to_string());
    l
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn lines(b: &Batch) -> Vec<(String, String, String)> {
        let mut v: Vec<(String, String, String)> = b
            .streams
            .iter()
            .flat_map(|s| {
                s.entries.iter().map(|e| {
                    (
                        s.labels.get("container").unwrap_or("").to_string(),
                        s.labels.get("stream").unwrap_or("").to_string(),
                        e.line.clone(),
                    )
                })
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn pods_logs_labelled_and_long_lines_joined() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pods");
        let app = root.join("shop_web-0_uid-1/app/0.log");
        let side = root.join("shop_web-0_uid-1/sidecar/0.log");
        append(&app, "2026-12-03T10:00:00.1Z stdout F GET / 200\n2026-12-03T10:00:00.2Z stderr P Exception in \n");
        append(&side, "{\"log\":\"sidecar up\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-03T10:00:00Z\"}\nnot a log line\n");
        let mut r =
            PodLogReader::open(&root, &dir.path().join("positions"), "node-1", 1 << 20).unwrap();
        let b = r.poll();
        assert_eq!(
            lines(&b),
            [
                ("app".into(), "stdout".into(), "GET / 200".into()),
                ("sidecar".into(), "stdout".into(), "sidecar up".into()),
            ]
        );
        assert_eq!(b.malformed, 1);
        let s = &b.streams[0];
        assert_eq!(s.labels.get("namespace"), Some("shop"));
        assert_eq!(s.labels.get("pod"), Some("web-0"));
        assert_eq!(s.labels.get("node"), Some("node-1"));
        assert_eq!(s.entries[0].time_ns % 1_000_000_000, 100_000_000);
        r.commit(&b.positions).unwrap();
        append(&app, "2026-12-03T10:00:00.3Z stderr F thread \"main\"\n");
        let b = r.poll();
        assert_eq!(
            lines(&b),
            [(
                "app".into(),
                "stderr".into(),
                "Exception in thread \"main\"".into()
            )]
        );
    }

    #[test]
    fn a_restart_mid_line_re_reads_its_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pods");
        let pos = dir.path().join("positions");
        let app = root.join("shop_web-0_uid-1/app/0.log");
        append(
            &app,
            "2026-12-03T10:00:00Z stdout F one\n2026-12-03T10:00:01Z stdout P tw\n",
        );
        {
            let mut r = PodLogReader::open(&root, &pos, "n", 1 << 20).unwrap();
            let b = r.poll();
            assert_eq!(lines(&b).len(), 1);
            r.commit(&b.positions).unwrap();
        }
        append(&app, "2026-12-03T10:00:02Z stdout F o\n");
        let mut r = PodLogReader::open(&root, &pos, "n", 1 << 20).unwrap();
        let b = r.poll();
        assert_eq!(
            lines(&b),
            [("app".into(), "stdout".into(), "two".into())],
            "the first piece is not lost, 'one' not repeated"
        );
        let first_piece = crate::rfc3339::parse_nanos("2026-12-03T10:00:01Z");
        assert_eq!(Some(b.streams[0].entries[0].time_ns), first_piece);
    }

    #[test]
    fn stack_traces_join_and_a_restart_inside_one_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pods");
        let pos = dir.path().join("positions");
        let app = root.join("shop_api-0_uid-2/api/0.log");
        let rule = MultilineRule {
            first: regex::Regex::new(r"^\d{4}-").unwrap(),
            max_lines: 50,
            max_wait: std::time::Duration::from_secs(3600),
        };
        append(
            &app,
            "2026-12-03T10:00:00Z stdout F 2026-12-03 ERROR failed\n2026-12-03T10:00:00Z stdout F java.lang.RuntimeException: x\n2026-12-03T10:00:00Z stdout F \tat A.b(A.java:1)\n2026-12-03T10:00:01Z stdout F 2026-12-03 INFO ok\n2026-12-03T10:00:02Z stdout F 2026-12-03 ERROR again\n2026-12-03T10:00:02Z stdout F \tat C.d(C.java:2)\n",
        );
        {
            let mut r = PodLogReader::open(&root, &pos, "n", 1 << 20)
                .unwrap()
                .with_multiline(rule.clone());
            let b = r.poll();
            assert_eq!(
                lines(&b),
                [
                    ("api".into(), "stdout".into(), "2026-12-03 ERROR failed\njava.lang.RuntimeException: x\n\tat A.b(A.java:1)".into()),
                    ("api".into(), "stdout".into(), "2026-12-03 INFO ok".into()),
                ]
            );
            // The open trace is held: the position stops before it.
            r.commit(&b.positions).unwrap();
        }
        append(&app, "2026-12-03T10:00:02Z stdout F \tat E.f(E.java:3)\n2026-12-03T10:00:03Z stdout F 2026-12-03 INFO done\n");
        let mut r = PodLogReader::open(&root, &pos, "n", 1 << 20)
            .unwrap()
            .with_multiline(rule);
        let b = r.poll();
        assert_eq!(
            lines(&b),
            [(
                "api".into(),
                "stdout".into(),
                "2026-12-03 ERROR again\n\tat C.d(C.java:2)\n\tat E.f(E.java:3)".into()
            )]
        );
    }

    #[test]
    fn host_logs_by_glob_with_their_labels() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pods");
        std::fs::create_dir_all(&root).unwrap();
        let var = dir.path().join("var-log");
        append(
            &var.join("syslog"),
            "Dec  3 10:00:00 node-1 kernel: hello\n",
        );
        append(&var.join("auth.log"), "sshd: accepted\n");
        append(&var.join("old.gz"), "binary\n");
        let pattern = format!("{}/*log", var.display());
        let mut r = PodLogReader::open(&root, &dir.path().join("positions"), "node-1", 1 << 20)
            .unwrap()
            .with_host_logs(vec![(pattern, Labels::from_pairs([("job", "varlogs")]))]);
        let before = now_ns();
        let b = r.poll();
        let mut got: Vec<(String, String)> = b
            .streams
            .iter()
            .flat_map(|s| {
                let f = s
                    .labels
                    .get("filename")
                    .unwrap_or("")
                    .rsplit('/')
                    .next()
                    .unwrap_or("")
                    .to_string();
                s.entries.iter().map(move |e| (f.clone(), e.line.clone()))
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            [
                ("auth.log".to_string(), "sshd: accepted".to_string()),
                (
                    "syslog".to_string(),
                    "Dec  3 10:00:00 node-1 kernel: hello".to_string()
                )
            ]
        );
        let s = &b.streams[0];
        assert_eq!(s.labels.get("job"), Some("varlogs"));
        assert_eq!(s.labels.get("node"), Some("node-1"));
        assert!(s.entries[0].time_ns >= before);
        assert_eq!(b.malformed, 0);
    }

    #[test]
    fn a_file_rotated_while_the_agent_was_down_is_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pods");
        let pos = dir.path().join("positions");
        let app = root.join("shop_web-0_uid-1/app/0.log");
        append(&app, "2026-12-03T10:00:00Z stdout F before\n");
        {
            let mut r = PodLogReader::open(&root, &pos, "n", 1 << 20).unwrap();
            let b = r.poll();
            r.commit(&b.positions).unwrap();
        }
        append(&app, "2026-12-03T10:00:01Z stdout F written while down\n");
        std::fs::rename(&app, app.with_extension("log.20261203-100002")).unwrap();
        append(&app, "2026-12-03T10:00:03Z stdout F after rotation\n");
        // A rotated file this agent never read is not its business.
        append(
            &root.join("shop_web-0_uid-1/app/1.log.20261201-000000"),
            "2026-12-01T00:00:00Z stdout F ancient\n",
        );
        let mut r = PodLogReader::open(&root, &pos, "n", 1 << 20).unwrap();
        let b = r.poll();
        assert!(
            b.streams
                .iter()
                .all(|s| s.labels.get("pod") == Some("web-0")),
            "{:?}",
            b.streams
        );
        let got: Vec<String> = lines(&b).into_iter().map(|(_, _, l)| l).collect();
        assert_eq!(got, ["after rotation", "written while down"]);
    }

    /// Pod labels from a table a test fills in.
    /// Whether it changed, and (namespace, pod) → labels.
    type Shared = std::sync::Arc<std::sync::Mutex<(bool, HashMap<(String, String), Labels>)>>;
    struct Table(Shared);

    impl PodLabelSource for Table {
        fn refresh(&mut self) -> bool {
            std::mem::take(&mut self.0.lock().unwrap().0)
        }
        fn labels(&self, ns: &str, pod: &str) -> Option<Labels> {
            let t = self.0.lock().unwrap();
            t.1.get(&(ns.to_string(), pod.to_string())).cloned()
        }
    }

    #[test]
    fn pod_labels_join_the_streams_and_a_new_pod_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pods");
        let web = root.join("shop_web-0_uid-1/app/0.log");
        append(&web, "2026-12-03T10:00:00.1Z stdout F first\n");
        let table = std::sync::Arc::new(std::sync::Mutex::new((false, HashMap::new())));
        let mut r = PodLogReader::open(&root, &dir.path().join("positions"), "node-1", 1 << 20)
            .unwrap()
            .with_pod_labels(Box::new(Table(std::sync::Arc::clone(&table))));
        // The API has not told about the pod yet: its file waits.
        assert!(r.poll().streams.is_empty());
        {
            let mut t = table.lock().unwrap();
            t.0 = true;
            t.1.insert(
                ("shop".into(), "web-0".into()),
                Labels::from_pairs([("app", "web"), ("pod", "not-this")]),
            );
        }
        let b = r.poll();
        assert_eq!(b.streams.len(), 1);
        let l = &b.streams[0].labels;
        assert_eq!(
            (l.get("app"), l.get("pod"), l.get("container")),
            (Some("web"), Some("web-0"), Some("app")),
            "the path's labels win: {l:?}"
        );
        assert_eq!(b.streams[0].entries[0].line, "first");
        r.commit(&b.positions).unwrap();
        // The labels change: later lines of the file follow.
        {
            let mut t = table.lock().unwrap();
            t.0 = true;
            t.1.insert(
                ("shop".into(), "web-0".into()),
                Labels::from_pairs([("app", "web2")]),
            );
        }
        append(&web, "2026-12-03T10:00:01Z stdout F second\n");
        let b = r.poll();
        assert_eq!(b.streams[0].labels.get("app"), Some("web2"));
        assert_eq!(b.streams[0].entries[0].line, "second");
        // A pod the API never tells about is read without them, later.
        let other = root.join("shop_batch-1_uid-2/job/0.log");
        append(&other, "2026-12-03T10:00:02Z stdout F unlabelled\n");
        assert!(r.poll().streams.is_empty());
        let started = Instant::now() - POD_LABELS_WAIT;
        for since in r.waiting.values_mut() {
            *since = started;
        }
        let b = r.poll();
        assert_eq!(b.streams.len(), 1);
        assert_eq!(b.streams[0].labels.get("app"), None);
        assert_eq!(b.streams[0].entries[0].line, "unlabelled");
    }
}
