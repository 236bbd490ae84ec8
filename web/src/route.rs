//! The page's whole state lives in the URL's hash (`#/explore?q=..&range=1h`)
//! so a copied link reproduces the view. This module parses and writes it.

use crate::timerange::TimeRange;

/// A parsed hash: the page path and its parameters, in order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Location {
    pub path: String,
    pub params: Vec<(String, String)>,
}

impl Location {
    pub fn parse(hash: &str) -> Location {
        let h = hash.trim_start_matches('#');
        let (path, query) = h.split_once('?').unwrap_or((h, ""));
        let path = if path.is_empty() { "/" } else { path };
        let params = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect();
        Location {
            path: path.to_string(),
            params,
        }
    }

    pub fn new(path: &str) -> Location {
        Location {
            path: path.to_string(),
            params: Vec::new(),
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn get_all(&self, key: &str) -> Vec<String> {
        self.params
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn with_all(mut self, key: &str, values: &[String]) -> Location {
        self.params.retain(|(k, _)| k != key);
        for v in values {
            self.params.push((key.to_string(), v.clone()));
        }
        self
    }

    /// Replaces every value of `key` with `value` (none when empty).
    pub fn with(mut self, key: &str, value: &str) -> Location {
        self.params.retain(|(k, _)| k != key);
        if !value.is_empty() {
            self.params.push((key.to_string(), value.to_string()));
        }
        self
    }

    pub fn time_range(&self) -> TimeRange {
        TimeRange::from_params(self.get("range"), self.get("from"), self.get("to"))
    }

    pub fn with_time_range(self, r: &TimeRange) -> Location {
        let (range, from, to) = r.to_params();
        self.with("range", &range)
            .with("from", &from)
            .with("to", &to)
    }

    pub fn to_hash(&self) -> String {
        let mut s = format!("#{}", self.path);
        for (i, (k, v)) in self.params.iter().enumerate() {
            s.push(if i == 0 { '?' } else { '&' });
            s.push_str(&encode(k));
            s.push('=');
            s.push_str(&encode(v));
        }
        s
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if is_unreserved(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decoding that never fails: a malformed escape stays as typed.
pub fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                    }
                    Err(_) => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_awkward_queries() {
        let q = r#"sum by (pod) (rate(x{a=~"b|c", d!="e&f"}[5m])) > 0.5 + 1"#;
        let loc = Location::new("/explore").with("q", q).with("range", "6h");
        let back = Location::parse(&loc.to_hash());
        assert_eq!(back.path, "/explore");
        assert_eq!(back.get("q"), Some(q));
        assert_eq!(back.get("range"), Some("6h"));
    }

    #[test]
    fn tolerates_odd_hashes() {
        assert_eq!(Location::parse("").path, "/");
        assert_eq!(Location::parse("#").path, "/");
        let l = Location::parse("#/logs?q=%zz&x&y=a+b&z=%");
        assert_eq!(l.get("q"), Some("%zz"));
        assert_eq!(l.get("x"), Some(""));
        assert_eq!(l.get("y"), Some("a b"));
        assert_eq!(l.get("z"), Some("%"));
        assert_eq!(decode("%E2%9C%93"), "✓");
    }

    #[test]
    fn multi_values() {
        let l = Location::new("/d").with_all("var-pod", &["a".into(), "b".into()]);
        let back = Location::parse(&l.to_hash());
        assert_eq!(back.get_all("var-pod"), vec!["a", "b"]);
        assert_eq!(back.clone().with("var-pod", "").get("var-pod"), None);
    }
}
