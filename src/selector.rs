//! Series selectors (`match[]`) parsed with promql-parser and turned into
//! the store's matchers.

use promql_parser::parser::Expr;
use tsdb::Matcher;

/// A selector: alternatives joined by `or`, each a list of matchers that
/// must all hold. Plain selectors have one alternative.
#[derive(Debug, Clone)]
pub struct SelectorSet(pub Vec<Vec<Matcher>>);

pub fn parse_selector(s: &str) -> Result<SelectorSet, String> {
    let expr = promql::syntax_error::parse(s)
        .map_err(|e| format!("invalid series selector {s:?}: {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!(
            "invalid series selector {s:?}: not a plain series selector"
        ));
    };
    if vs.offset.is_some() || vs.at.is_some() {
        return Err(format!(
            "invalid series selector {s:?}: offset and @ are not allowed here"
        ));
    }
    promql::selector::selector_matchers(&vs)
        .map(SelectorSet)
        .map_err(|e| format!("invalid series selector {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_or_selectors() {
        let s = parse_selector(r#"up{job=~"a|b", env!=""}"#).unwrap();
        assert_eq!(s.0.len(), 1);
        assert_eq!(s.0[0].len(), 3);
        let s = parse_selector(r#"{job="a" or job="b"}"#).unwrap();
        assert_eq!(s.0.len(), 2);
    }

    #[test]
    fn rejects_non_selectors_and_empty_matchers() {
        assert!(parse_selector("sum(up)")
            .unwrap_err()
            .contains("not a plain series selector"));
        assert!(parse_selector(r#"{job=~".*"}"#).is_err());
        assert!(parse_selector("up[5m]").is_err());
        assert!(parse_selector("up{").is_err());
    }
}
