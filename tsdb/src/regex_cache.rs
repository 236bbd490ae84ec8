//! Compiled matcher regexes, kept for reuse: building a regex's automaton
//! costs more than answering a small query with it.

use crate::memo::Memo;
use regex::Regex;
use std::sync::OnceLock;

/// The anchored, dot-matches-newline regex of a matcher's `value`
/// (`^(?s:value)$`, as Prometheus anchors them), compiled once.
pub(crate) fn anchored(value: &str) -> Result<Regex, regex::Error> {
    static CACHE: OnceLock<Memo<Regex>> = OnceLock::new();
    CACHE
        .get_or_init(|| Memo::new(512))
        .get_or_try_insert(value, |v| Regex::new(&format!("^(?s:{v})$")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cached_regex_is_the_anchored_one() {
        for _ in 0..2 {
            let re = anchored("a|b.").unwrap();
            assert!(re.is_match("a") && re.is_match("b\n") && !re.is_match("ab"));
        }
        assert!(anchored("(").is_err());
        assert!(anchored("(").is_err(), "errors are not cached as successes");
    }
}
