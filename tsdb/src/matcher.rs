//! Label matchers with Prometheus semantics: regexes are fully anchored RE2
//! syntax, and an empty value stands for "label absent".

use crate::error::TsdbError;
use regex::Regex;
use std::fmt;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    RegexMatch,
    RegexNoMatch,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

/// What a regex reduces to when it has no real regex features; lets the
/// postings index answer it without running the regex over every value.
#[derive(Clone, Debug)]
pub enum RegexShape {
    /// `a|b|c`: a set of literal values.
    Alternation(Vec<String>),
    /// `prefix.*` (the prefix may be empty: `.*` matches everything).
    Prefix(String),
    /// Anything else.
    General,
}

#[derive(Clone)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
    shape: RegexShape,
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

impl Matcher {
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, TsdbError> {
        let name = name.into();
        let value = value.into();
        let (regex, shape) = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => match regex_shape(&value) {
                // Literal shapes are answered without the regex (and are
                // valid regexes by construction): nothing to compile.
                RegexShape::General => {
                    let re = crate::regex_cache::anchored(&value).map_err(|e| {
                        TsdbError::InvalidMatcher {
                            matcher: format!("{name}{}{value:?}", op.as_str()),
                            detail: e.to_string(),
                        }
                    })?;
                    (Some(re), RegexShape::General)
                }
                literal => (None, literal),
            },
            _ => (None, RegexShape::General),
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
            shape,
        })
    }

    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            regex: None,
            shape: RegexShape::General,
        }
    }

    /// Does `value` (empty for an absent label) satisfy this matcher?
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::RegexMatch => self.regex_matches(value),
            MatchOp::RegexNoMatch => !self.regex_matches(value),
        }
    }

    fn regex_matches(&self, value: &str) -> bool {
        match &self.shape {
            RegexShape::Alternation(alts) => alts.iter().any(|a| a == value),
            RegexShape::Prefix(p) => value.starts_with(p.as_str()),
            RegexShape::General => self.regex.as_ref().is_some_and(|r| r.is_match(value)),
        }
    }

    /// True if a series without this label passes the matcher.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    pub fn shape(&self) -> &RegexShape {
        &self.shape
    }
}

/// Recognises literal alternations and literal prefixes followed by `.*`.
fn regex_shape(re: &str) -> RegexShape {
    const META: &[char] = &[
        '\\', '.', '+', '*', '?', '(', ')', '|', '[', ']', '{', '}', '^', '$',
    ];
    let is_literal = |s: &str| !s.contains(META);
    if let Some(prefix) = re.strip_suffix(".*") {
        if is_literal(prefix) {
            return RegexShape::Prefix(prefix.to_string());
        }
    }
    let alts: Vec<&str> = re.split('|').collect();
    if alts.iter().all(|a| is_literal(a)) {
        return RegexShape::Alternation(alts.into_iter().map(String::from).collect());
    }
    RegexShape::General
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: MatchOp, v: &str) -> Matcher {
        Matcher::new(op, "l", v).unwrap()
    }

    #[test]
    fn regexes_are_anchored() {
        assert!(m(MatchOp::RegexMatch, "fo+").matches("fooo"));
        assert!(!m(MatchOp::RegexMatch, "fo+").matches("xfoo"));
        assert!(!m(MatchOp::RegexMatch, "a|b").matches("ab"));
        assert!(m(MatchOp::RegexNoMatch, "a|b").matches("ab"));
    }

    #[test]
    fn shapes_agree_with_the_regex() {
        for (re, shape_is) in [
            ("a|bb|", "alt"),
            ("api.*", "prefix"),
            (".*", "prefix"),
            ("a.c", "general"),
        ] {
            let mm = m(MatchOp::RegexMatch, re);
            let got = match mm.shape() {
                RegexShape::Alternation(_) => "alt",
                RegexShape::Prefix(_) => "prefix",
                RegexShape::General => "general",
            };
            assert_eq!(got, shape_is, "{re}");
            let full = Regex::new(&format!("^(?s:{re})$")).unwrap();
            for v in ["", "a", "bb", "api", "apix", "abc", "b", "x\ny"] {
                assert_eq!(mm.matches(v), full.is_match(v), "{re} on {v:?}");
            }
        }
    }

    #[test]
    fn empty_value_semantics() {
        assert!(m(MatchOp::Equal, "").matches_empty());
        assert!(!m(MatchOp::NotEqual, "").matches_empty());
        assert!(m(MatchOp::RegexMatch, "a|").matches_empty());
        assert!(!m(MatchOp::RegexMatch, "a+").matches_empty());
    }

    #[test]
    fn bad_regex_is_a_clear_error() {
        let e = Matcher::new(MatchOp::RegexMatch, "job", "(").unwrap_err();
        assert!(e.to_string().contains("job=~\"(\""), "{e}");
    }
}
