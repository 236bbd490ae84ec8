//! Following log files as they grow, rotate and go away, with read
//! positions that survive a restart.
//!
//! A file is known by its device and inode, not its name: when a name
//! points at a new inode (rotation by rename, a new container restart),
//! the old inode is read to its end through the handle already open, then
//! let go. A file that shrinks under its position was truncated in place
//! (copytruncate) and is read again from its start. Only whole lines are
//! handed out; bytes after the last newline wait for the rest, except at
//! the end of a file that will not grow again (rotated away or deleted).
//!
//! Positions are saved by [`Tailer::save`], atomically (a temporary file,
//! fsync'd, renamed) — the caller saves what it has made durable
//! elsewhere, so a restart neither loses nor repeats a line.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A file's identity while it lives, whatever it is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

/// Whole lines read from one file, and where reading stands after them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The name the file had when it was read.
    pub path: PathBuf,
    pub id: FileId,
    /// Each without its newline.
    pub lines: Vec<Vec<u8>>,
    /// The byte offset after the last line.
    pub offset: u64,
}

struct Tracked {
    path: PathBuf,
    file: File,
    offset: u64,
    /// The name now points elsewhere (or nowhere): read to the end, then drop.
    retired: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("log positions {path}: {source}")]
    Positions {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Most bytes read from one file per poll, so one busy file cannot starve
/// the others (it continues at the next poll).
const READ_BUDGET: u64 = 4 << 20;

pub struct Tailer {
    positions_path: PathBuf,
    /// Saved offsets of files not opened yet in this run.
    saved: HashMap<FileId, u64>,
    files: HashMap<FileId, Tracked>,
}

impl Tailer {
    /// Resumes from the positions saved at `positions_path` (none yet is
    /// fine; a damaged line in it is skipped with a warning).
    pub fn open(positions_path: &Path) -> Result<Tailer, TailError> {
        let mut saved = HashMap::new();
        match std::fs::read_to_string(positions_path) {
            Ok(text) => {
                for line in text.lines() {
                    let mut f = line.splitn(4, ' ');
                    let parsed = (|| {
                        let dev = f.next()?.parse().ok()?;
                        let ino = f.next()?.parse().ok()?;
                        let offset = f.next()?.parse().ok()?;
                        Some((FileId { dev, ino }, offset, f.next().unwrap_or("")))
                    })();
                    match parsed {
                        Some((id, offset, name)) => {
                            // Only files still there under their name:
                            // positions of deleted files must not pile up.
                            if still_there(Path::new(name), id) {
                                saved.insert(id, offset);
                            }
                        }
                        None => tracing::warn!(
                            path = %positions_path.display(),
                            "skipping a damaged log position: {line:?}"
                        ),
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(TailError::Positions {
                    path: positions_path.to_path_buf(),
                    source,
                })
            }
        }
        Ok(Tailer {
            positions_path: positions_path.to_path_buf(),
            saved,
            files: HashMap::new(),
        })
    }

    /// Reads what is new in `paths` (the files discovery finds now) and in
    /// files that were rotated or deleted since the last poll.
    pub fn poll(&mut self, paths: &[PathBuf]) -> Vec<Chunk> {
        let mut current: HashMap<FileId, &PathBuf> = HashMap::new();
        for p in paths {
            if let Ok(m) = std::fs::metadata(p) {
                if m.is_file() {
                    current.insert(
                        FileId {
                            dev: m.dev(),
                            ino: m.ino(),
                        },
                        p,
                    );
                }
            }
        }
        // Files whose name no longer leads to them: read out, then go.
        for (id, t) in self.files.iter_mut() {
            if !current.contains_key(id) {
                t.retired = true;
            }
        }
        for (id, path) in &current {
            if let Some(t) = self.files.get_mut(id) {
                t.path = (*path).clone();
                t.retired = false;
                continue;
            }
            let Ok(file) = File::open(path) else { continue };
            let offset = self.saved.remove(id).unwrap_or(0);
            self.files.insert(
                *id,
                Tracked {
                    path: (*path).clone(),
                    file,
                    offset,
                    retired: false,
                },
            );
        }
        let mut out = Vec::new();
        let mut done = Vec::new();
        for (id, t) in self.files.iter_mut() {
            match read_lines(t) {
                Ok((lines, at_end)) => {
                    if !lines.is_empty() {
                        out.push(Chunk {
                            path: t.path.clone(),
                            id: *id,
                            lines,
                            offset: t.offset,
                        });
                    }
                    if t.retired && at_end {
                        done.push(*id);
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %t.path.display(), "reading a log file: {e}");
                    if t.retired {
                        done.push(*id);
                    }
                }
            }
        }
        for id in done {
            self.files.remove(&id);
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        out
    }

    /// Whether a saved position (from an earlier run) names file `id`.
    pub fn was_reading(&self, id: &FileId) -> bool {
        self.saved.contains_key(id) || self.files.contains_key(id)
    }

    /// How far file `id` has been read.
    pub fn offset(&self, id: &FileId) -> Option<u64> {
        self.files.get(id).map(|t| t.offset)
    }

    /// Whether file `id` is still being followed.
    pub fn is_following(&self, id: &FileId) -> bool {
        self.files.contains_key(id)
    }

    /// Files being followed, by their current (or last) name.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = self.files.values().map(|t| t.path.clone()).collect();
        v.sort();
        v
    }

    /// Saves `positions` (what the caller has made durable), with the
    /// saved positions of files not yet reopened in this run.
    pub fn save(&self, positions: &HashMap<FileId, u64>) -> Result<(), TailError> {
        let mut text = String::new();
        let live = positions
            .iter()
            .filter(|(id, _)| self.files.contains_key(id));
        let pending = self
            .saved
            .iter()
            .filter(|(id, _)| !positions.contains_key(id));
        for (id, offset) in live.chain(pending) {
            let name = self
                .files
                .get(id)
                .map(|t| t.path.display().to_string())
                .unwrap_or_default();
            text.push_str(&format!("{} {} {offset} {name}\n", id.dev, id.ino));
        }
        write_atomically(&self.positions_path, text.as_bytes()).map_err(|source| {
            TailError::Positions {
                path: self.positions_path.clone(),
                source,
            }
        })
    }
}

/// Whole lines from the tracked file's offset on, and whether its end
/// was reached. A retired file's last bytes count as a line even without
/// a newline: nothing will complete them.
fn read_lines(t: &mut Tracked) -> std::io::Result<(Vec<Vec<u8>>, bool)> {
    let len = t.file.metadata()?.len();
    if len < t.offset {
        // Truncated in place (copytruncate): what is there now is new.
        t.offset = 0;
    }
    if len == t.offset {
        return Ok((Vec::new(), true));
    }
    let want = (len - t.offset).min(READ_BUDGET);
    t.file.seek(SeekFrom::Start(t.offset))?;
    let mut buf = Vec::with_capacity(want as usize);
    (&mut t.file).take(want).read_to_end(&mut buf)?;
    let at_end = t.offset + buf.len() as u64 >= len;
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, b) in buf.iter().enumerate() {
        if *b == b'\n' {
            lines.push(buf[start..i].to_vec());
            start = i + 1;
        }
    }
    if start < buf.len() && at_end && t.retired {
        lines.push(buf[start..].to_vec());
        start = buf.len();
    }
    t.offset += start as u64;
    Ok((lines, at_end && start == buf.len()))
}

/// Whether file `id` is still at `name`, or beside it under a rotated
/// name (`name.<suffix>`), where a rotation while the agent was down put it.
fn still_there(name: &Path, id: FileId) -> bool {
    let is = |p: &Path| std::fs::metadata(p).is_ok_and(|m| m.dev() == id.dev && m.ino() == id.ino);
    if is(name) {
        return true;
    }
    let (Some(dir), Some(base)) = (name.parent(), name.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    let prefix = format!("{base}.");
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(&prefix))
                && is(&e.path())
        })
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::OpenOptions;

    fn append(path: &Path, text: &str) {
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn lines(chunks: &[Chunk]) -> Vec<String> {
        chunks
            .iter()
            .flat_map(|c| {
                c.lines
                    .iter()
                    .map(|l| String::from_utf8_lossy(l).to_string())
            })
            .collect()
    }

    fn positions(chunks: &[Chunk], into: &mut HashMap<FileId, u64>) {
        for c in chunks {
            into.insert(c.id, c.offset);
        }
    }

    #[test]
    fn whole_lines_as_they_arrive() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        let mut t = Tailer::open(&dir.path().join("positions")).unwrap();
        append(&log, "one\ntw");
        let paths = vec![log.clone()];
        assert_eq!(lines(&t.poll(&paths)), ["one"]);
        assert!(t.poll(&paths).is_empty(), "half a line waits");
        append(&log, "o\nthree\n");
        assert_eq!(lines(&t.poll(&paths)), ["two", "three"]);
    }

    #[test]
    fn rotation_by_rename_reads_the_old_file_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        let mut t = Tailer::open(&dir.path().join("positions")).unwrap();
        append(&log, "a1\n");
        let paths = vec![log.clone()];
        assert_eq!(lines(&t.poll(&paths)), ["a1"]);
        // Written just before the rename, not yet read.
        append(&log, "a2\na3-no-newline");
        std::fs::rename(&log, dir.path().join("0.log.20261203")).unwrap();
        append(&log, "b1\n");
        let got = lines(&t.poll(&paths));
        assert_eq!(got.len(), 3, "{got:?}");
        for want in ["a2", "a3-no-newline", "b1"] {
            assert!(got.contains(&want.to_string()), "{got:?}");
        }
        assert_eq!(
            t.files(),
            std::slice::from_ref(&log),
            "the old file is let go"
        );
        append(&log, "b2\n");
        assert_eq!(lines(&t.poll(&paths)), ["b2"]);
    }

    #[test]
    fn copytruncate_starts_over_and_deleted_files_are_read_out() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        let mut t = Tailer::open(&dir.path().join("positions")).unwrap();
        append(&log, "old line one\nold line two\n");
        let paths = vec![log.clone()];
        assert_eq!(lines(&t.poll(&paths)).len(), 2);
        std::fs::copy(&log, dir.path().join("0.log.1")).unwrap();
        OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(0)
            .unwrap();
        append(&log, "new\n");
        assert_eq!(lines(&t.poll(&paths)), ["new"]);
        // Deleted after a last write: that write still arrives.
        append(&log, "last\n");
        std::fs::remove_file(&log).unwrap();
        assert_eq!(lines(&t.poll(&paths)), ["last"]);
        assert!(t.files().is_empty());
    }

    #[test]
    fn a_restart_resumes_where_the_saved_positions_say() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("0.log");
        let pos = dir.path().join("positions");
        let paths = vec![log.clone()];
        append(&log, "1\n2\n");
        let mut saved = HashMap::new();
        {
            let mut t = Tailer::open(&pos).unwrap();
            let c = t.poll(&paths);
            assert_eq!(lines(&c), ["1", "2"]);
            positions(&c, &mut saved);
            t.save(&saved).unwrap();
            append(&log, "3\n");
            // Read but not made durable by the caller: not saved.
            assert_eq!(lines(&t.poll(&paths)), ["3"]);
        }
        let mut t = Tailer::open(&pos).unwrap();
        append(&log, "4\n");
        assert_eq!(
            lines(&t.poll(&paths)),
            ["3", "4"],
            "nothing lost, nothing repeated"
        );
        // A damaged positions file is not fatal.
        std::fs::write(&pos, "garbage\n").unwrap();
        assert!(Tailer::open(&pos).is_ok());
    }
}
