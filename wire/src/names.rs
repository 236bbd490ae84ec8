//! The naming rules of the Prometheus data model, which every format
//! Vigil reads or writes shares: which strings are metric names and which
//! are label names. The store, the agent and the push decoders all ask
//! here, so the rule has one home.

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
pub fn is_valid_metric_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' || b == b':' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, the label names Prometheus 2 accepts.
pub fn is_valid_label_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    match bytes.next() {
        Some(b) if b.is_ascii_alphabetic() || b == b'_' => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// A series in Prometheus notation, `name{a="b", c="d"}`, from label
/// pairs sorted by name: how errors name the series they are about.
pub fn series_notation<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)> + Clone) -> String {
    use std::fmt::Write;
    // With a (malformed) repeated name, the last one, as a sorted set's lookup finds.
    let name = pairs
        .clone()
        .into_iter()
        .filter(|(n, _)| *n == "__name__")
        .last()
        .map_or("", |(_, v)| v);
    let mut out = String::from(name);
    out.push('{');
    let mut first = true;
    for (n, v) in pairs.into_iter().filter(|(n, _)| *n != "__name__") {
        if !first {
            out.push_str(", ");
        }
        first = false;
        // Infallible: writing to a String.
        let _ = write!(out, "{n}={v:?}");
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_metric_name("a:b_c1"));
        assert!(!is_valid_metric_name("1a"));
        assert!(!is_valid_metric_name(""));
        assert!(is_valid_label_name("_a1"));
        assert!(!is_valid_label_name("a:b"));
        assert!(!is_valid_label_name("a-b"));
        assert!(!is_valid_label_name(""));
        assert!(!is_valid_label_name("é"));
    }

    #[test]
    fn notation() {
        assert_eq!(
            series_notation([("__name__", "up"), ("a", "x\"y"), ("job", "n")]),
            r#"up{a="x\"y", job="n"}"#
        );
        assert_eq!(series_notation([("a", "b")]), r#"{a="b"}"#);
    }
}
