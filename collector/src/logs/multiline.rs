//! Multi-line entries (stack traces) joined by a start pattern, as
//! Promtail's `multiline` stage does: a line matching `firstline` starts a
//! new entry, any other line belongs to the entry before it. An entry goes
//! out when the next one starts, when it reaches `max_lines`, or when no
//! line came for `max_wait_time`.

use regex::Regex;
use std::time::{Duration, Instant};

/// A joined entry and where (in its file) its first line started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub time_ns: i64,
    pub line: String,
    pub from: u64,
}

struct Open {
    block: Block,
    lines: usize,
    last: Instant,
}

/// One stream's joiner.
pub struct Multiline {
    first: Regex,
    max_lines: usize,
    max_wait: Duration,
    open: Option<Open>,
}

impl Multiline {
    pub fn new(first: Regex, max_lines: usize, max_wait: Duration) -> Self {
        Multiline {
            first,
            max_lines: max_lines.max(1),
            max_wait,
            open: None,
        }
    }

    /// Takes one line (which started at `from` in its file); returns the
    /// entry it completes, if any.
    pub fn push(&mut self, time_ns: i64, line: String, from: u64, now: Instant) -> Option<Block> {
        let starts = self.first.is_match(&line);
        match &mut self.open {
            Some(o) if !starts && o.lines < self.max_lines => {
                o.block.line.push('\n');
                o.block.line.push_str(&line);
                o.lines += 1;
                o.last = now;
                None
            }
            _ => {
                let done = self.open.take().map(|o| o.block);
                self.open = Some(Open {
                    block: Block {
                        time_ns,
                        line,
                        from,
                    },
                    lines: 1,
                    last: now,
                });
                done
            }
        }
    }

    /// The open entry, if it waited `max_wait_time` for more.
    pub fn expire(&mut self, now: Instant) -> Option<Block> {
        match &self.open {
            Some(o) if now.duration_since(o.last) >= self.max_wait => {
                self.open.take().map(|o| o.block)
            }
            _ => None,
        }
    }

    /// Where the open entry started: reading is not done before it.
    pub fn pending_from(&self) -> Option<u64> {
        self.open.as_ref().map(|o| o.block.from)
    }

    /// The open entry, whatever its age (the file is gone).
    pub fn flush(&mut self) -> Option<Block> {
        self.open.take().map(|o| o.block)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_trace_is_one_entry() {
        let t0 = Instant::now();
        let mut m = Multiline::new(Regex::new(r"^\d{4}-").unwrap(), 128, Duration::from_secs(3));
        assert_eq!(m.push(1, "2026-12-03 ERROR boom".into(), 0, t0), None);
        assert_eq!(
            m.push(2, "java.lang.IllegalStateException: x".into(), 22, t0),
            None
        );
        assert_eq!(
            m.push(3, "\tat Main.main(Main.java:3)".into(), 57, t0),
            None
        );
        assert_eq!(m.pending_from(), Some(0));
        let b = m.push(4, "2026-12-03 INFO next".into(), 85, t0).unwrap();
        assert_eq!(b.line, "2026-12-03 ERROR boom\njava.lang.IllegalStateException: x\n\tat Main.main(Main.java:3)");
        assert_eq!((b.time_ns, b.from), (1, 0));
        assert_eq!(m.pending_from(), Some(85));
        // Nothing more for max_wait_time: it goes out alone.
        assert_eq!(m.expire(t0 + Duration::from_secs(1)), None);
        assert_eq!(
            m.expire(t0 + Duration::from_secs(3)).unwrap().line,
            "2026-12-03 INFO next"
        );
        assert_eq!(m.pending_from(), None);
    }

    #[test]
    fn max_lines_bounds_an_entry() {
        let t0 = Instant::now();
        let mut m = Multiline::new(Regex::new("^start").unwrap(), 2, Duration::from_secs(3));
        m.push(1, "start".into(), 0, t0);
        m.push(2, "a".into(), 6, t0);
        let b = m.push(3, "b".into(), 8, t0).unwrap();
        assert_eq!(b.line, "start\na");
        assert_eq!(m.flush().unwrap().line, "b");
    }
}
