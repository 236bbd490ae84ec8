//! The two container log formats the kubelet's node carries: the CRI
//! format (`<RFC 3339 time> <stdout|stderr> <P|F> <message>`, containerd
//! and CRI-O) and Docker's json-file (`{"log":"...\n","stream":"stdout",
//! "time":"..."}`). Long lines arrive split: CRI marks the pieces `P`
//! until the final `F`, Docker leaves the newline off all but the last;
//! [`Joiner`] puts them back together.

use std::fmt;

/// Which of the container's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// Both, in the order of their `as usize` (which indexes per-stream state).
    pub const ALL: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One physical line of a log file, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine<'a> {
    /// Nanoseconds since the epoch, as the runtime stamped it.
    pub time_ns: i64,
    pub stream: Stream,
    /// More of the same log line follows in the next physical line.
    pub partial: bool,
    pub message: &'a [u8],
}

/// Why a physical line is not a log line; names the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatError {
    Time(String),
    Stream(String),
    Tag(String),
    Json(String),
    Missing(&'static str),
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Time(t) => write!(f, "invalid timestamp {t:?}"),
            FormatError::Stream(s) => write!(f, "invalid stream {s:?} (want stdout or stderr)"),
            FormatError::Tag(t) => write!(f, "invalid tag {t:?} (want P or F)"),
            FormatError::Json(e) => write!(f, "invalid json-file line: {e}"),
            FormatError::Missing(what) => write!(f, "line ends before its {what}"),
        }
    }
}

fn stream(s: &str) -> Result<Stream, FormatError> {
    match s {
        "stdout" => Ok(Stream::Stdout),
        "stderr" => Ok(Stream::Stderr),
        other => Err(FormatError::Stream(other.to_string())),
    }
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parses one CRI line (without its newline).
pub fn parse_cri(line: &[u8]) -> Result<RawLine<'_>, FormatError> {
    let mut fields = line.splitn(4, |&b| b == b' ');
    let time = fields
        .next()
        .filter(|t| !t.is_empty())
        .ok_or(FormatError::Missing("timestamp"))?;
    let time_text = std::str::from_utf8(time).map_err(|_| FormatError::Time(lossy(time)))?;
    let time_ns =
        crate::rfc3339::parse_nanos(time_text).ok_or_else(|| FormatError::Time(lossy(time)))?;
    let s = fields.next().ok_or(FormatError::Missing("stream"))?;
    let stream = stream(&lossy(s))?;
    let tags = fields.next().ok_or(FormatError::Missing("tag"))?;
    // Tags are `:`-separated; the first says partial or full.
    let partial = match tags.split(|&b| b == b':').next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return Err(FormatError::Tag(lossy(tags))),
    };
    Ok(RawLine {
        time_ns,
        stream,
        partial,
        message: fields.next().unwrap_or(b""),
    })
}

#[derive(serde::Deserialize)]
struct DockerLine {
    log: String,
    stream: String,
    time: String,
}

/// One Docker json-file line, owned (JSON unescaping copies anyway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerEntry {
    pub time_ns: i64,
    pub stream: Stream,
    pub partial: bool,
    pub message: String,
}

/// Parses one Docker json-file line.
pub fn parse_docker(line: &[u8]) -> Result<DockerEntry, FormatError> {
    let d: DockerLine =
        serde_json::from_slice(line).map_err(|e| FormatError::Json(e.to_string()))?;
    let time_ns = crate::rfc3339::parse_nanos(&d.time).ok_or(FormatError::Time(d.time.clone()))?;
    let stream = stream(&d.stream)?;
    let (message, partial) = match d.log.strip_suffix('\n') {
        Some(m) => (m.to_string(), false),
        None => (d.log, true),
    };
    Ok(DockerEntry {
        time_ns,
        stream,
        partial,
        message,
    })
}

/// A whole log line: pieces joined, time of its first piece, invalid UTF-8
/// replaced (and kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub time_ns: i64,
    pub stream: Stream,
    pub line: String,
}

/// Joins partial lines per stream (stdout and stderr interleave in one
/// file), up to `max_bytes`: a longer line is handed on in pieces of that
/// size rather than held without bound.
#[derive(Debug)]
pub struct Joiner {
    max_bytes: usize,
    pending: [Option<(i64, Vec<u8>)>; 2],
}

impl Joiner {
    pub fn new(max_bytes: usize) -> Self {
        Joiner {
            max_bytes: max_bytes.max(1),
            pending: [None, None],
        }
    }

    /// Takes one piece; returns the whole lines it completes.
    pub fn push(
        &mut self,
        time_ns: i64,
        stream: Stream,
        partial: bool,
        message: &[u8],
    ) -> Vec<Entry> {
        let slot = &mut self.pending[stream as usize];
        let (t, buf) = slot.get_or_insert_with(|| (time_ns, Vec::new()));
        let t = *t;
        buf.extend_from_slice(message);
        let mut out = Vec::new();
        while buf.len() > self.max_bytes {
            let rest = buf.split_off(self.max_bytes);
            out.push(Entry {
                time_ns: t,
                stream,
                line: lossy(buf),
            });
            *buf = rest;
        }
        if !partial {
            if let Some((_, buf)) = slot.take() {
                out.push(Entry {
                    time_ns: t,
                    stream,
                    line: lossy(&buf),
                });
            }
        }
        out
    }

    /// Whatever is still partial (the file ended mid-line and will not go
    /// on, e.g. the container is gone).
    pub fn flush(&mut self) -> Vec<Entry> {
        let mut out = Vec::new();
        for (i, slot) in self.pending.iter_mut().enumerate() {
            if let Some((t, buf)) = slot.take() {
                let stream = Stream::ALL[i];
                out.push(Entry {
                    time_ns: t,
                    stream,
                    line: lossy(&buf),
                });
            }
        }
        out
    }

    /// Bytes held in unfinished lines.
    pub fn pending_bytes(&self) -> usize {
        self.pending.iter().flatten().map(|(_, b)| b.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cri_lines_as_containerd_and_cri_o_write_them() {
        let l = parse_cri(b"2026-12-03T10:49:20.123456789Z stdout F GET /healthz 200").unwrap();
        assert_eq!(l.time_ns, 1_796_294_960_123_456_789);
        assert_eq!(l.stream, Stream::Stdout);
        assert!(!l.partial);
        assert_eq!(l.message, b"GET /healthz 200");
        let p = parse_cri(b"2026-12-03T11:49:20.5+01:00 stderr P:tag1 first half").unwrap();
        assert_eq!(p.time_ns, 1_796_294_960_500_000_000);
        assert!(p.partial && p.stream == Stream::Stderr);
        // An empty message, with and without the separating space.
        assert_eq!(
            parse_cri(b"2026-12-03T10:49:20Z stdout F ")
                .unwrap()
                .message,
            b""
        );
        assert_eq!(
            parse_cri(b"2026-12-03T10:49:20Z stdout F").unwrap().message,
            b""
        );
        // Spaces inside the message stay.
        assert_eq!(
            parse_cri(b"2026-12-03T10:49:20Z stdout F  a  b ")
                .unwrap()
                .message,
            b" a  b "
        );
    }

    #[test]
    fn malformed_cri_lines_say_what_is_wrong() {
        let e = |l: &[u8]| parse_cri(l).unwrap_err().to_string();
        assert_eq!(
            e(b"yesterday stdout F x"),
            "invalid timestamp \"yesterday\""
        );
        assert_eq!(
            e(b"2026-12-03T10:49:20Z stdlog F x"),
            "invalid stream \"stdlog\" (want stdout or stderr)"
        );
        assert_eq!(
            e(b"2026-12-03T10:49:20Z stdout X x"),
            "invalid tag \"X\" (want P or F)"
        );
        assert_eq!(
            e(b"2026-12-03T10:49:20Z stdout"),
            "line ends before its tag"
        );
        assert_eq!(e(b""), "line ends before its timestamp");
    }

    #[test]
    fn docker_json_file_lines() {
        let d = parse_docker(br#"{"log":"hello \"world\"\n","stream":"stderr","time":"2026-12-03T10:49:20.000000001Z"}"#).unwrap();
        assert_eq!(d.message, "hello \"world\"");
        assert!(!d.partial && d.stream == Stream::Stderr);
        assert_eq!(d.time_ns, 1_796_294_960_000_000_001);
        let p = parse_docker(
            br#"{"log":"no newline yet","stream":"stdout","time":"2026-12-03T10:49:20Z"}"#,
        )
        .unwrap();
        assert!(p.partial);
        assert!(parse_docker(b"{\"log\":1}")
            .unwrap_err()
            .to_string()
            .starts_with("invalid json-file line"));
    }

    #[test]
    fn partial_pieces_join_per_stream_and_keep_the_first_time() {
        let mut j = Joiner::new(1 << 20);
        assert!(j
            .push(1, Stream::Stdout, true, b"Exception in thread ")
            .is_empty());
        // stderr interleaves without disturbing stdout's line.
        assert_eq!(
            j.push(2, Stream::Stderr, false, b"warn"),
            [Entry {
                time_ns: 2,
                stream: Stream::Stderr,
                line: "warn".into()
            }]
        );
        assert_eq!(
            j.push(3, Stream::Stdout, false, b"\"main\""),
            [Entry {
                time_ns: 1,
                stream: Stream::Stdout,
                line: "Exception in thread \"main\"".into()
            }]
        );
        assert_eq!(j.pending_bytes(), 0);
        // Invalid UTF-8 is kept, replaced.
        let e = j.push(4, Stream::Stdout, false, b"caf\xe9");
        assert_eq!(e[0].line, "caf\u{fffd}");
    }

    #[test]
    fn an_endless_partial_line_is_handed_on_in_bounded_pieces() {
        let mut j = Joiner::new(10);
        let mut got = Vec::new();
        for _ in 0..5 {
            got.extend(j.push(7, Stream::Stdout, true, b"abcdef"));
        }
        assert_eq!(
            got.iter().map(|e| e.line.as_str()).collect::<Vec<_>>(),
            ["abcdefabcd", "efabcdefab"]
        );
        assert!(j.pending_bytes() <= 10);
        let rest = j.flush();
        assert_eq!(rest[0].line, "cdefabcdef");
        assert_eq!(j.pending_bytes(), 0);
    }

    proptest! {
        #[test]
        fn any_bytes_parse_or_fail_without_panicking(line in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_cri(&line);
            let _ = parse_docker(&line);
        }

        #[test]
        fn written_cri_lines_read_back(
            secs in 0i64..4_000_000_000,
            nanos in 0u32..1_000_000_000,
            stderr in any::<bool>(),
            partial in any::<bool>(),
            message in proptest::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..100),
        ) {
            let days = secs / 86_400;
            let tod = secs % 86_400;
            let (y, m, d) = vigil_config::civil::civil_from_days(days);
            let time = format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z", tod / 3600, tod % 3600 / 60, tod % 60);
            let mut line = format!("{time} {} {} ", if stderr { "stderr" } else { "stdout" }, if partial { "P" } else { "F" }).into_bytes();
            line.extend_from_slice(&message);
            let l = parse_cri(&line).unwrap();
            prop_assert_eq!(l.time_ns, secs * 1_000_000_000 + i64::from(nanos));
            prop_assert_eq!(l.stream == Stream::Stderr, stderr);
            prop_assert_eq!(l.partial, partial);
            prop_assert_eq!(l.message, &message[..]);
        }
    }
}
